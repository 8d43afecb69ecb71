//! Building a [`Config`] from its layers: defaults, a TOML file, environment variables, then flags.
//!
//! Every layer is merged as a TOML table over the one before, so a file may set any subset of keys and
//! a flag or variable overrides exactly one. Values from the environment and from flags are read as TOML
//! scalars of the type the key has by default (`"7443"` for a number, `true` for a switch, a list for a
//! list), so `LECTERN_STUDENT_RATE=abc` is refused with the key's name, not ignored.

use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::Config;

/// A configuration that cannot be used: which source and key, and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The named config file could not be read.
    #[error("cannot read the config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A source holds a key or value Lectern does not understand.
    #[error("{source_name}: {message}")]
    Invalid {
        /// Which source (the file's path, an environment variable, a flag).
        source_name: String,
        /// What to fix.
        message: String,
    },
}

/// Where the settings come from, lowest precedence first.
#[derive(Debug, Default)]
pub struct Source<'a> {
    /// A config file that must exist (`--config`); else `lectern.toml` in the data directory, if any.
    pub file: Option<&'a Path>,
    /// Environment variables (name, value); only the keys' names ([`Config::keys`]) are read.
    pub env: Vec<(String, String)>,
    /// Flags given on the command line, as (dotted key, TOML value). A string given for a key of
    /// another type is read as the environment's values are (`"7443"` for a number).
    pub flags: Vec<(String, Value)>,
}

impl Config {
    /// Builds the configuration in effect from its sources.
    pub fn load(source: &Source<'_>) -> Result<Config, ConfigError> {
        let invalid = |source_name: &str, message: String| ConfigError::Invalid {
            source_name: source_name.to_string(),
            message,
        };
        let defaults = Table::try_from(Config::default()).map_err(|e| invalid("defaults", e.to_string()))?;
        let mut table = defaults.clone();
        let keys = Config::keys();
        let mut env: Vec<(String, Value)> = Vec::new();
        for (name, raw) in &source.env {
            if let Some(key) = keys.iter().find(|k| k.env == name) {
                let value = scalar(&defaults, &key.path(), raw).map_err(|m| invalid(name, m))?;
                env.push((key.path(), value));
            }
        }
        let mut flags: Vec<(String, Value)> = Vec::new();
        for (path, value) in &source.flags {
            let value = match value {
                Value::String(raw) if matches!(get(&defaults, path), Some(v) if !v.is_str()) => {
                    scalar(&defaults, path, raw).map_err(|m| invalid("command line", m))?
                }
                v => v.clone(),
            };
            flags.push((path.clone(), value));
        }
        // The data directory decides where the default file is, so it is taken from the flags and the
        // environment before any file is read.
        let data_dir = env
            .iter()
            .chain(flags.iter())
            .rev()
            .find(|(k, _)| k == "data_dir")
            .and_then(|(_, v)| v.as_str().map(PathBuf::from))
            .unwrap_or_else(super::default_data_dir);
        let file = match source.file {
            Some(path) => Some(read(path)?),
            None => {
                let path = Config::default_file(&data_dir);
                path.exists().then(|| read(&path)).transpose()?
            }
        };
        if let Some((path, file)) = file {
            merge(&mut table, file);
            Config::try_from_table(&table).map_err(|m| invalid(&path.display().to_string(), m))?;
        }
        for (key, value) in env.into_iter().chain(flags) {
            set(&mut table, &key, value);
        }
        let config = Config::try_from_table(&table).map_err(|m| invalid("environment or flags", m))?;
        config.check().map_err(|m| invalid("configuration", m))?;
        Ok(config)
    }

    /// Refuses values the server cannot run with (a zero interval would stop every connection).
    fn check(&self) -> Result<(), String> {
        let (t, l) = (&self.timing, &self.limits);
        let at_least = |what: &str, ms: u128, min: u128| {
            if ms < min { Err(format!("{what} must be at least {min} ms, not {ms}")) } else { Ok(()) }
        };
        at_least("timing.heartbeat_ms", t.heartbeat.as_millis(), 100)?;
        at_least("timing.roster_interval_ms", t.roster_interval.as_millis(), 10)?;
        at_least("timing.hello_timeout_ms", t.hello_timeout.as_millis(), 100)?;
        at_least("timing.knock_timeout_ms", t.knock_timeout.as_millis(), 100)?;
        at_least("timing.tls_handshake_timeout_ms", t.tls_handshake_timeout.as_millis(), 100)?;
        at_least("relay.alive_ms", self.relay.alive.as_millis(), 100)?;
        if self.relay.alive > std::time::Duration::from_secs(60) {
            return Err(
                "relay.alive_ms must be at most 60000 ms (teachers' servers would wait minutes)".into()
            );
        }
        for (what, n) in [
            ("limits.queue_capacity", l.queue_capacity),
            ("limits.max_connections", l.max_connections),
            ("limits.max_participants", l.max_participants),
            ("limits.max_frame_bytes", l.max_frame_bytes),
        ] {
            if n == 0 {
                return Err(format!("{what} must be at least 1"));
            }
        }
        if l.student_rate == 0 || l.teacher_rate == 0 {
            return Err(
                "limits.student_rate and limits.teacher_rate must be at least 1 frame a second".into()
            );
        }
        Ok(())
    }

    fn try_from_table(table: &Table) -> Result<Config, String> {
        Value::Table(table.clone()).try_into().map_err(|e: toml::de::Error| without_value(e.message()))
    }
}

/// A type error's message without the value it quotes ("invalid type: integer `482913`, expected a
/// string" would print a join code, or a password, into the journal).
fn without_value(message: &str) -> String {
    let Some(kind) = ["invalid type: ", "invalid value: "].iter().find_map(|p| message.find(p)) else {
        return message.to_string();
    };
    let end = message[kind..].find(", expected").map_or(message.len(), |e| kind + e);
    let segment = &message[kind..end];
    match (segment.find('`'), segment.rfind('`')) {
        (Some(a), Some(b)) if b > a => {
            format!("{}{}…{}{}", &message[..kind], &segment[..=a], &segment[b..], &message[end..])
        }
        _ => message.to_string(),
    }
}

fn read(path: &Path) -> Result<(PathBuf, Table), ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    // The parser's own text quotes the offending line, which may hold a password or a join code
    // (it reaches the journal under systemd): say where and what, never the line itself.
    let table = text.parse::<Table>().map_err(|e| {
        let at = e.span().map(|span| {
            let bytes = text.as_bytes();
            let before = bytes.get(..span.start).unwrap_or(bytes);
            let line = before.iter().filter(|b| **b == b'\n').count() + 1;
            let line_start = before.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
            format!("line {line}, column {column}: ")
        });
        ConfigError::Invalid {
            source_name: path.display().to_string(),
            message: format!("{}{}", at.unwrap_or_default(), e.message().trim()),
        }
    })?;
    Ok((path.to_path_buf(), table))
}

/// Merges `over` into `base`, table by table; other values are replaced.
fn merge(base: &mut Table, over: Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn set(table: &mut Table, path: &str, value: Value) {
    let mut parts = path.split('.').peekable();
    let mut here = table;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            here.insert(part.to_string(), value);
            return;
        }
        let next = here.entry(part.to_string()).or_insert_with(|| Value::Table(Table::new()));
        let Value::Table(t) = next else { return };
        here = t;
    }
}

fn get<'t>(table: &'t Table, path: &str) -> Option<&'t Value> {
    let mut parts = path.split('.');
    let mut value = table.get(parts.next()?)?;
    for part in parts {
        value = value.as_table()?.get(part)?;
    }
    Some(value)
}

/// Reads an environment value as the type the key has by default. Keys whose default is absent
/// (`data_dir`, `name`, `title`, `code`, `redis`, `redis_ca`, `relay_url`, `relay_fp`) are strings.
fn scalar(defaults: &Table, path: &str, raw: &str) -> Result<Value, String> {
    let expected = |what: &str| format!("{path} must be {what}, not {raw:?}");
    Ok(match get(defaults, path) {
        Some(Value::Integer(_)) => {
            Value::Integer(raw.trim().parse().map_err(|_| expected("a whole number"))?)
        }
        Some(Value::Float(_)) => Value::Float(raw.trim().parse().map_err(|_| expected("a number"))?),
        Some(Value::Boolean(_)) => Value::Boolean(match raw.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" | "" => false,
            _ => return Err(expected("true or false")),
        }),
        Some(Value::Array(_)) => Value::Array(
            raw.split([':', ',']).filter(|s| !s.is_empty()).map(|s| Value::String(s.into())).collect(),
        ),
        _ => Value::String(raw.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn each_layer_overrides_the_one_before() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("l.toml");
        std::fs::write(&file, "title = \"From file\"\n[limits]\nstudent_rate = 7\nteacher_rate = 9\n")
            .unwrap();
        let source = Source {
            file: Some(&file),
            env: env(&[("LECTERN_STUDENT_RATE", "8"), ("HOME", "/x")]),
            flags: vec![("limits.teacher_rate".into(), Value::Integer(11))],
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
        std::fs::write(&file, "title = \"Room 12\"\nredis = rediss://:S3CRETpw@redis.example:6380\n")
            .unwrap();
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
        let source = Source {
            env: env(&[("LECTERN_DATA_DIR", &dir.path().display().to_string())]),
            ..Source::default()
        };
        assert_eq!(Config::load(&source).unwrap().timing.heartbeat.as_millis(), 2500);
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
        for (var, value) in [
            ("LECTERN_HEARTBEAT_MS", "0"),
            ("LECTERN_ROSTER_INTERVAL_MS", "0"),
            ("LECTERN_QUEUE_CAPACITY", "0"),
        ] {
            let err = Config::load(&Source { env: env(&[(var, value)]), ..Source::default() })
                .unwrap_err()
                .to_string();
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
        let err =
            Config::load(&Source { env: env(&[("LECTERN_STUDENT_RATE", "fast")]), ..Source::default() })
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
        let err =
            Config::load(&Source { env: env(&[("LECTERN_RELAY_ALIVE_MS", "50")]), ..Source::default() })
                .unwrap_err()
                .to_string();
        assert!(err.contains("relay.alive_ms"), "{err}");
    }

    /// Every field of the configuration is a declared key, no two keys share a variable, and no
    /// two keys of one command share a flag.
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
        for (section, mut flags) in [
            (
                "the server's",
                keys.iter().filter(|k| k.section != "relay").map(|k| k.flag).collect::<Vec<_>>(),
            ),
            ("the relay's", keys.iter().filter(|k| k.section == "relay").map(|k| k.flag).collect()),
        ] {
            let n = flags.len();
            flags.sort();
            flags.dedup();
            assert_eq!(flags.len(), n, "two of {section} keys share a flag");
        }
    }

    /// The README's table is the one the declarations make (`lectern config --keys --markdown`
    /// prints it).
    #[test]
    fn the_readme_shows_every_key_as_declared() {
        let table =
            super::super::keys::markdown(&Config::keys(), &Table::try_from(Config::default()).unwrap());
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        assert!(
            readme.contains(&table),
            "README.md's table of keys is stale; replace it with the output of `lectern config --keys --markdown`:\n{table}"
        );
    }
}
