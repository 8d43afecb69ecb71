//! Configuration in one place: every setting, its one default, and the order in which sources override
//! it: the defaults here, then a TOML file, then environment variables, then command-line flags.
//!
//! Every key has a dotted path (`limits.student_rate`) that is the same in the file, in
//! [`keys::KEYS`] (which names its environment variable and documents it) and in `lectern config`'s
//! output. The README's table of keys is checked against [`keys::KEYS`] by a test, so a key cannot be
//! added without being documented.

pub mod keys;
mod layer;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use layer::{ConfigError, Source};
/// A configuration value, as flags and embedders pass them to [`Source::flags`].
pub use toml::Value;

/// The platform's data directory for Lectern (for example `~/.local/share/lectern` on Linux).
pub fn default_data_dir() -> PathBuf {
    directories::ProjectDirs::from("org", "Lectern", "lectern")
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from("lectern-data"))
}

/// The name of the config file looked for in the data directory when `--config` is not given.
pub const FILE_NAME: &str = "lectern.toml";

/// Everything a Lectern server can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the certificate, teacher key, documents and session log are kept (default: the
    /// platform's data directory, see [`default_data_dir`]).
    pub data_dir: Option<PathBuf>,
    /// The address to listen on. `[::]` accepts IPv4 and IPv6 alike (dual stack).
    pub listen: SocketAddr,
    /// The classroom's name, as students see it (default: "Lectern on HOST").
    pub name: Option<String>,
    /// The lesson's title (default: the opening document's).
    pub title: Option<String>,
    /// A fixed join code (4 to 12 digits), for demos and tests (default: random per lesson).
    pub code: Option<String>,
    /// PDFs to add to the lesson at start; the first is opened.
    pub docs: Vec<PathBuf>,
    /// Start a new lesson (new room and join code) instead of continuing the open one.
    pub new_lesson: bool,
    /// The session log.
    pub log: LogConfig,
    /// Discovery on the local network.
    pub mdns: MdnsConfig,
    /// Who may read `/metrics`.
    pub metrics: MetricsAccess,
    /// Limits of PROTOCOL.md §10.
    pub limits: Limits,
    /// Timing of §3 and §7.
    pub timing: Timing,
    /// Bridge the lesson to this Redis (`redis://` or `rediss://`, with a password if it needs one),
    /// for remote students on `lectern relay` (docs/RELAY.md). Default: no bridge.
    pub redis: Option<String>,
    /// For a `rediss://` Redis whose certificate the system does not trust: a PEM file of the
    /// certificates to check it against.
    pub redis_ca: Option<PathBuf>,
    /// Where remote students reach the relays (`https://relay.example.org`), for the console's
    /// remote join link. Only with `redis`.
    pub relay_url: Option<String>,
    /// The relays' certificate fingerprint, for the remote join link: apps and `lectern join` pin
    /// it (browsers check the relays' certificate as any web site's).
    pub relay_fp: Option<String>,
    /// The program that checks uploaded PDFs in a process of its own, and the memory it may use
    /// (`docs::check`): `lectern serve` names itself. None checks them in this process. Not a
    /// setting of the config file.
    #[serde(skip)]
    pub pdf_checker: Option<(PathBuf, u64)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: None,
            listen: SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, lectern_protocol::DEFAULT_PORT)),
            name: None,
            title: None,
            code: None,
            docs: Vec::new(),
            new_lesson: false,
            log: LogConfig::default(),
            mdns: MdnsConfig::default(),
            metrics: MetricsAccess::default(),
            limits: Limits::default(),
            timing: Timing::default(),
            redis: None,
            redis_ca: None,
            relay_url: None,
            relay_fp: None,
            pdf_checker: None,
        }
    }
}

impl Config {
    /// The relays' address for remote join links, checked: `https://HOST[:PORT]` with nothing after
    /// it, and `#fp=…` when `relay_fp` is set. None without a bridge.
    pub fn relay_base(&self) -> Result<Option<String>, String> {
        let (Some(_), Some(url)) = (&self.redis, &self.relay_url) else { return Ok(None) };
        let url = url.trim().trim_end_matches('/');
        let authority = url.strip_prefix("https://").unwrap_or_default();
        let host_ok = |c: char| c.is_ascii_alphanumeric() || "-.:[]".contains(c);
        if authority.is_empty() || !authority.chars().all(host_ok) {
            return Err(format!("relay_url must be https://HOST[:PORT], not {url:?}"));
        }
        match self.relay_fp.as_deref().map(str::trim) {
            None | Some("") => Ok(Some(url.to_string())),
            Some(fp) if lectern_protocol::link::is_fingerprint(fp) => Ok(Some(format!("{url}#fp={fp}"))),
            Some(fp) => Err(format!("relay_fp must be a 43-character fingerprint, not {fp:?}")),
        }
    }

    /// The data directory in effect.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(default_data_dir)
    }

    /// The config file read when none is named: `lectern.toml` in the data directory.
    pub fn default_file(data_dir: &Path) -> PathBuf {
        data_dir.join(FILE_NAME)
    }

    /// This configuration as TOML, with secrets masked, for `lectern config`.
    pub fn to_masked_toml(&self) -> String {
        let mut shown = self.clone();
        if shown.code.is_some() {
            shown.code = Some("******".into());
        }
        shown.redis = shown.redis.as_deref().map(redact_url);
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot show the configuration: {e}\n"))
    }
}

/// A URL with its user and password masked, for what is printed and logged.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***@{}", &url[..scheme], &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// Who may read `/metrics` (counts of connections, frames and refusals: what a stranger planning a
/// flood would like to watch).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsAccess {
    /// This machine (loopback), or a request with the teacher key.
    #[default]
    Local,
    /// Anyone who can reach the server (a monitoring system on the school network).
    Open,
    /// No one: `/metrics` answers 404.
    Off,
}

/// The session log (SQLite).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Log joins, changes, acks and hands (off only to measure what logging costs).
    pub events: bool,
    /// Delete lessons that ended more than this many days ago, at start.
    pub keep_days: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { events: true, keep_days: 365 }
    }
}

/// Announcing the classroom by mDNS.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MdnsConfig {
    /// Do not announce (students then need the join link or QR code).
    pub disabled: bool,
    /// Announce only on these interfaces (default: every usable one, without loopback and virtual ones).
    pub interfaces: Vec<String>,
}

/// Per-connection and per-room limits. The defaults are the protocol's; benchmarks raise them by
/// configuration, never by changing the defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest client frame, in bytes (close 1009 above it).
    pub max_frame_bytes: usize,
    /// Student frames per second.
    pub student_rate: u32,
    /// Student burst.
    pub student_burst: u32,
    /// Teacher frames per second.
    pub teacher_rate: u32,
    /// Teacher burst.
    pub teacher_burst: u32,
    /// Failed hellos per address per minute before 4029.
    pub failed_hellos_per_minute: u32,
    /// Students online in one room.
    pub max_participants: usize,
    /// Students online in one room from one address (an IPv6 /64): a device with the join code cannot
    /// fill the class with fake students. Enough for a class behind one NAT address.
    pub max_students_per_address: usize,
    /// Frames queued per connection before conflation.
    pub queue_capacity: usize,
    /// Open connections (TLS handshakes included) before the accept loop waits.
    pub max_connections: usize,
    /// Open connections from one address (one IPv6 /64) before its new ones are closed at once: a
    /// flood from one device cannot take the class's connections. High enough for a whole school
    /// behind one NAT address.
    pub max_connections_per_address: usize,
    /// Unsent bytes the kernel may hold per socket (`TCP_NOTSENT_LOWAT`). Without it a slow link hides
    /// megabytes of stale frames in the kernel, which is seconds of lag no snapshot can skip; with it the
    /// backlog stays in the outbox, where it is conflated. In-flight data is not limited, so throughput is not.
    pub unsent_bytes: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 16 * 1024,
            student_rate: 50,
            student_burst: 100,
            teacher_rate: 240,
            teacher_burst: 240,
            failed_hellos_per_minute: 10,
            max_participants: 500,
            max_students_per_address: 64,
            queue_capacity: 256,
            max_connections: 20_000,
            max_connections_per_address: 512,
            unsent_bytes: 16 * 1024,
        }
    }
}

/// Timing of the handshake and of liveness. Durations are written in milliseconds (`*_ms`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timing {
    /// How long a client has to send `hello` (close 4008 after).
    #[serde(rename = "hello_timeout_ms", with = "millis")]
    pub hello_timeout: Duration,
    /// How long a student who knocked waits for a teacher before the knock lapses (close 4008).
    #[serde(rename = "knock_timeout_ms", with = "millis")]
    pub knock_timeout: Duration,
    /// Ping interval, told to clients as `heartbeat_ms`; a connection silent for two is closed.
    #[serde(rename = "heartbeat_ms", with = "millis")]
    pub heartbeat: Duration,
    /// How long a TLS handshake may take.
    #[serde(rename = "tls_handshake_timeout_ms", with = "millis")]
    pub tls_handshake_timeout: Duration,
    /// How long an HTTP connection may wait for a request's headers, idle between requests included
    /// (a WebSocket's liveness is the heartbeat's).
    #[serde(rename = "idle_timeout_ms", with = "millis")]
    pub idle_timeout: Duration,
    /// How long shutdown waits for connections to close.
    #[serde(rename = "shutdown_grace_ms", with = "millis")]
    pub shutdown_grace: Duration,
    /// The minimum TCP retransmission timeout of lesson sockets (Linux 6.15 and later; elsewhere the
    /// system's is kept). 0 keeps the system's (200 ms on Linux).
    #[serde(rename = "rto_min_ms", with = "millis")]
    pub rto_min: Duration,
    /// After a change goes out and nothing follows it, a tiny frame this much later lets a lost last
    /// segment be detected from acknowledgements in one round trip instead of a 200 ms timer. 0: off.
    #[serde(rename = "tail_probe_ms", with = "millis")]
    pub tail_probe: Duration,
    /// How often acks and round trips are folded into one roster update (≤ 10 a second by default).
    #[serde(rename = "roster_interval_ms", with = "millis")]
    pub roster_interval: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            hello_timeout: Duration::from_secs(5),
            knock_timeout: Duration::from_secs(600),
            heartbeat: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_millis(1500),
            roster_interval: Duration::from_millis(100),
            rto_min: Duration::from_millis(5),
            tail_probe: Duration::from_millis(2),
        }
    }
}

/// Durations as whole milliseconds in config files.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shown_configuration_masks_the_code_and_the_redis_password() {
        let config = Config {
            code: Some("482913".into()),
            redis: Some("rediss://:s3cret@redis.example:6380".into()),
            ..Config::default()
        };
        let shown = config.to_masked_toml();
        assert!(!shown.contains("482913") && !shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("rediss://***@redis.example:6380"), "{shown}");
        assert_eq!(redact_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }

    #[test]
    fn the_relays_address_for_remote_links_is_checked_and_needs_a_bridge() {
        let fp = "A".repeat(43);
        let with = |url: &str, fp: Option<&str>, redis: bool| Config {
            redis: redis.then(|| "redis://127.0.0.1:6379".into()),
            relay_url: Some(url.into()),
            relay_fp: fp.map(String::from),
            ..Config::default()
        };
        assert_eq!(
            with("https://relay.example.org/", None, true).relay_base(),
            Ok(Some("https://relay.example.org".into()))
        );
        assert_eq!(
            with("https://relay.example.org:8443", Some(&fp), true).relay_base(),
            Ok(Some(format!("https://relay.example.org:8443#fp={fp}")))
        );
        assert_eq!(with("https://relay.example.org", None, false).relay_base(), Ok(None));
        for bad in [
            "http://relay.example.org",
            "https://relay.example.org/x#code=1",
            "https://",
            "relay.example.org",
        ] {
            assert!(with(bad, None, true).relay_base().is_err(), "{bad}");
        }
        assert!(with("https://relay.example.org", Some("short"), true).relay_base().is_err());
    }
}
