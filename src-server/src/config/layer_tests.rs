//! The configuration's layers and keys, tested.

use super::*;
use crate::config::keys::Command;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn each_layer_overrides_the_one_before() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("l.toml");
    std::fs::write(&file, "title = \"From file\"\n[limits]\nstudent_rate = 7\nteacher_rate = 9\n").unwrap();
    let source = Source {
        file: Some(&file),
        env: env(&[("LECTERN_STUDENT_RATE", "8"), ("HOME", "/x")]),
        flags: vec![("limits.teacher_rate".into(), Value::Integer(11))],
        ..Source::default()
    };
    let c = Config::load(&source).unwrap();
    assert_eq!(c.title.as_deref(), Some("From file"));
    assert_eq!((c.limits.student_rate, c.limits.teacher_rate), (8, 11));
    assert_eq!(c.limits.max_participants, 500, "untouched keys keep their default");
}

#[test]
fn a_file_that_is_not_toml_is_refused_without_quoting_its_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("l.toml");
    std::fs::write(&file, "title = \"Room 12\"\nredis = rediss://:S3CRETpw@redis.example:6380\n").unwrap();
    let err = Config::load(&Source { file: Some(&file), ..Source::default() }).unwrap_err().to_string();
    assert!(!err.contains("S3CRETpw"), "{err}");
    assert!(err.contains("line 2"), "says where: {err}");
    // A value of the wrong type is not quoted either.
    std::fs::write(&file, "code = 482913\n").unwrap();
    let err = Config::load(&Source { file: Some(&file), ..Source::default() }).unwrap_err().to_string();
    assert!(!err.contains("482913") && err.contains("invalid type"), "{err}");
}

#[test]
fn the_default_file_is_read_from_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lectern.toml"), "[timing]\nheartbeat_ms = 2500\n").unwrap();
    let source =
        Source { env: env(&[("LECTERN_DATA_DIR", &dir.path().display().to_string())]), ..Source::default() };
    assert_eq!(Config::load(&source).unwrap().timing.heartbeat.as_millis(), 2500);
    // A relay reads only the file it is given: not a teacher's server's beside it.
    let relay = Source { no_default_file: true, ..source };
    assert_eq!(Config::load(&relay).unwrap().timing.heartbeat.as_millis(), 10_000);
}

#[test]
fn a_data_dir_flag_beats_the_environment_for_the_default_file_too() {
    let (flag_dir, env_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(flag_dir.path().join("lectern.toml"), "title = \"flag\"\n").unwrap();
    std::fs::write(env_dir.path().join("lectern.toml"), "title = \"env\"\n").unwrap();
    let source = Source {
        env: env(&[("LECTERN_DATA_DIR", &env_dir.path().display().to_string())]),
        flags: vec![("data_dir".into(), Value::String(flag_dir.path().display().to_string()))],
        ..Source::default()
    };
    let c = Config::load(&source).unwrap();
    assert_eq!((c.title.as_deref(), c.data_dir.as_deref()), (Some("flag"), Some(flag_dir.path())));
}

#[test]
fn zero_intervals_and_capacities_are_refused() {
    for (var, value) in
        [("LECTERN_HEARTBEAT_MS", "0"), ("LECTERN_ROSTER_INTERVAL_MS", "0"), ("LECTERN_QUEUE_CAPACITY", "0")]
    {
        let err =
            Config::load(&Source { env: env(&[(var, value)]), ..Source::default() }).unwrap_err().to_string();
        assert!(err.contains("at least"), "{var}: {err}");
    }
}

#[test]
fn mistakes_name_their_source_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[limits]\nstudent_rat = 7\n").unwrap();
    let err = Config::load(&Source { file: Some(&file), ..Source::default() }).unwrap_err().to_string();
    assert!(err.contains("bad.toml") && err.contains("student_rat"), "{err}");
    let err = Config::load(&Source { env: env(&[("LECTERN_STUDENT_RATE", "fast")]), ..Source::default() })
        .unwrap_err()
        .to_string();
    assert!(err.contains("LECTERN_STUDENT_RATE") && err.contains("limits.student_rate"), "{err}");
}

/// A relay is configured as the server is: `[relay]` in the file, `LECTERN_RELAY_*`, its flags;
/// and `lectern config` shows the section.
#[test]
fn the_relay_reads_the_same_layers_in_its_own_section() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    std::fs::write(&file, "redis = \"redis://10.0.0.5:6379\"\n[relay]\nalive_ms = 2500\n").unwrap();
    let config = Config::load(&Source {
        file: Some(&file),
        env: env(&[("LECTERN_RELAY_LISTEN", "127.0.0.1:9443")]),
        flags: vec![("relay.tls".into(), Value::String("/etc/lectern/relay".into()))],
        ..Source::default()
    })
    .unwrap();
    assert_eq!(config.relay.alive, std::time::Duration::from_millis(2500));
    assert_eq!(config.relay.listen.to_string(), "127.0.0.1:9443");
    assert_eq!(config.relay.tls.as_deref(), Some(Path::new("/etc/lectern/relay")));
    assert_eq!(config.redis.as_deref(), Some("redis://10.0.0.5:6379"));
    assert!(
        config.to_masked_toml().contains("[relay]\nlisten = \"127.0.0.1:9443\""),
        "{}",
        config.to_masked_toml()
    );
    let err = Config::load(&Source { env: env(&[("LECTERN_RELAY_ALIVE_MS", "50")]), ..Source::default() })
        .unwrap_err()
        .to_string();
    assert!(err.contains("relay.alive_ms"), "{err}");
}

/// Every field of the configuration is a declared key, no two keys share a variable, and no
/// two flags of one command (its keys' and its own) have one name.
#[test]
fn every_field_is_a_key_and_every_name_is_unique() {
    let defaults = Table::try_from(Config::default()).unwrap();
    let mut leaves = Vec::new();
    fn walk(prefix: &str, t: &Table, out: &mut Vec<String>) {
        for (k, v) in t {
            let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
            match v {
                Value::Table(t) => walk(&path, t, out),
                _ => out.push(path),
            }
        }
    }
    walk("", &defaults, &mut leaves);
    let keys = Config::keys();
    let paths: Vec<String> = keys.iter().map(|k| k.path()).collect();
    // Keys whose default is "none" do not appear in the defaults' table; every other does.
    for leaf in &leaves {
        assert!(paths.contains(leaf), "{leaf} is not a declared key");
    }
    let mut envs: Vec<&str> = keys.iter().map(|k| k.env).collect();
    envs.sort();
    envs.dedup();
    assert_eq!(envs.len(), keys.len(), "two keys share a variable");
    for command in [Command::Serve, Command::Relay] {
        let mut flags: Vec<&str> = keys.iter().filter(|k| command.takes(k)).map(|k| k.flag).collect();
        flags.extend(command.own_flags());
        let n = flags.len();
        flags.sort();
        flags.dedup();
        assert_eq!(flags.len(), n, "two of {command:?}'s flags have one name");
    }
}

/// The README's table is the one the declarations make (`lectern config --keys --markdown`
/// prints it).
#[test]
fn the_readme_shows_every_key_as_declared() {
    let table = super::super::keys::markdown(&Config::keys(), &Table::try_from(Config::default()).unwrap());
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    assert!(
        readme.contains(&table),
        "README.md's table of keys is stale; replace it with the output of `lectern config --keys --markdown`:\n{table}"
    );
}

#[test]
fn a_list_from_the_environment_is_comma_separated_and_keeps_ipv6_whole() {
    let source = Source {
        env: vec![("LECTERN_RELAY_PROXY_FROM".into(), "10.0.0.0/24, 2001:db8::/48".into())],
        no_default_file: true,
        ..Source::default()
    };
    let config = Config::load(&source).unwrap();
    assert_eq!(config.relay.proxy_from, ["10.0.0.0/24", "2001:db8::/48"]);
}
