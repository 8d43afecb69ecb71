//! How many connections the server keeps open, in all and per address. A flood of connections that
//! never say anything (an idle TLS session, a raw HTTP/2 preface) must not take the descriptors the
//! class needs: each address (an IPv6 /64) gets at most `limits.max_connections_per_address` open at
//! once, and the total stays well below the process's descriptor limit.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::engine::rate::address_bucket;

/// Descriptors kept back from connections: the session log, documents, mDNS, the listener, logs.
const RESERVED_DESCRIPTORS: u64 = 256;

/// The connection cap for this process: `wanted`, lowered to stay below the descriptor limit (which
/// is raised first to the hard limit the system allows). Said in the log when lowered.
pub fn total_cap(wanted: usize) -> usize {
    let limit = rlimit::increase_nofile_limit(u64::MAX)
        .or_else(|_| rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft))
        .unwrap_or(1024);
    // (An unlimited limit is u64::MAX: divided before it is multiplied, so it cannot overflow.)
    let fits = usize::try_from(limit.saturating_sub(RESERVED_DESCRIPTORS) / 4 * 3).unwrap_or(usize::MAX);
    if fits < wanted {
        tracing::warn!(
            wanted,
            cap = fits.max(16),
            descriptors = limit,
            "limits.max_connections lowered to stay below the descriptor limit"
        );
    }
    wanted.min(fits).max(16)
}

/// Open connections by address, and how fast each address opens new ones.
pub struct PerAddress {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
    /// New connections per address: an eighth of `max` a second, half of it at once. Each costs a
    /// TLS handshake, so an address refused for its pace (a flood of refused links, say) cannot
    /// make the server shake hands as fast as the attacker's CPU allows; a class behind one NAT
    /// opening its pages together fits in the burst.
    opened: Option<governor::DefaultKeyedRateLimiter<IpAddr>>,
    /// Connections taken (every so many, addresses that stopped connecting are forgotten).
    taken: std::sync::atomic::AtomicU64,
}

/// One open connection's place in [`PerAddress`]; given back when dropped.
pub struct Slot {
    table: Arc<PerAddress>,
    key: IpAddr,
}

impl PerAddress {
    /// A table allowing `max` open connections per address.
    pub fn new(max: usize) -> Arc<PerAddress> {
        let max = max.max(1);
        let nz = |n: usize| {
            std::num::NonZeroU32::new(u32::try_from(n).unwrap_or(u32::MAX).max(1))
                .unwrap_or(std::num::NonZeroU32::MIN)
        };
        let quota = governor::Quota::per_second(nz((max / 8).max(16))).allow_burst(nz((max / 2).max(64)));
        // A cap lifted for a relay behind a load balancer (every student one address) lifts the pace too.
        let opened = (max < 1 << 20).then(|| governor::RateLimiter::keyed(quota));
        Arc::new(PerAddress { max, open: Mutex::default(), opened, taken: Default::default() })
    }

    /// A place for one more connection from `ip`, or none when its address has `max` open, or has
    /// opened connections faster than it may.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let key = address_bucket(ip);
        if let Some(opened) = &self.opened {
            if self.taken.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 4096 == 4095 {
                opened.retain_recent();
            }
            if opened.check_key(&key).is_err() {
                return None;
            }
        }
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(key).or_default();
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Slot { table: self.clone(), key })
    }
}

/// A connection's stream, holding what the connection counts against (its permit of the total, its
/// slot of its address) until the stream itself is dropped: after an HTTP upgrade the WebSocket owns
/// the stream, so a WebSocket is counted for its whole life, not only while it was HTTP.
pub struct Held<S, G> {
    stream: S,
    _guards: G,
}

impl<S, G> Held<S, G> {
    /// `stream`, holding `guards` for as long as it lives.
    pub fn new(stream: S, guards: G) -> Held<S, G> {
        Held { stream, _guards: guards }
    }
}

impl<S: AsyncRead + Unpin, G: Unpin> AsyncRead for Held<S, G> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin, G: Unpin> AsyncWrite for Held<S, G> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_share_and_no_more_and_gets_it_back() {
        let table = PerAddress::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = table.take(a).unwrap();
        let _second = table.take(a).unwrap();
        assert!(table.take(a).is_none(), "a third from the same address is refused");
        assert!(table.take(b).is_some(), "another address is not affected");
        drop(first);
        assert!(table.take(a).is_some(), "a closed connection gives its place back");
    }

    #[test]
    fn an_address_opening_connections_too_fast_is_held_to_its_pace() {
        let table = PerAddress::new(512);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let taken = (0..1000).filter_map(|_| table.take(a)).count();
        assert!(
            (256..=270).contains(&taken),
            "a burst of half the cap, then an eighth of it a second: {taken}"
        );
        assert!(table.take("192.0.2.2".parse().unwrap()).is_some(), "another address is not affected");
    }

    #[test]
    fn an_ipv6_slash_64_is_one_address() {
        let table = PerAddress::new(1);
        let _one = table.take("2001:db8::1".parse().unwrap()).unwrap();
        assert!(table.take("2001:db8::ffff:1".parse().unwrap()).is_none());
        assert!(table.take("2001:db8:0:1::1".parse().unwrap()).is_some());
    }

    /// The room's side of the same rule: one address holds only so many students' seats, and
    /// devices that joined and left never fill the table of known participants.
    #[tokio::test]
    async fn one_address_holds_few_seats_and_departed_devices_never_lock_the_class_out() {
        use crate::config::Config;
        use crate::engine::room::join::JoinError;
        use crate::protocol::Hello;
        use crate::server::AppState;
        let dir = tempfile::tempdir().unwrap();
        let mut config =
            Config { data_dir: Some(dir.path().into()), code: Some("482913".into()), ..Config::default() };
        config.limits.max_students_per_address = 3;
        config.limits.max_participants = 5;
        let app = AppState::new(crate::server::setup::prepare(&config).unwrap().parts);
        let room = app.room();
        let student = |device: String| Hello {
            v: Some(1.into()),
            role: Some("student".into()),
            code: Some("482913".into()),
            name: Some("Student".into()),
            device: Some(device),
            ..Hello::default()
        };
        let lan = |n: u8| Some(IpAddr::from([192, 168, 1, n]));
        for i in 0..3 {
            room.join(student(format!("device-a-{i:04}")), lan(7), false).unwrap();
        }
        let fourth = room.join(student("device-a-0003".into()), lan(7), false);
        assert!(
            matches!(fourth.err(), Some(JoinError::TooManyFromAddress)),
            "a fourth seat from one address"
        );
        room.join(student("device-b-0000".into()), lan(8), false).unwrap();
        // 2,000 devices join and leave (the table of known participants holds 20 here).
        for i in 0..2000u32 {
            let joined =
                room.join(student(format!("churn-{i:06}")), lan(9 + (i % 200) as u8), false).unwrap();
            room.leave(&joined.pid, joined.conn);
        }
        assert!(
            room.join(student("device-c-0000".into()), lan(250), false).is_ok(),
            "a new student still joins"
        );
        app.host.shutdown.cancel();
        app.store.close(std::time::Duration::from_secs(1));
    }

    #[test]
    fn the_total_stays_below_the_descriptor_limit() {
        let cap = total_cap(usize::MAX);
        let limit = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap().0;
        assert!((cap as u64) < limit, "{cap} connections with {limit} descriptors");
    }
}
