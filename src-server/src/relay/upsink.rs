//! What a relay's students do, written to each room's `up` stream for the teacher's server to read
//! (see `upstream`). A sink of the relay's rooms' reports: it never holds up a room. Every entry names
//! the relay, and at a set interval (`alive`, with `every`: the interval) the relay says it is alive in each room it has students in, so the
//! teacher's server notices a relay that crashed (see `presence`).
//!
//! Entries that could not be written (Redis was away) are not replayed one by one: once Redis is
//! back, the relay says whom it has in every room (`reset`, `here` for each, `synced`), which also
//! settles the leaves that were lost.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::entries::OwnEntries;
use crate::cloud::connect::Redis;
use crate::cloud::keys;
use crate::engine::report::{Event, Report, ReportSink};
use crate::metrics::Metrics;
use crate::protocol::Role;

/// Reports waiting to be written.
const QUEUE: usize = 8192;

/// The most entries written in one round trip.
const BATCH: usize = 256;

/// The relay rooms' end of the reports, and the way a room asks for its students to be announced
/// again.
pub struct UpSink {
    tx: mpsc::Sender<Report>,
    resync: mpsc::Sender<String>,
    relay: String,
    entries: Arc<OwnEntries>,
}

impl ReportSink for UpSink {
    fn offer(&self, report: Report) -> Result<(), Report> {
        self.tx.try_send(report).map_err(|e| match e {
            mpsc::error::TrySendError::Full(r) | mpsc::error::TrySendError::Closed(r) => r,
        })
    }

    fn confirms(&self) -> bool {
        false
    }
}

impl UpSink {
    /// Says again whom this relay has in `room` (the teacher's server began a new epoch and may have
    /// lost them).
    pub fn announce(&self, room: &str) {
        let _ = self.resync.try_send(room.to_string());
    }

    /// Whether `entry` is the latest entry this relay wrote for connection `conn` of `room` (see
    /// [`OwnEntries::is_own`]).
    pub async fn is_own_entry(&self, room: &str, conn: u64, entry: &str) -> bool {
        self.entries.is_own(room, conn, entry).await
    }

    /// This relay's id in the rooms' `up` streams (new at each start), which the teacher's server
    /// signs its refusals for.
    pub fn relay(&self) -> &str {
        &self.relay
    }
}

/// A sink for relay `relay`, which says it is alive every `alive`, and its writer, a task of `tracker`
/// that writes what it gets to Redis until `stop`, and then what was queued before it.
pub fn start(
    client: Redis,
    relay: String,
    alive: Duration,
    metrics: Metrics,
    stop: CancellationToken,
    tracker: &TaskTracker,
) -> Arc<UpSink> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let (resync, resync_rx) = mpsc::channel(1024);
    let entries = Arc::new(OwnEntries::default());
    let writer = Writer {
        relay: relay.clone(),
        every: alive.as_millis().to_string(),
        online: HashMap::new(),
        at_ttl_ms: u64::try_from(alive.as_millis().saturating_mul(3)).unwrap_or(u64::MAX).max(1),
        metrics,
        entries: entries.clone(),
    };
    tracker.spawn(writer.run(client, alive, rx, resync_rx, stop));
    Arc::new(UpSink { tx, resync, relay, entries })
}

/// A student connected to this relay: its id, name and device, and its presence as written to
/// Redis for the room's other relays (`keys::at`).
struct Online {
    pid: String,
    name: String,
    device: String,
    at: String,
}

struct Writer {
    relay: String,
    /// How often it says it is alive, ms (on the entries that begin a relay's life in a room).
    every: String,
    /// Who is connected, by room and connection (connection ids count per room).
    online: HashMap<(String, u64), Online>,
    /// How long a student's presence is kept in Redis unless written again: three `alive`s.
    at_ttl_ms: u64,
    metrics: Metrics,
    entries: Arc<OwnEntries>,
}

/// The connections each kept entry of a batch is for, in the batch's order.
type Kept = Vec<Vec<(String, u64)>>;

impl Writer {
    async fn run(
        mut self,
        client: Redis,
        every: Duration,
        mut rx: mpsc::Receiver<Report>,
        mut resync: mpsc::Receiver<String>,
        shutdown: CancellationToken,
    ) {
        let mut conn = None;
        let mut attempt = 0u32;
        // Rooms whose students must be announced again; all of them after Redis was lost.
        let mut again: BTreeSet<String> = BTreeSet::new();
        let mut lost = false;
        let mut alive = tokio::time::interval(every);
        alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let mut pipe = redis::pipe();
            let mut kept = Kept::new();
            // At shutdown, what is queued (the leaves of a stopping relay) is still written.
            tokio::select! {
                biased;
                r = rx.recv() => {
                    let Some(report) = r else { return };
                    self.add(&mut pipe, &mut kept, report);
                    for _ in 1..BATCH {
                        let Ok(report) = rx.try_recv() else { break };
                        self.add(&mut pipe, &mut kept, report);
                    }
                }
                Some(room) = resync.recv() => {
                    again.insert(room);
                }
                _ = alive.tick() => {
                    let rooms: BTreeSet<&String> = self.online.keys().map(|(room, _)| room).collect();
                    for room in rooms {
                        let fields = [("k", "alive"), ("relay", &self.relay), ("every", &self.every)];
                        keys::add_entry(&mut pipe, &keys::up(room), &fields);
                    }
                    // Each student's presence, for second paths that land on another relay, unless
                    // it has moved to another relay (or connection) since.
                    let mut said = BTreeSet::new();
                    for ((room, _), online) in &self.online {
                        if said.insert((room, &online.pid)) {
                            self.refresh_at(&mut pipe, room, &online.pid, &online.at);
                        }
                    }
                }
                _ = shutdown.cancelled() => return,
            }
            if conn.is_none() {
                match client.connect().await {
                    Ok(c) => {
                        conn = Some(c);
                        attempt = 0;
                    }
                    Err(_) => {
                        lost = true;
                        self.metrics.relay_lost.increment(pipe.len() as u64);
                        attempt += 1;
                        let wait =
                            crate::cloud::backoff::retry_after(attempt).min(Duration::from_millis(500));
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                }
            }
            let Some(c) = conn.as_mut() else { continue };
            if std::mem::take(&mut lost) {
                again.extend(self.online.keys().map(|(room, _)| room.clone()));
            }
            let mut announced = redis::pipe();
            let mut kept_announced = Kept::new();
            for room in &again {
                self.announce(&mut announced, &mut kept_announced, room);
            }
            let mut ok = true;
            for (batch, kept) in [(&announced, kept_announced), (&pipe, kept)] {
                if !ok || batch.is_empty() {
                    continue;
                }
                match batch.query_async::<Vec<String>>(c).await {
                    Ok(ids) => self.keep(kept, ids),
                    Err(_) => {
                        self.entries.failed(kept.into_iter().flatten());
                        ok = false;
                    }
                }
            }
            if ok {
                again.clear();
            } else {
                conn = None;
                lost = true;
                self.metrics.relay_lost.increment(pipe.len() as u64);
            }
        }
    }

    /// Notes the ids Redis gave the kept entries of a batch, for the connections each was for.
    fn keep(&self, kept: Kept, ids: Vec<String>) {
        let mut ids = ids.into_iter();
        for conns in kept {
            match ids.next() {
                Some(id) => self.entries.written(conns, &id, |key| self.online.contains_key(key)),
                None => self.entries.failed(conns),
            }
        }
    }

    /// Adds the entry for one report, and notes who is connected.
    fn add(&mut self, pipe: &mut redis::Pipeline, kept: &mut Kept, report: Report) {
        let room = report.room.to_string();
        let relay = self.relay.as_str();
        match report.event {
            Event::Joined { conn, pid, name, device, addr, role: Role::Student, .. } => {
                // Its presence first, in the same batch: once the teacher's server has read the
                // join, the room's other relays find the student too.
                let addr = addr.map(|a| a.to_string()).unwrap_or_default();
                let at = keys::At { relay: relay.to_string(), addr, conn };
                let at = serde_json::to_string(&at).unwrap_or_default();
                self.say_at(pipe, &room, &pid, &at);
                let n = conn.to_string();
                let fields = [
                    ("k", "join"),
                    ("relay", relay),
                    ("every", &self.every),
                    ("pid", &pid),
                    ("name", &name),
                    ("device", &device),
                    ("conn", &n),
                ];
                keys::add_entry_kept(pipe, &keys::up(&room), &fields);
                let key = (room.clone(), conn);
                self.entries.pending(std::slice::from_ref(&key));
                kept.push(vec![key]);
                self.online.insert((room, conn), Online { pid, name, device, at });
            }
            Event::Left { conn, .. } => {
                self.entries.left(&(room.clone(), conn));
                if let Some(gone) = self.online.remove(&(room.clone(), conn)) {
                    let fields = [("k", "leave"), ("relay", relay), ("pid", gone.pid.as_str())];
                    keys::add_entry(pipe, &keys::up(&room), &fields);
                    // Its last connection here: its presence goes, unless another relay has it now.
                    if !self.online.iter().any(|((r, _), o)| *r == room && o.pid == gone.pid) {
                        pipe.cmd("EVAL")
                            .arg(keys::FORGET_AT)
                            .arg(1)
                            .arg(keys::at(&room, &gone.pid))
                            .arg(&gone.at)
                            .ignore();
                    }
                }
            }
            Event::Hand { pid, up, .. } => {
                let up = if up { "1" } else { "0" };
                keys::add_entry(
                    pipe,
                    &keys::up(&room),
                    &[("k", "hand"), ("relay", relay), ("pid", &pid), ("up", up)],
                );
            }
            Event::Ack { pid, seq, .. } => {
                let seq = seq.to_string();
                keys::add_entry(
                    pipe,
                    &keys::up(&room),
                    &[("k", "ack"), ("relay", relay), ("pid", &pid), ("seq", &seq)],
                );
            }
            _ => {}
        }
    }

    /// Says in Redis, for the room's other relays, that student `pid` is online here (`at`): on a
    /// join, whichever relay had it before.
    fn say_at(&self, pipe: &mut redis::Pipeline, room: &str, pid: &str, at: &str) {
        pipe.cmd("SET").arg(keys::at(room, pid)).arg(at).arg("PX").arg(self.at_ttl_ms).ignore();
    }

    /// Says it again (every `alive`, and after Redis was away), unless the student has joined on
    /// another relay or connection since.
    fn refresh_at(&self, pipe: &mut redis::Pipeline, room: &str, pid: &str, at: &str) {
        let key = keys::at(room, pid);
        pipe.cmd("EVAL").arg(keys::REFRESH_AT).arg(1).arg(key).arg(at).arg(self.at_ttl_ms).ignore();
    }

    /// Adds the entries that say whom this relay has in `room`: `reset`, `here` for each (with its
    /// number of connections), `synced`.
    fn announce(&self, pipe: &mut redis::Pipeline, kept: &mut Kept, room: &str) {
        let stream = keys::up(room);
        let relay = self.relay.as_str();
        let mut here: HashMap<&str, (&Online, Vec<u64>)> = HashMap::new();
        for ((_, conn), online) in self.online.iter().filter(|((r, _), _)| r == room) {
            here.entry(online.pid.as_str()).or_insert((online, Vec::new())).1.push(*conn);
        }
        keys::add_entry(pipe, &stream, &[("k", "reset"), ("relay", relay), ("every", &self.every)]);
        for (pid, (online, conns)) in here {
            // Its presence may have expired while Redis was away.
            self.refresh_at(pipe, room, pid, &online.at);
            let n = conns.len().to_string();
            let keys: Vec<_> = conns.iter().map(|c| (room.to_string(), *c)).collect();
            self.entries.pending(&keys);
            kept.push(keys);
            let conns = conns.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
            let fields = [
                ("k", "here"),
                ("relay", relay),
                ("pid", pid),
                ("name", &online.name),
                ("device", &online.device),
                ("n", &n),
                ("conns", &conns),
            ];
            keys::add_entry_kept(pipe, &stream, &fields);
        }
        keys::add_entry(pipe, &stream, &[("k", "synced"), ("relay", relay)]);
    }
}
