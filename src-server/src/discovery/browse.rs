//! The student's side of discovery: browsing for classrooms, resolving them to addresses and a
//! fingerprint to pin, and finding one by name.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use mdns_sd::{ServiceDaemon, ServiceEvent};
use serde::Serialize;

use super::interfaces::{Interfaces, apply, mdns_error};
use crate::error::{Error, Result};
use crate::protocol::link::{SERVICE_TYPE, Txt};

/// A classroom found on the LAN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Classroom {
    /// Instance name (the classroom's name).
    pub name: String,
    /// Lesson title from TXT.
    pub title: String,
    /// Room id from TXT.
    pub room: String,
    /// Addresses, IPv4 first.
    #[cfg_attr(feature = "ts", ts(type = "string[]"))]
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
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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
            let wait = self.until_retry().map_or(left, |r| r.min(left));
            let event = match tokio::time::timeout(wait, self.rx.recv_async()).await {
                Ok(Ok(event)) => event,
                Ok(Err(_)) => return None,
                Err(_) if Instant::now() >= deadline => return None,
                Err(_) => {
                    self.browse_again()?;
                    continue;
                }
            };
            let found = match event {
                ServiceEvent::ServiceFound(_, fullname) if !self.known.contains_key(&fullname) => {
                    self.pending.entry(fullname).or_insert_with(|| (Instant::now(), 0));
                    None
                }
                ServiceEvent::ServiceResolved(r) => self.resolved(&r),
                ServiceEvent::ServiceRemoved(_, fullname) => {
                    self.pending.remove(&fullname);
                    self.known.remove(&fullname).map(|_| Found::Removed { fullname })
                }
                _ => None,
            };
            if found.is_some() {
                return found;
            }
        }
    }

    /// How long until the oldest unresolved service is asked for again.
    fn until_retry(&self) -> Option<Duration> {
        // A resolve query can go unanswered: a responder multicasts a record at most once a second,
        // and later browse queries carry the pointer as a known answer, so nothing asks again.
        // Browsing anew after a while asks for the missing records again.
        let oldest = self.pending.values().map(|(since, _)| *since).min()?;
        Some((oldest + RESOLVE_RETRY).saturating_duration_since(Instant::now()))
    }

    fn browse_again(&mut self) -> Option<()> {
        let _ = self.daemon.stop_browse(SERVICE_TYPE);
        self.rx = self.daemon.browse(SERVICE_TYPE).ok()?;
        let now = Instant::now();
        self.pending.retain(|_, (since, tries)| {
            *since = now;
            *tries += 1;
            *tries <= MAX_RESOLVE_RETRIES
        });
        Some(())
    }

    /// A resolved service: a new or changed classroom, or nothing (not Lectern, no address yet, or
    /// unchanged).
    fn resolved(&mut self, r: &mdns_sd::ResolvedService) -> Option<Found> {
        let props = &r.txt_properties;
        let Some(txt) = Txt::read(|k| props.get_property_val_str(k).map(str::to_string)) else {
            self.pending.remove(&r.fullname);
            return None; // not a Lectern v1 server we can pin; do not ask again
        };
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
        if addresses.is_empty() {
            return None; // its address records are still missing: stays pending
        }
        let room = Classroom {
            name: instance_name(&r.fullname),
            title: txt.title,
            room: txt.room,
            addresses,
            port: r.port,
            fingerprint: txt.fingerprint,
            path: txt.path,
            fullname: r.fullname.clone(),
        };
        self.pending.remove(&r.fullname);
        if self.known.get(&r.fullname) == Some(&room) {
            return None;
        }
        self.known.insert(r.fullname.clone(), room.clone());
        Some(Found::Resolved(room))
    }

    /// Starts browsing from async code, without blocking the runtime's thread (mdns-sd starts a
    /// thread of its own and binds sockets).
    pub async fn open(interfaces: &Interfaces) -> Result<Browser> {
        let interfaces = interfaces.clone();
        tokio::task::spawn_blocking(move || Browser::start(&interfaces))
            .await
            .map_err(|e| Error::Mdns(e.to_string()))?
    }

    /// Stops browsing from async code.
    pub async fn close(self) {
        let _ = tokio::task::spawn_blocking(move || self.stop()).await;
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
    let mut browser = Browser::open(interfaces).await?;
    let deadline = Instant::now() + timeout;
    while browser.next(deadline).await.is_some() {}
    let found = browser.classrooms();
    browser.close().await;
    Ok(found)
}

/// Finds one classroom: the one named `name` (as soon as it resolves), or, with no name, the only one
/// found within the timeout. Errors say what was found instead.
pub async fn find(interfaces: &Interfaces, name: Option<&str>, timeout: Duration) -> Result<Classroom> {
    let mut browser = Browser::open(interfaces).await?;
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
    browser.close().await;
    if let Some(room) = hit {
        return Ok(room);
    }
    let names: Vec<String> = all.iter().map(|c| format!("\"{}\"", c.name)).collect();
    match (name, all.len()) {
        (None, 1) => Ok(all.into_iter().next().expect("one classroom")),
        (None, 0) | (Some(_), 0) => Err(Error::NotFound(format!(
            "no classroom found on the network within {} s (is the teacher's Lectern running on this \
             network? run `lectern doctor`)",
            timeout.as_secs_f32()
        ))),
        (None, _) => Err(Error::NotFound(format!(
            "{} classrooms found ({}); choose one with --discover NAME",
            all.len(),
            names.join(", ")
        ))),
        (Some(want), _) => {
            Err(Error::NotFound(format!("no classroom named \"{want}\"; found {}", names.join(", "))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_are_unescaped() {
        assert_eq!(instance_name("Room\\.4 A._lectern._tcp.local."), "Room.4 A");
        assert_eq!(instance_name("Lectern on pc._lectern._tcp.local."), "Lectern on pc");
    }
}
