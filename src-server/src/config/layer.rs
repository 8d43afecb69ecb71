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
    /// Read no file unless `file` names one: a relay started beside a teacher's server must not take
    /// on that server's settings.
    pub no_default_file: bool,
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
            None if source.no_default_file => None,
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
        // A list: comma-separated (never split on ':', which IPv6 addresses hold).
        Some(Value::Array(_)) => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.into()))
                .collect(),
        ),
        _ => Value::String(raw.to_string()),
    })
}

#[cfg(test)]
#[path = "layer_tests.rs"]
mod tests;
