//! The app's shared state: the lesson connections (the bridge), the document cache, the settings,
//! the classroom server while teaching, and the classroom browser while looking for a class.

use std::path::PathBuf;
use std::sync::Mutex;

use lectern::config::{Config, Source};
use lectern::discovery::{Browser, Found, Interfaces};
use lectern::protocol::http::Ready;
use lectern::server::Server;

use crate::awake::Awake;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::bridge::Bridge;
use crate::docs::DocCache;
use crate::error::CommandError;
use crate::settings::{Mode, SettingsFile};

/// A join link the app was opened with (deep link, pasted link, or the command line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct JoinTarget {
    /// `wss://HOST:PORT/v1/ws`.
    pub ws: String,
    /// `https://HOST:PORT`.
    pub http: String,
    /// Join code, if the link carried it.
    pub code: Option<String>,
    /// Fingerprint to pin; empty for a relay whose certificate is for its name (`lectern relay
    /// --acme`), which is checked against the web's authorities as a browser checks it.
    pub fingerprint: String,
    /// Through a relay (PROTOCOL-ADDITIONS.md, section E): the room on the teacher's server.
    pub room: Option<String>,
    /// Through a relay: the teacher's public key every state is checked against.
    pub pk: Option<String>,
}

impl JoinTarget {
    /// Reads a `lectern://join?…`, `https://HOST:PORT/join#code=…&fp=…` or similar link.
    pub fn parse(link: &str) -> Result<JoinTarget, CommandError> {
        // lectern://HOST:PORT/join#code=…&fp=… is the https link with another scheme.
        let link = link
            .trim()
            .strip_prefix("lectern://")
            .map_or(link.trim().to_string(), |rest| format!("https://{rest}"));
        let parsed = lectern::protocol::link::JoinLink::parse(&link)
            .map_err(|e| CommandError::Invalid(e.to_string()))?;
        let relay = parsed.relay().is_some();
        let fingerprint = match parsed.fingerprint.clone() {
            Some(fp) if lectern::protocol::link::is_fingerprint(&fp) => fp,
            Some(_) => {
                return Err(CommandError::Invalid(
                    "the link's certificate fingerprint (fp=…) is malformed".into(),
                ));
            }
            // A relay with a certificate for its name has none to pin: its name is checked against
            // the web's authorities, and every state it passes on against the teacher's key.
            None if relay => String::new(),
            None if parsed.room.is_some() => {
                return Err(CommandError::Invalid(
                    "the relay's link has no certificate fingerprint (fp=…) and no well-formed teacher's key (pk=…)"
                        .into(),
                ));
            }
            None => {
                return Err(CommandError::Invalid(
                    "the link carries no certificate fingerprint (fp=…)".into(),
                ));
            }
        };
        let http = parsed
            .ws_url
            .replacen("wss://", "https://", 1)
            .trim_end_matches(lectern::protocol::WS_PATH)
            .to_string();
        Ok(JoinTarget {
            ws: parsed.ws_url,
            http,
            code: parsed.code,
            fingerprint,
            room: parsed.room,
            pk: parsed.pk,
        })
    }
}

fn toml_string(path: &std::path::Path) -> lectern::config::Value {
    lectern::config::Value::String(path.display().to_string())
}

/// Everything the app holds.
pub struct AppState {
    /// The view's lesson connections.
    pub bridge: Bridge,
    /// Documents by SHA-256.
    pub docs: DocCache,
    /// What the app remembers.
    pub settings: Mutex<SettingsFile>,
    /// The classroom server, while teaching.
    pub teaching: Mutex<Option<Server>>,
    /// Stops the classroom browser.
    pub browsing: Mutex<Option<CancellationToken>>,
    /// Where the teacher's classroom keeps its data.
    pub data_dir: PathBuf,
    /// A link the app was opened with, until the view takes it.
    pub link: Mutex<Option<JoinTarget>>,
    /// Files the person chose in the file dialog: the only ones the view may have read.
    pub picked: Mutex<std::collections::HashSet<PathBuf>>,
    /// Relays the person opened a link to that pins no certificate (`wss://HOST:PORT/v1/ws`): the only
    /// servers the view may reach checked by name rather than pinned.
    pub by_name: Mutex<std::collections::HashSet<String>>,
    /// The screen kept on: while teaching, and while the student view follows a lesson.
    pub awake: Awake,
}

impl AppState {
    /// The app's state over `data_dir`.
    pub fn new(data_dir: PathBuf) -> AppState {
        AppState {
            bridge: Bridge::default(),
            docs: DocCache::new(data_dir.join("docs-cache")),
            settings: Mutex::new(SettingsFile::load(&data_dir)),
            teaching: Mutex::new(None),
            browsing: Mutex::new(None),
            link: Mutex::new(None),
            picked: Mutex::new(std::collections::HashSet::new()),
            by_name: Mutex::new(std::collections::HashSet::new()),
            awake: Awake::default(),
            data_dir,
        }
    }

    /// Notes a link the person opened: a relay's that pins no certificate may then be reached by
    /// name.
    pub fn opened(&self, target: &JoinTarget) {
        if target.fingerprint.is_empty() {
            self.by_name.lock().unwrap_or_else(|p| p.into_inner()).insert(target.ws.clone());
        }
    }

    /// Whether the view may reach `url` with `fingerprint`: pinned, any server; with none (checked by
    /// name against the web's authorities), only a relay whose link the person opened.
    pub fn may_reach(&self, url: &str, fingerprint: &str) -> Result<(), CommandError> {
        let named = || {
            let ws = lectern::protocol::link::JoinLink::parse(url).ok()?.ws_url;
            Some(self.by_name.lock().unwrap_or_else(|p| p.into_inner()).contains(&ws))
        };
        if !fingerprint.is_empty() || named() == Some(true) {
            return Ok(());
        }
        Err(CommandError::Invalid(format!(
            "no certificate fingerprint to pin for {url}, and no relay link named it"
        )))
    }

    /// Starts the classroom server (once) and returns its ready line. The server listens on
    /// `[::]:7443`, or on a free port when another program holds it; mDNS carries the port.
    pub fn teach(&self) -> Result<Ready, CommandError> {
        let mut slot = self.teaching.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(server) = slot.as_ref() {
            return Ok(server.ready().clone());
        }
        // The same settings as `lectern serve`: a lectern.toml in the classroom's folder and the
        // LECTERN_* environment (LECTERN_NO_MDNS, LECTERN_LISTEN, …) apply.
        let dir = self.data_dir.join("classroom");
        let flags = vec![("data_dir".to_string(), toml_string(&dir))];
        let mut config =
            Config::load(&Source { env: std::env::vars().collect(), flags, ..Source::default() })
                .map_err(|e| CommandError::Serve(e.into()))?;
        // Uploads are checked in a copy of this program, its memory capped (see main.rs). Not on
        // mobile, where a program cannot start a copy of itself.
        if cfg!(not(any(target_os = "android", target_os = "ios"))) {
            config.pdf_checker =
                lectern::docs::check::this_program().map(|exe| (exe, lectern::docs::check::CHECK_MEMORY));
        }
        let listener = match lectern::tcp::bind(config.listen) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                lectern::tcp::bind(std::net::SocketAddr::new(config.listen.ip(), 0))?
            }
            Err(e) => return Err(e.into()),
        };
        let server = Server::start(&config, listener)?;
        let ready = server.ready().clone();
        *slot = Some(server);
        drop(slot);
        // The teacher's device stays awake while it serves the lesson (the console asks again, and
        // says so, when the system refused: `stay_awake`). Not under the lock: it may wait on D-Bus.
        let _ = self.awake.hold("A lesson is running");
        Ok(ready)
    }

    /// The classroom's base URL on the LAN (`https://LAN-ADDRESS:PORT`), while teaching.
    pub fn lan_base(&self) -> Option<String> {
        let addr = self.teaching.lock().unwrap_or_else(|p| p.into_inner()).as_ref()?.addr();
        let port = addr.port();
        // A classroom on one address (loopback in tests, or a chosen interface) is reached there.
        let host = if addr.ip().is_unspecified() { lectern::net::lan_address() } else { addr.ip() };
        Some(if host.is_ipv6() {
            format!("https://[{host}]:{port}")
        } else {
            format!("https://{host}:{port}")
        })
    }

    /// Stops the classroom server: 4503 to every student, the mDNS goodbye, the log flushed.
    pub async fn stop_teaching(&self) {
        let server = self.teaching.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(server) = server {
            server.wait_stopped().await;
            self.awake.release();
        }
    }

    /// Remembers the mode.
    pub fn set_mode(&self, mode: Mode) -> Result<(), CommandError> {
        let mut file = self.settings.lock().unwrap_or_else(|p| p.into_inner());
        file.settings.mode = Some(mode);
        Ok(file.save()?)
    }

    /// Browses for classrooms until [`AppState::stop_browsing`], reporting each change.
    pub fn browse(&self, report: impl Fn(Found) + Send + 'static) {
        let stop = CancellationToken::new();
        if let Some(old) = self.browsing.lock().unwrap_or_else(|p| p.into_inner()).replace(stop.clone()) {
            old.cancel();
        }
        tokio::spawn(async move {
            let mut browser = match Browser::open(&Interfaces::Usable).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot look for classrooms on this network");
                    return;
                }
            };
            loop {
                // Browse in slices, so a stop is noticed within a second.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
                tokio::select! {
                    _ = stop.cancelled() => break,
                    found = browser.next(deadline) => if let Some(found) = found { report(found) },
                }
            }
            browser.close().await;
        });
    }

    /// Stops looking for classrooms.
    pub fn stop_browsing(&self) {
        if let Some(stop) = self.browsing.lock().unwrap_or_else(|p| p.into_inner()).take() {
            stop.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::JoinTarget;

    const FP: &str = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGw";

    /// A relay's link may pin no fingerprint (its certificate is for its name, `--acme`): the app then
    /// checks the name as a browser does, and keeps the room and key to check every state. A
    /// classroom's link must pin one, and a malformed one is never taken for none.
    #[test]
    fn a_relay_link_without_a_fingerprint_is_followed_by_name_and_a_classroom_link_needs_one() {
        let relay = JoinTarget::parse(&format!("https://relay.example.org/join#room=r1&code=482913&pk={FP}"))
            .unwrap();
        assert_eq!(relay.fingerprint, "");
        assert_eq!((relay.room.as_deref(), relay.pk.as_deref()), (Some("r1"), Some(FP)));
        assert_eq!(relay.ws, "wss://relay.example.org:443/v1/ws");
        assert!(JoinTarget::parse("https://192.168.1.20:7443/join#code=482913").is_err());
        assert!(
            JoinTarget::parse(&format!("https://relay.example.org/join#room=r1&pk={FP}&fp=short")).is_err()
        );
        // A link that only looks like a relay's (no room, or a key that is not one) would pin nothing
        // and check nothing: refused.
        for bad in ["room=r1&pk=", "room=r1&pk=KEY", "room=&pk=", "pk=x"] {
            assert!(JoinTarget::parse(&format!("https://relay.example.org/join#{bad}")).is_err(), "{bad}");
        }
        assert!(JoinTarget::parse(&format!("https://relay.example.org/join#room=&pk={FP}")).is_err());
        let classroom =
            JoinTarget::parse(&format!("https://192.168.1.20:7443/join#code=482913&fp={FP}")).unwrap();
        assert_eq!((classroom.fingerprint.as_str(), classroom.room), (FP, None));
    }

    /// Without a fingerprint the view reaches only a relay whose link the person opened: an empty
    /// fingerprint is no way around pinning for any other server.
    #[test]
    fn the_view_reaches_by_name_only_a_relay_whose_link_was_opened() {
        let dir = tempfile::tempdir().unwrap();
        let state = super::AppState::new(dir.path().to_path_buf());
        let relay = JoinTarget::parse(&format!("https://relay.example.org/join#room=r1&pk={FP}")).unwrap();
        assert!(state.may_reach("wss://relay.example.org:443/v1/ws", "").is_err(), "not opened yet");
        state.opened(&relay);
        assert!(state.may_reach("wss://relay.example.org:443/v1/ws", "").is_ok());
        assert!(state.may_reach("https://relay.example.org:443", "").is_ok(), "its documents too");
        assert!(state.may_reach("https://elsewhere.example.org", "").is_err());
        assert!(state.may_reach("wss://192.168.1.20:7443/v1/ws", FP).is_ok(), "pinned: any server");
    }
}
