//! The server's side of discovery: announcing `_lectern._tcp.local.` with the §8 TXT record, following
//! lesson changes and interfaces, and saying goodbye on shutdown.

use std::collections::BTreeSet;
use std::time::Duration;

use mdns_sd::{ServiceDaemon, ServiceInfo};

use super::interfaces::{Interfaces, apply, mdns_error};
use crate::error::{Error, Result};
use crate::protocol::WS_PATH;
use crate::protocol::link::{SERVICE_TYPE, Txt, cut};

/// The longest DNS label (the instance name), in bytes.
pub const MAX_LABEL_BYTES: usize = 63;
/// How often the interface choice is re-applied.
const RESCAN: Duration = Duration::from_secs(5);

/// What the server announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// Instance name: the classroom's name.
    pub name: String,
    /// TCP port of the HTTPS/WebSocket server.
    pub port: u16,
    /// Certificate fingerprint (`fp`).
    pub fingerprint: String,
    /// Room id (`room`).
    pub room: String,
    /// Lesson title (`title`, cut to 64 bytes).
    pub title: String,
    /// The teacher's server's signing key (`pk`).
    pub pk: Option<String>,
}

impl Announcement {
    /// The §8 TXT properties.
    pub fn txt(&self) -> Vec<(String, String)> {
        Txt {
            fingerprint: self.fingerprint.clone(),
            room: self.room.clone(),
            title: self.title.clone(),
            path: WS_PATH.into(),
            pk: self.pk.clone(),
        }
        .pairs()
    }
}

/// A DNS label for the host: letters, digits and hyphens, at most 63 bytes.
fn host_label() -> String {
    let raw = crate::net::host_name();
    let label: String =
        raw.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).take(63).collect();
    let label = label.trim_matches('-').to_string();
    if label.is_empty() { "lectern".into() } else { label }
}

/// The server's mDNS announcement: registered at start, updated when the lesson changes, withdrawn
/// with goodbye packets on shutdown.
pub struct Announcer {
    daemon: ServiceDaemon,
    fullname: String,
    current: Announcement,
    interfaces: Interfaces,
    enabled: BTreeSet<String>,
}

impl Announcer {
    /// Starts announcing on the chosen interfaces.
    pub fn start(announcement: Announcement, interfaces: Interfaces) -> Result<Announcer> {
        let daemon = ServiceDaemon::new().map_err(mdns_error)?;
        let enabled = interfaces.select();
        if enabled.is_empty() {
            tracing::warn!(
                "no usable network interface for mDNS; students will need the join link or QR code \
                 (run `lectern doctor`)"
            );
        }
        apply(&daemon, &enabled)?;
        let mut announcer =
            Announcer { daemon, fullname: String::new(), current: announcement.clone(), interfaces, enabled };
        announcer.register(&announcement)?;
        tracing::info!(name = %announcement.name, interfaces = ?announcer.enabled, "announcing on the LAN (mDNS)");
        Ok(announcer)
    }

    fn register(&mut self, a: &Announcement) -> Result<()> {
        let host = format!("{}.local.", host_label());
        // The instance name is one DNS label: at most 63 bytes, or mdns-sd silently sends nothing.
        let name = cut(&a.name, MAX_LABEL_BYTES);
        if name.len() < a.name.len() {
            tracing::warn!(name = %a.name, announced = %name, "the classroom name is cut to 63 bytes for mDNS");
        }
        let info = ServiceInfo::new(SERVICE_TYPE, name, &host, (), a.port, &a.txt()[..])
            .map_err(mdns_error)?
            .enable_addr_auto();
        self.fullname = info.get_fullname().to_string();
        // Registering the same name again replaces its records (TXT included) for every browser.
        self.daemon.register(info).map_err(mdns_error)?;
        self.current = a.clone();
        Ok(())
    }

    /// Re-announces with a new room or title (a new lesson).
    pub fn update(&mut self, room: &str, title: &str) -> Result<()> {
        if self.current.room == room && self.current.title == title {
            return Ok(());
        }
        let next = Announcement { room: room.into(), title: title.into(), ..self.current.clone() };
        self.register(&next)
    }

    /// Re-applies the interface choice (interfaces come and go); true if it changed.
    pub fn rescan(&mut self) -> Result<bool> {
        let now = self.interfaces.select();
        if now == self.enabled {
            return Ok(false);
        }
        tracing::info!(interfaces = ?now, "mDNS interfaces changed");
        apply(&self.daemon, &now)?;
        self.enabled = now;
        let current = self.current.clone();
        self.register(&current)?;
        Ok(true)
    }

    /// Withdraws the service (goodbye packets, TTL 0) and stops the daemon.
    pub fn stop(self) {
        if let Ok(rx) = self.daemon.unregister(&self.fullname) {
            let _ = rx.recv_timeout(Duration::from_secs(1));
        }
        if let Ok(rx) = self.daemon.shutdown() {
            let _ = rx.recv_timeout(Duration::from_secs(1));
        }
    }
}

/// Runs an announcer until `stop` resolves: follows the lesson's (room, title) and the interfaces.
pub async fn announce(
    announcement: Announcement,
    mut lessons: tokio::sync::watch::Receiver<(String, String)>,
    interfaces: Interfaces,
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let mut announcer = tokio::task::spawn_blocking(move || Announcer::start(announcement, interfaces))
        .await
        .map_err(|e| Error::Mdns(e.to_string()))??;
    let mut rescan = tokio::time::interval(RESCAN);
    rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            changed = lessons.changed() => {
                if changed.is_err() { break; }
                let (room, title) = lessons.borrow_and_update().clone();
                if let Err(e) = announcer.update(&room, &title) {
                    tracing::warn!(error = %e, "could not update the mDNS announcement");
                }
            }
            _ = rescan.tick() => {
                if let Err(e) = announcer.rescan() {
                    tracing::warn!(error = %e, "could not re-apply the mDNS interfaces");
                }
            }
        }
    }
    let _ = tokio::task::spawn_blocking(move || announcer.stop()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::protocol::link::MAX_TITLE_BYTES;

    #[test]
    fn txt_has_the_protocol_keys_and_a_short_title() {
        let a = Announcement {
            name: "Room 4".into(),
            port: 7443,
            fingerprint: "f".repeat(43),
            room: "r1".into(),
            title: "ق".repeat(40),
            pk: Some("p".repeat(43)),
        };
        let txt: HashMap<String, String> = a.txt().into_iter().collect();
        assert_eq!(txt["v"], "1");
        assert_eq!(txt["pk"], "p".repeat(43));
        assert_eq!(txt["path"], "/v1/ws");
        assert_eq!(txt["room"], "r1");
        assert!(txt["title"].len() <= MAX_TITLE_BYTES);
        assert!(txt["title"].chars().all(|c| c == 'ق'));
    }
}
