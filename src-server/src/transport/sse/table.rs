//! The table of a server's fallback links: finding a link by its secret, places reserved for links
//! being opened (so a burst cannot pass the limits), closed links kept for their close to be
//! collected, and the reaper that ends links whose client went quiet.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, header};
use futures_util::SinkExt;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::{CLOSE_KEPT, CLOSED_IN_ALL, CLOSED_PER_ADDRESS, Link, Links, Table};

/// A place reserved for a link being opened; given back when dropped.
pub(super) struct Reserved<'a> {
    links: &'a Links,
    addr: IpAddr,
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        let mut table = self.links.lock();
        if let Some(n) = table.opening.get_mut(&self.addr) {
            *n -= 1;
            if *n == 0 {
                table.opening.remove(&self.addr);
            }
        }
    }
}

impl Table {
    /// Forgets the oldest closed links past [`CLOSED_PER_ADDRESS`] from `addr` and past
    /// [`CLOSED_IN_ALL`] in all.
    fn trim_closed(&mut self, addr: IpAddr) {
        let mut closed: Vec<([u8; 32], Instant, IpAddr)> =
            self.links.iter().filter_map(|(k, l)| l.closed_at().map(|at| (*k, at, l.addr))).collect();
        if closed.len() < CLOSED_PER_ADDRESS {
            return;
        }
        closed.sort_by_key(|(_, at, _)| std::cmp::Reverse(*at)); // newest first
        let mut here = 0;
        for (i, (key, _, from)) in closed.iter().enumerate() {
            let mine = *from == addr;
            here += usize::from(mine);
            if i >= CLOSED_IN_ALL || (mine && here > CLOSED_PER_ADDRESS) {
                self.links.remove(key);
            }
        }
    }
}

impl Links {
    /// Counts a refused open (or a link ended for what its client sent) against `addr`.
    pub(super) fn refused_open(&self, addr: IpAddr) {
        if let Some(r) = &self.refused {
            r.fail(addr);
        }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn find(&self, headers: &HeaderMap) -> Option<Arc<Link>> {
        let secret = headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")?;
        let key: [u8; 32] = Sha256::digest(secret.trim().as_bytes()).into();
        self.lock().links.get(&key).cloned()
    }

    /// Ends a link: off the table, its pump stopped, its lesson connection closed.
    pub(super) async fn end(&self, link: &Arc<Link>) {
        self.remove(link);
        link.pump.abort();
        let _ = link.sink.lock().await.close().await;
    }

    pub(super) fn remove(&self, link: &Arc<Link>) {
        self.lock().links.retain(|_, l| !Arc::ptr_eq(l, link));
    }

    /// Reserves a place for a new link from `addr`, unless that address or the server has too many
    /// open (links whose lesson connection closed do not count).
    pub(super) fn reserve(&self, addr: IpAddr) -> Option<Reserved<'_>> {
        let limits = &self.host.limits;
        let mut table = self.lock();
        table.trim_closed(addr);
        let live = |l: &&Arc<Link>| l.closed_at().is_none();
        let opening: usize = table.opening.values().sum();
        let here = table.links.values().filter(live).filter(|l| l.addr == addr).count()
            + table.opening.get(&addr).copied().unwrap_or(0);
        let all = table.links.values().filter(live).count() + opening;
        // A student with a second path (PROTOCOL-ADDITIONS N) holds two links.
        let paths = if limits.second_paths { 2 } else { 1 };
        if all >= limits.max_participants.saturating_mul(2 * paths) + 16
            || here >= limits.max_students_per_address.max(8).saturating_mul(paths)
        {
            return None;
        }
        *table.opening.entry(addr).or_default() += 1;
        Some(Reserved { links: self, addr })
    }

    /// How long a link may go without its client asking anything: three heartbeats, and never
    /// under 90 s (a browser runs a background tab's timers as rarely as once a minute).
    fn patience(&self) -> Duration {
        (self.host.timing.heartbeat * 3).max(Duration::from_secs(90))
    }

    /// Every few seconds while links exist: ends links whose client went quiet (their lesson
    /// connection closes, and an event stream still attached ends), and forgets closes nobody
    /// collected.
    pub(super) fn start_reaper(self: &Arc<Self>) {
        let links = Arc::downgrade(self);
        let (tracker, stop) = (self.host.tracker.clone(), self.host.shutdown.clone());
        self.reaper.call_once(|| {
            let closer = tracker.clone();
            tracker.spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(5));
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tick.tick() => {}
                    }
                    let Some(links) = links.upgrade() else { return };
                    if let Some(r) = &links.refused {
                        r.prune();
                    }
                    let patience = links.patience();
                    let mut gone = Vec::new();
                    links.lock().links.retain(|_, l| {
                        let quiet = l.heard.lock().unwrap_or_else(|p| p.into_inner()).elapsed() >= patience;
                        let stale = l.closed_at().is_some_and(|at| at.elapsed() >= CLOSE_KEPT);
                        if quiet || stale {
                            gone.push(l.clone());
                        }
                        !(quiet || stale)
                    });
                    for link in gone {
                        link.pump.abort();
                        closer.spawn(async move {
                            let _ = link.sink.lock().await.close().await;
                        });
                    }
                }
            });
        });
    }
}
