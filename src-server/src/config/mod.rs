//! Configuration in one place: every setting, its one default, and the order in which sources override
//! it: the defaults here, then a TOML file, then environment variables, then command-line flags.
//!
//! Every key is declared once, on one line of a [`section!`](keys): its field and default, its dotted
//! path (`limits.student_rate`, the same in the file and in `lectern config`'s output), its
//! environment variable and its flag, and the doc comment that `lectern config --keys` and the
//! README's table show (a test keeps the README's copy the same). Adding a key touches that line.

pub mod keys;
mod layer;
mod sections;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use keys::section;
pub use layer::{ConfigError, Source};
pub use sections::{Limits, LogConfig, MdnsConfig, RelayKeys, Timing};
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

section! {
    /// Everything a Lectern server (and a relay, in `[relay]`) can be told.
    pub struct Config at "" {
        /// Certificate, teacher key, documents and session log (default: the platform's data folder).
        data_dir: Option<PathBuf> = None, key "data_dir", env "LECTERN_DATA_DIR", flag "data-dir",
            unset "the platform's data folder (`~/.local/share/lectern`)";
        /// Address and port to listen on; `[::]:7443` takes IPv4 and IPv6.
        listen: SocketAddr = SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, lectern_protocol::DEFAULT_PORT)),
            key "listen", env "LECTERN_LISTEN", flag "listen";
        /// The classroom's name, as students see it (default: `Lectern on HOST`).
        name: Option<String> = None, key "name", env "LECTERN_NAME", flag "name", unset "`Lectern on HOST`";
        /// The lesson's title (default: the opening document's).
        title: Option<String> = None, key "title", env "LECTERN_TITLE", flag "title", unset "the document's title";
        /// A fixed join code of 4 to 12 digits (default: random per lesson). Shown masked.
        code: Option<String> = None, key "code", env "LECTERN_CODE", flag "code", unset "random, 6 digits";
        /// PDFs to add at start, the first opened (a list; in the environment, `:`-separated; the flag
        /// is repeated).
        docs: Vec<PathBuf> = Vec::new(), key "docs", env "LECTERN_DOCS", flag "doc",
            unset "the built-in demo document";
        /// Start a new lesson (new room and join code) instead of continuing the open one.
        new_lesson: bool = false, key "new_lesson", env "LECTERN_NEW_LESSON", flag "new-lesson" = "true";
        /// Bridge the lesson to this Redis (`redis://` or `rediss://`, with a password if it needs
        /// one) for remote students on relays (docs/RELAY.md); a relay reads the same key.
        redis: Option<String> = None, key "redis", env "LECTERN_REDIS", flag "redis";
        /// For `rediss://`: a PEM file of the certificates to check Redis's against (default: the
        /// system's).
        redis_ca: Option<PathBuf> = None, key "redis_ca", env "LECTERN_REDIS_CA", flag "redis-ca",
            unset "the system's trust store";
        /// Who may read /metrics: `local` (this machine, or with the teacher key), `open` (anyone) or
        /// `off`.
        metrics: MetricsAccess = MetricsAccess::default(), key "metrics", env "LECTERN_METRICS", flag "metrics";
        /// Where remote students reach the relays (`https://relay.example.org`), for the console's
        /// remote join link. Only with `redis`.
        relay_url: Option<String> = None, key "relay_url", env "LECTERN_RELAY_URL", flag "relay-url";
        /// The relays' certificate fingerprint, put in the remote join link for apps to pin (browsers
        /// need none).
        relay_fp: Option<String> = None, key "relay_fp", env "LECTERN_RELAY_FP", flag "relay-fp";
    }
    sections {
        /// The session log.
        log: LogConfig,
        /// Discovery on the local network.
        mdns: MdnsConfig,
        /// Limits of PROTOCOL.md §10.
        limits: Limits,
        /// Timing of §3 and §7.
        timing: Timing,
        /// `lectern relay` (docs/RELAY.md).
        relay: RelayKeys,
    }
    not_keys {
        /// The program that checks uploaded PDFs in a process of its own, and the memory it may use
        /// (`docs::check`): `lectern serve` names itself. None checks them in this process.
        pdf_checker: Option<(PathBuf, u64)> = None,
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
