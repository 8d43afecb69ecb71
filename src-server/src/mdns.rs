//! Zero-config discovery on the LAN (PROTOCOL.md §8): the server announces `_lectern._tcp.local.` with
//! the §8 TXT keys, and clients browse for classrooms. Built on mdns-sd.
//!
//! Interfaces: by default every interface that is up, skipping loopback and interfaces that look
//! virtual (docker, bridges, VPNs, veth); `--mdns-interface NAME` chooses exactly. The choice is
//! re-applied every few seconds, so an interface that appears later (Wi-Fi connecting after start) is
//! announced on too; mdns-sd follows address changes on the chosen interfaces and re-announces.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use mdns_sd::{IfKind, ServiceDaemon, ServiceEvent, ServiceInfo};
use serde::Serialize;

use crate::error::{Error, Result};

/// The DNS-SD service type of §8.
pub const SERVICE_TYPE: &str = "_lectern._tcp.local.";
/// The WebSocket path announced in TXT.
pub const WS_PATH: &str = "/v1/ws";
/// The longest `title` in TXT, in bytes (§8).
pub const MAX_TITLE_BYTES: usize = 64;
/// The longest DNS label (the instance name), in bytes.
pub const MAX_LABEL_BYTES: usize = 63;
/// How often the interface choice is re-applied.
const RESCAN: Duration = Duration::from_secs(5);

/// Which interfaces to announce and browse on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Interfaces {
    /// Every usable interface: up, not loopback, not virtual-looking.
    #[default]
    Usable,
    /// Exactly these interface names (loopback included if named).
    Named(Vec<String>),
}

impl Interfaces {
    /// From `--mdns-interface` values (none means [`Interfaces::Usable`]).
    pub fn from_names(names: &[String]) -> Interfaces {
        if names.is_empty() { Interfaces::Usable } else { Interfaces::Named(names.to_vec()) }
    }

    /// The names of the interfaces this choice selects now.
    pub fn select(&self) -> BTreeSet<String> {
        let all = if_addrs::get_if_addrs().unwrap_or_default();
        match self {
            Interfaces::Usable => all
                .iter()
                .filter(|i| !i.is_loopback() && !looks_virtual(&i.name))
                .map(|i| i.name.clone())
                .collect(),
            Interfaces::Named(names) => {
                all.iter().filter(|i| names.contains(&i.name)).map(|i| i.name.clone()).collect()
            }
        }
    }
}

/// Whether an interface name looks like a container bridge, a VPN or another virtual link, where
/// students are not.
pub fn looks_virtual(name: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "docker",
        "br-",
        "virbr",
        "veth",
        "vnet",
        "tun",
        "tap",
        "wg",
        "tailscale",
        "zt",
        "vmnet",
        "vboxnet",
        "utun",
        "lxc",
        "lxd",
        "cni",
        "flannel",
        "cali",
        "podman",
        "kube",
        "ppp",
        "ipsec",
        "gif",
        "awdl",
        "llw",
        "anpi",
        "bridge",
    ];
    let n = name.to_ascii_lowercase();
    PREFIXES.iter().any(|p| n.starts_with(p))
}

/// Applies an interface choice to a daemon: everything off, then the chosen names on.
fn apply(daemon: &ServiceDaemon, names: &BTreeSet<String>) -> Result<()> {
    daemon.disable_interface(IfKind::All).map_err(mdns_error)?;
    for name in names {
        daemon.enable_interface(IfKind::Name(name.clone())).map_err(mdns_error)?;
    }
    Ok(())
}

fn mdns_error(e: mdns_sd::Error) -> Error {
    Error::Config(format!("mDNS: {e}"))
}

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
}

impl Announcement {
    /// The §8 TXT properties.
    pub fn txt(&self) -> Vec<(String, String)> {
        vec![
            ("v".into(), "1".into()),
            ("fp".into(), self.fingerprint.clone()),
            ("room".into(), self.room.clone()),
            ("title".into(), cut(&self.title, MAX_TITLE_BYTES).to_string()),
            ("path".into(), WS_PATH.into()),
        ]
    }
}

/// A string cut to at most `max` bytes at a character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
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

    /// The full service name (`Instance._lectern._tcp.local.`).
    pub fn fullname(&self) -> &str {
        &self.fullname
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

/// Runs an announcer for a server until `stop` resolves: follows lesson changes and interfaces.
pub async fn announce(
    app: crate::server::AppState,
    port: u16,
    interfaces: Interfaces,
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let room = app.room();
    let announcement = Announcement {
        name: app.name.clone(),
        port,
        fingerprint: app.fingerprint.clone(),
        room: room.info().id.clone(),
        title: room.info().title.clone(),
    };
    drop(room);
    let mut announcer = tokio::task::spawn_blocking(move || Announcer::start(announcement, interfaces))
        .await
        .map_err(|e| Error::Config(format!("mDNS: {e}")))??;
    let mut lessons = app.lesson_changed.subscribe();
    let mut rescan = tokio::time::interval(RESCAN);
    rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            changed = lessons.changed() => {
                if changed.is_err() { break; }
                let room = app.room();
                if let Err(e) = announcer.update(&room.info().id, &room.info().title) {
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

/// A classroom found on the LAN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Classroom {
    /// Instance name (the classroom's name).
    pub name: String,
    /// Lesson title from TXT.
    pub title: String,
    /// Room id from TXT.
    pub room: String,
    /// Addresses, IPv4 first.
    pub addresses: Vec<IpAddr>,
    /// TCP port.
    pub port: u16,
    /// Certificate fingerprint from TXT, to pin.
    pub fingerprint: String,
    /// WebSocket path from TXT.
    pub path: String,
    /// Full DNS-SD name.
    pub fullname: String,
}

impl Classroom {
    /// The WebSocket URL to its first address.
    pub fn ws_url(&self) -> Option<String> {
        let addr = self.addresses.first()?;
        let host = match addr {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        Some(format!("wss://{host}:{}{}", self.port, self.path))
    }
}

/// A discovery event, for `lectern discover --watch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Found {
    /// A classroom resolved, or its records changed.
    Resolved(Classroom),
    /// A classroom said goodbye (or expired).
    Removed {
        /// Full DNS-SD name.
        fullname: String,
    },
}

/// A found service that has not resolved after this long is asked for again.
const RESOLVE_RETRY: Duration = Duration::from_millis(1200);
/// How many times a service that does not resolve is asked for again before it is left alone.
const MAX_RESOLVE_RETRIES: u32 = 8;

/// Browses for classrooms, de-duplicating by full name and merging records as they fill in.
pub struct Browser {
    daemon: ServiceDaemon,
    rx: mdns_sd::Receiver<ServiceEvent>,
    known: HashMap<String, Classroom>,
    /// Found (PTR) but not resolved yet: since when, and how many times asked again.
    pending: HashMap<String, (Instant, u32)>,
}

impl Browser {
    /// Starts browsing on the chosen interfaces.
    pub fn start(interfaces: &Interfaces) -> Result<Browser> {
        let daemon = ServiceDaemon::new().map_err(mdns_error)?;
        apply(&daemon, &interfaces.select())?;
        let rx = daemon.browse(SERVICE_TYPE).map_err(mdns_error)?;
        Ok(Browser { daemon, rx, known: HashMap::new(), pending: HashMap::new() })
    }

    /// The next change, or `None` at the deadline.
    pub async fn next(&mut self, deadline: Instant) -> Option<Found> {
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            // A resolve query can go unanswered: a responder multicasts a record at most once a second,
            // and later browse queries carry the pointer as a known answer, so nothing asks again.
            // Browsing anew after a while asks for the missing records again.
            let retry = self
                .pending
                .values()
                .map(|(since, _)| *since)
                .min()
                .map(|since| (since + RESOLVE_RETRY).saturating_duration_since(Instant::now()));
            let wait = retry.map_or(left, |r| r.min(left));
            let event = match tokio::time::timeout(wait, self.rx.recv_async()).await {
                Ok(Ok(event)) => event,
                Ok(Err(_)) => return None,
                Err(_) if Instant::now() >= deadline => return None,
                Err(_) => {
                    let _ = self.daemon.stop_browse(SERVICE_TYPE);
                    self.rx = self.daemon.browse(SERVICE_TYPE).ok()?;
                    let now = Instant::now();
                    self.pending.retain(|_, (since, tries)| {
                        *since = now;
                        *tries += 1;
                        *tries <= MAX_RESOLVE_RETRIES
                    });
                    continue;
                }
            };
            match event {
                ServiceEvent::ServiceFound(_, fullname) if !self.known.contains_key(&fullname) => {
                    self.pending.entry(fullname).or_insert_with(|| (Instant::now(), 0));
                }
                ServiceEvent::ServiceResolved(r) => {
                    let props = &r.txt_properties;
                    let get = |k: &str| props.get_property_val_str(k).unwrap_or_default().to_string();
                    let fingerprint = get("fp");
                    if get("v") != "1" || !crate::tls::is_fingerprint(&fingerprint) {
                        self.pending.remove(&r.fullname);
                        continue; // not a Lectern v1 server we can pin; do not ask again
                    }
                    let mut addresses: Vec<IpAddr> = r
                        .addresses
                        .iter()
                        .map(|a| a.to_ip_addr())
                        .filter(|a| !a.is_unspecified() && !is_link_local_v6(a))
                        .collect();
                    if let Some(old) = self.known.get(&r.fullname) {
                        addresses.extend(old.addresses.iter().copied());
                    }
                    addresses.sort_by_key(|a| (a.is_ipv6(), a.is_loopback(), *a));
                    addresses.dedup();
                    let path =
                        Some(get("path")).filter(|p| p.starts_with('/')).unwrap_or_else(|| WS_PATH.into());
                    let room = Classroom {
                        name: instance_name(&r.fullname),
                        title: get("title"),
                        room: get("room"),
                        addresses,
                        port: r.port,
                        fingerprint,
                        path,
                        fullname: r.fullname.clone(),
                    };
                    if room.addresses.is_empty() {
                        continue; // its address records are still missing: stays pending
                    }
                    if self.known.get(&r.fullname) == Some(&room) {
                        self.pending.remove(&r.fullname);
                        continue;
                    }
                    self.pending.remove(&r.fullname);
                    self.known.insert(r.fullname.clone(), room.clone());
                    return Some(Found::Resolved(room));
                }
                ServiceEvent::ServiceRemoved(_, fullname) => {
                    self.pending.remove(&fullname);
                    if self.known.remove(&fullname).is_some() {
                        return Some(Found::Removed { fullname });
                    }
                }
                _ => {}
            }
        }
    }

    /// Every classroom known now.
    pub fn classrooms(&self) -> Vec<Classroom> {
        let mut all: Vec<Classroom> = self.known.values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name).then(a.fullname.cmp(&b.fullname)));
        all
    }

    /// Stops browsing.
    pub fn stop(self) {
        let _ = self.daemon.stop_browse(SERVICE_TYPE);
        if let Ok(rx) = self.daemon.shutdown() {
            let _ = rx.recv_timeout(Duration::from_millis(500));
        }
    }
}

fn is_link_local_v6(a: &IpAddr) -> bool {
    matches!(a, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
}

/// The instance part of `Instance Name._lectern._tcp.local.` (DNS escapes undone).
pub fn instance_name(fullname: &str) -> String {
    let base = fullname.strip_suffix(&format!(".{SERVICE_TYPE}")).unwrap_or(fullname);
    let mut out = String::with_capacity(base.len());
    let mut chars = base.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Browses until the timeout and returns every classroom found.
pub async fn discover(interfaces: &Interfaces, timeout: Duration) -> Result<Vec<Classroom>> {
    let mut browser = tokio::task::block_in_place(|| Browser::start(interfaces))?;
    let deadline = Instant::now() + timeout;
    while browser.next(deadline).await.is_some() {}
    let found = browser.classrooms();
    tokio::task::block_in_place(|| browser.stop());
    Ok(found)
}

/// Finds one classroom: the one named `name` (as soon as it resolves), or, with no name, the only one
/// found within the timeout. Errors say what was found instead.
pub async fn find(interfaces: &Interfaces, name: Option<&str>, timeout: Duration) -> Result<Classroom> {
    let mut browser = tokio::task::block_in_place(|| Browser::start(interfaces))?;
    let deadline = Instant::now() + timeout;
    let mut hit = None;
    while let Some(event) = browser.next(deadline).await {
        if let (Some(want), Found::Resolved(room)) = (name, &event)
            && (room.name == want || room.name.eq_ignore_ascii_case(want))
        {
            hit = Some(room.clone());
            break;
        }
    }
    let all = browser.classrooms();
    tokio::task::block_in_place(|| browser.stop());
    if let Some(room) = hit {
        return Ok(room);
    }
    let names: Vec<String> = all.iter().map(|c| format!("\"{}\"", c.name)).collect();
    match (name, all.len()) {
        (None, 1) => Ok(all.into_iter().next().expect("one classroom")),
        (None, 0) | (Some(_), 0) => Err(Error::Config(format!(
            "no classroom found on the network within {} s (is the teacher's Lectern running on this \
             network? run `lectern doctor`)",
            timeout.as_secs_f32()
        ))),
        (None, _) => Err(Error::Config(format!(
            "{} classrooms found ({}); choose one with --discover NAME",
            all.len(),
            names.join(", ")
        ))),
        (Some(want), _) => {
            Err(Error::Config(format!("no classroom named \"{want}\"; found {}", names.join(", "))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_interfaces_are_recognised() {
        for name in ["docker0", "br-1a2b", "virbr0", "veth12ab", "tun0", "wg0", "tailscale0", "utun3"] {
            assert!(looks_virtual(name), "{name}");
        }
        for name in ["eth0", "wlan0", "wlp2s0", "enp0s31f6", "en0"] {
            assert!(!looks_virtual(name), "{name}");
        }
    }

    #[test]
    fn txt_has_the_protocol_keys_and_a_short_title() {
        let a = Announcement {
            name: "Room 4".into(),
            port: 7443,
            fingerprint: "f".repeat(43),
            room: "r1".into(),
            title: "ق".repeat(40),
        };
        let txt: HashMap<String, String> = a.txt().into_iter().collect();
        assert_eq!(txt["v"], "1");
        assert_eq!(txt["path"], "/v1/ws");
        assert_eq!(txt["room"], "r1");
        assert!(txt["title"].len() <= MAX_TITLE_BYTES);
        assert!(txt["title"].chars().all(|c| c == 'ق'));
    }

    #[test]
    fn instance_names_are_unescaped() {
        assert_eq!(instance_name("Room\\.4 A._lectern._tcp.local."), "Room.4 A");
        assert_eq!(instance_name("Lectern on pc._lectern._tcp.local."), "Lectern on pc");
    }
}
