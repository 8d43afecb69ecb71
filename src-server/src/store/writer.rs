//! The session log's writer thread: it drains everything queued into one transaction, commits, then
//! tells the teacher its patches are durable. When a commit fails (disk full, read-only, locked), it keeps
//! the records in memory, answers pending `ok`s at once marked not durable, reports "degraded" with the
//! reason (logged once), and retries every second until the disk is back.
//!
//! Durability: a transaction that holds a significant change (page, document, highlight, mode, notice,
//! end) or a lesson commits with `synchronous=FULL`, so its `ok` promises the change survives power
//! loss; group commit keeps that to one fsync per batch, off the fan-out path. A batch of pointer moves,
//! acks, hands and joins alone commits with `synchronous=NORMAL`: in WAL mode that survives a crash of
//! Lectern at once, and the next FULL commit (at most [`SYNC_EVERY`] later, forced by a timer if nothing
//! else comes) makes it survive power loss too. Such records also wait up to [`COMMIT_WINDOW`] to share
//! a transaction. A 60 Hz pointer then costs 20 commits and one fsync a second, not 60 of each.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, params};

use super::schema::{Tx, reason};

use crate::engine::report::{Event, LessonRecord};
use crate::protocol::LessonState;

/// Records kept in memory while the disk cannot be written, before pointer moves are dropped.
const MAX_PENDING: usize = 1_000_000;
/// The longest pointer moves, acks, hands and joins wait to share a transaction (their `ok`, for a
/// pointer move, comes after it; nothing waits on it). Significant changes commit at once.
pub const COMMIT_WINDOW: Duration = Duration::from_millis(50);
/// The longest a commit that was not synced (pointer moves, acks) waits for an fsync.
pub const SYNC_EVERY: Duration = Duration::from_secs(1);

pub(crate) enum Msg {
    Lesson(LessonRecord, Option<(u64, LessonState)>),
    /// Rewrite these lessons' snapshots.
    Snapshot(Vec<i64>),
    Record(Arc<str>, Event),
    Flush(std::sync::mpsc::Sender<bool>),
    /// Write everything, answer, and end the thread.
    Stop(std::sync::mpsc::Sender<bool>),
}

pub(crate) struct Writer {
    conn: Connection,
    pending: VecDeque<Msg>,
    cache: Cache,
    degraded: Arc<Mutex<Option<String>>>,
    dropped: u64,
    depth: Arc<AtomicUsize>,
    /// The `synchronous` mode the connection is in now (`true` for FULL).
    full: bool,
    /// When the oldest commit not yet synced to disk was made.
    unsynced_since: Option<Instant>,
    /// When the oldest record waiting for a transaction was queued.
    pending_since: Option<Instant>,
    /// Something waiting must commit at once (a significant change, a lesson, a flush).
    urgent: bool,
    /// Asked to stop: write what is queued, answer, and return (the thread is then joined).
    stop: bool,
}

/// What the writer remembers between transactions.
#[derive(Default)]
struct Cache {
    /// Room id to lesson row.
    lessons: HashMap<Arc<str>, i64>,
    /// Server connection id to connection row.
    conns: HashMap<u64, i64>,
    /// Lesson row to its latest seq and state.
    states: HashMap<i64, (u64, LessonState)>,
    /// When each lesson's snapshot was last written.
    snapshots: HashMap<i64, Instant>,
    /// Lessons with a change that counts (not motion) since their snapshot was written.
    significant: std::collections::HashSet<i64>,
    /// Lessons whose marks changed since their snapshot was written (the marks are written apart).
    marks_changed: std::collections::HashSet<i64>,
    /// Write every snapshot in the next transaction (flush, shutdown).
    force_snapshot: bool,
}

/// Notes that the lesson showed a document (at `time`, the first time only).
fn shown(tx: &Connection, lesson: i64, doc: &crate::protocol::Doc, time: u64) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT OR IGNORE INTO lesson_docs VALUES (?1,?2,?3,?4,?5,?6)")?
        .execute(params![lesson, doc.id, doc.title, doc.pages, doc.sha256, time as i64])
        .map(drop)
}

fn ten_thousandths(v: f64) -> i64 {
    (v * 10_000.0).round() as i64
}

impl Writer {
    pub(crate) fn new(
        conn: Connection,
        degraded: Arc<Mutex<Option<String>>>,
        depth: Arc<AtomicUsize>,
    ) -> Writer {
        Writer {
            conn,
            pending: VecDeque::new(),
            cache: Cache::default(),
            degraded,
            dropped: 0,
            depth,
            full: true,
            unsynced_since: None,
            pending_since: None,
            urgent: false,
            stop: false,
        }
    }

    pub(crate) fn run(mut self, rx: Receiver<Msg>) {
        let mut flushes: Vec<std::sync::mpsc::Sender<bool>> = Vec::new();
        loop {
            let degraded = self.is_degraded();
            if let Some(since) = self.pending_since.filter(|_| !degraded && !self.urgent) {
                // Records are waiting for the window to close. Sleep without being woken by each new
                // one (a wake-up per pointer move costs more than its insert); urgent records unpark.
                std::thread::park_timeout(COMMIT_WINDOW.saturating_sub(since.elapsed()));
            } else {
                let wait = if degraded {
                    Duration::from_secs(1)
                } else if let Some(since) = self.unsynced_since {
                    SYNC_EVERY.saturating_sub(since.elapsed())
                } else {
                    Duration::from_secs(3600)
                };
                match rx.recv_timeout(wait) {
                    Ok(msg) => self.take(msg, &mut flushes),
                    Err(RecvTimeoutError::Timeout) => {
                        if self.unsynced_since.is_some() && self.pending.is_empty() {
                            // Nothing new came: sync what was committed without an fsync, with a snapshot.
                            self.cache.force_snapshot = true;
                            self.snapshot_all();
                        }
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        let _ = self.write();
                        return;
                    }
                }
            }
            loop {
                match rx.try_recv() {
                    Ok(msg) => self.take(msg, &mut flushes),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        let _ = self.write();
                        return;
                    }
                }
            }
            if !flushes.is_empty() {
                // A flush (shutdown) leaves an up-to-date snapshot, so the next start replays nothing.
                self.cache.force_snapshot = true;
                self.snapshot_all();
            }
            // Pointer moves, acks and joins wait up to COMMIT_WINDOW to share a transaction; anything
            // urgent commits at once, together with whatever waits.
            let due = self.urgent
                || degraded
                || self.pending_since.is_some_and(|since| since.elapsed() >= COMMIT_WINDOW);
            let ok = self.pending.is_empty() || !due || self.write();
            self.cache.force_snapshot = false;
            for f in flushes.drain(..) {
                let _ = f.send(ok);
            }
            if self.stop {
                return;
            }
        }
    }

    /// Queues a rewrite of every lesson's snapshot (a flush, or a sync after a quiet second).
    fn snapshot_all(&mut self) {
        let all: Vec<i64> = self.cache.states.keys().copied().collect();
        self.pending.push_back(Msg::Snapshot(all));
        self.urgent = true;
    }

    fn take(&mut self, msg: Msg, flushes: &mut Vec<std::sync::mpsc::Sender<bool>>) {
        self.depth.fetch_sub(1, Ordering::Relaxed);
        match msg {
            Msg::Flush(reply) => flushes.push(reply),
            Msg::Stop(reply) => {
                flushes.push(reply);
                self.stop = true;
            }
            msg => {
                if self.pending.len() >= MAX_PENDING {
                    self.shed();
                }
                self.urgent |= needs_sync(&msg);
                self.pending_since.get_or_insert_with(Instant::now);
                self.pending.push_back(msg);
            }
        }
    }

    /// Drops pointer moves (then the oldest records) when the disk has been gone for very long.
    fn shed(&mut self) {
        let before = self.pending.len();
        self.pending
            .retain(|m| !matches!(m, Msg::Record(_, Event::Patch { patch, .. }) if patch.is_motion()));
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
        }
        let dropped = (before - self.pending.len()) as u64;
        if self.dropped == 0 {
            tracing::error!(
                "the session log has been unwritable for too long; pointer moves are being dropped"
            );
        }
        self.dropped += dropped;
    }

    fn is_degraded(&self) -> bool {
        self.degraded.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// Writes everything pending in one transaction. On failure keeps it and answers `ok`s not durable.
    fn write(&mut self) -> bool {
        match self.try_write() {
            Ok(()) => {
                self.urgent = false;
                self.pending_since = None;
                for msg in self.pending.drain(..) {
                    if let Msg::Record(_, Event::Patch { done: Some(done), .. }) = msg {
                        done.call(true);
                    }
                }
                let mut d = self.degraded.lock().unwrap_or_else(|p| p.into_inner());
                if d.take().is_some() {
                    tracing::info!("session log writable again; everything kept in memory is written");
                }
                true
            }
            Err(e) => {
                // The transaction rolled back: forget lesson ids it may have assigned.
                self.cache.lessons.clear();
                // Degraded first, then the answers: a teacher told "not durable" finds /healthz saying why.
                {
                    let mut d = self.degraded.lock().unwrap_or_else(|p| p.into_inner());
                    if d.is_none() {
                        tracing::error!(error = %e, "cannot write the session log; the lesson goes on from memory and it will be written when the disk is back");
                        *d = Some(format!("session log not writable: {}", reason(&e)));
                    }
                }
                for msg in self.pending.iter_mut() {
                    if let Msg::Record(_, Event::Patch { done, .. }) = msg
                        && let Some(done) = done.take()
                    {
                        done.call(false);
                    }
                }
                false
            }
        }
    }

    fn try_write(&mut self) -> rusqlite::Result<()> {
        let full = self.cache.force_snapshot
            || self.unsynced_since.is_some_and(|since| since.elapsed() >= SYNC_EVERY)
            || self.pending.iter().any(needs_sync);
        if full != self.full {
            self.conn.pragma_update(None, "synchronous", if full { "FULL" } else { "NORMAL" })?;
            self.full = full;
        }
        let pending = std::mem::take(&mut self.pending);
        let result = self.cache.write_all(&self.conn, &pending);
        self.pending = pending;
        if result.is_ok() {
            if full {
                self.unsynced_since = None;
            } else {
                self.unsynced_since.get_or_insert_with(Instant::now);
            }
        }
        result
    }
}

/// Whether a queued message must reach the disk before its commit returns: significant changes (their
/// `ok` promises survival of power loss), lessons, and the snapshots of a flush or a forced sync.
pub(crate) fn needs_sync(msg: &Msg) -> bool {
    match msg {
        Msg::Record(_, Event::Patch { patch, .. }) => !patch.is_motion(),
        Msg::Record(..) => false,
        Msg::Lesson(..) | Msg::Snapshot(_) | Msg::Flush(_) | Msg::Stop(_) => true,
    }
}

impl Cache {
    fn lesson_id(&mut self, tx: &Connection, room: &Arc<str>) -> rusqlite::Result<Option<i64>> {
        if let Some(id) = self.lessons.get(room) {
            return Ok(Some(*id));
        }
        let id: Option<i64> = tx
            .prepare_cached("SELECT id FROM lessons WHERE room = ?1")?
            .query_row([&**room], |r| r.get(0))
            .optional()?;
        if let Some(id) = id {
            self.lessons.insert(room.clone(), id);
            if let std::collections::hash_map::Entry::Vacant(slot) = self.states.entry(id)
                && let Some(snapshot) = super::snapshot::load(tx, id)?
            {
                slot.insert(snapshot);
            }
        }
        Ok(id)
    }

    fn write_all(&mut self, conn: &Connection, pending: &VecDeque<Msg>) -> rusqlite::Result<()> {
        let tx = Tx::begin(conn)?;
        let mut touched: Vec<i64> = Vec::new();
        let mut new_conns: Vec<(u64, i64)> = Vec::new();
        let mut closed: Vec<u64> = Vec::new();
        for msg in pending {
            match msg {
                Msg::Flush(_) | Msg::Stop(_) => {}
                Msg::Snapshot(ids) => touched.extend(ids),
                Msg::Lesson(l, state) => {
                    tx.prepare_cached("INSERT INTO lessons (room, title, code, started_ms, ended_ms, opening_doc, waiting_room) VALUES (?1,?2,?3,?4,?5,?6,?7)
                         ON CONFLICT(room) DO UPDATE SET title=excluded.title, code=excluded.code, ended_ms=excluded.ended_ms,
                         opening_doc=excluded.opening_doc, waiting_room=excluded.waiting_room")?.execute(
                        params![l.room, l.title, l.code, l.started_ms as i64, l.ended_ms.map(|e| e as i64), l.doc, l.waiting_room],
                    )?;
                    let room: Arc<str> = Arc::from(l.room.as_str());
                    self.lessons.remove(&room);
                    if let Some(id) = self.lesson_id(&tx, &room)?
                        && let Some((seq, state)) = state
                    {
                        self.states.insert(id, (*seq, state.clone()));
                        self.marks_changed.insert(id);
                        touched.push(id);
                        if let Some(doc) = &state.doc {
                            shown(&tx, id, doc, l.started_ms)?;
                        }
                    }
                }
                Msg::Record(room, record) => {
                    let Some(lesson) = self.lesson_id(&tx, room)? else {
                        tracing::warn!(%room, "a record for an unknown lesson was skipped");
                        continue;
                    };
                    self.write_record(&tx, lesson, record, &mut touched, &mut new_conns, &mut closed)?;
                }
            }
        }
        touched.sort_unstable();
        touched.dedup();
        let now = Instant::now();
        let mut written = Vec::new();
        for id in touched {
            let due = self.force_snapshot
                || self.states.get(&id).is_some_and(|(_, s)| s.ended)
                || super::snapshot::due(
                    self.snapshots.get(&id).copied(),
                    self.significant.contains(&id),
                    now,
                );
            if let Some((seq, state)) = self.states.get(&id).filter(|_| due) {
                // The marks go apart, and only when they changed: a page turn does not write the ink.
                super::snapshot::write(&tx, id, *seq, state, self.marks_changed.remove(&id))?;
                written.push(id);
            }
        }
        tx.commit()?;
        for id in written {
            self.significant.remove(&id);
            self.snapshots.insert(id, now);
        }
        self.conns.extend(new_conns);
        for conn in closed {
            self.conns.remove(&conn);
        }
        Ok(())
    }

    fn write_record(
        &mut self,
        tx: &Connection,
        lesson: i64,
        record: &Event,
        touched: &mut Vec<i64>,
        new_conns: &mut Vec<(u64, i64)>,
        closed: &mut Vec<u64>,
    ) -> rusqlite::Result<()> {
        match record {
            // Lessons reach the writer as their own message (`Msg::Lesson`), never as a record; the
            // teacher's presence is not logged (their joins and leaves are).
            Event::Lesson { .. } | Event::Teacher { .. } => {}
            Event::Joined { conn, pid, role, name, device, remote, token_hash, addr, time } => {
                tx.prepare_cached("INSERT INTO participants (lesson, id, role, name, device, remote, token_hash, first_ms)
                     VALUES (?1,?2,?3,?4,?5,?6,?7,?8)
                     ON CONFLICT(lesson, id) DO UPDATE SET name=excluded.name, remote=excluded.remote, token_hash=excluded.token_hash")?.execute(
                    params![lesson, pid, role.as_str(), name, device, *remote, token_hash, *time as i64],
                )?;
                tx.prepare_cached(
                    "INSERT INTO connections (lesson, participant, joined_ms, addr) VALUES (?1,?2,?3,?4)",
                )?
                .execute(params![lesson, pid, *time as i64, addr.map(|a| a.to_string())])?;
                new_conns.push((*conn, tx.last_insert_rowid()));
            }
            Event::Left { conn, time } => {
                let row = self.conns.get(conn).copied().or_else(|| {
                    new_conns.iter().position(|(c, _)| c == conn).map(|i| new_conns.swap_remove(i).1)
                });
                closed.push(*conn);
                if let Some(row) = row {
                    tx.prepare_cached("UPDATE connections SET left_ms = ?1 WHERE id = ?2")?
                        .execute(params![*time as i64, row])?;
                }
            }
            Event::Patch { seq, time, patch, .. } => {
                if patch.is_pointer_only() {
                    let pos = patch.pos.flatten();
                    tx.prepare_cached("INSERT OR REPLACE INTO pointer VALUES (?1,?2,?3,?4,?5)")?.execute(
                        params![
                            lesson,
                            *seq as i64,
                            *time as i64,
                            pos.map(|p| ten_thousandths(p.x)),
                            pos.map(|p| ten_thousandths(p.y))
                        ],
                    )?;
                } else {
                    let json = serde_json::to_string(patch).unwrap_or_default();
                    tx.prepare_cached("INSERT OR REPLACE INTO patches VALUES (?1,?2,?3,?4)")?
                        .execute(params![lesson, *seq as i64, *time as i64, json])?;
                    if let Some(Some(doc)) = &patch.doc {
                        shown(tx, lesson, doc, *time)?;
                    }
                }
                if !patch.is_motion() {
                    self.significant.insert(lesson);
                }
                if patch.marks.is_some() || patch.doc.is_some() {
                    self.marks_changed.insert(lesson);
                }
                let entry = self.states.entry(lesson).or_insert_with(|| (0, LessonState::new(None)));
                entry.1.apply(patch);
                entry.0 = *seq;
                touched.push(lesson);
            }
            Event::Ack { pid, seq, time } => {
                tx.prepare_cached("INSERT OR IGNORE INTO acks VALUES (?1,?2,?3,?4)")?.execute(params![
                    lesson,
                    pid,
                    *seq as i64,
                    *time as i64
                ])?;
            }
            Event::Hand { pid, up, time } => {
                tx.prepare_cached("INSERT INTO hands VALUES (?1,?2,?3,?4)")?.execute(params![
                    lesson,
                    pid,
                    *time as i64,
                    *up
                ])?;
            }
            Event::Revoked { pid } => {
                tx.prepare_cached("UPDATE participants SET revoked = 1 WHERE lesson = ?1 AND id = ?2")?
                    .execute(params![lesson, pid])?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Patch;
    use crate::protocol::Pos;

    fn patch(patch: Patch) -> Msg {
        Msg::Record(Arc::from("room"), Event::Patch { seq: 1, time: 0, patch, done: None })
    }

    #[test]
    fn only_significant_changes_and_lessons_wait_for_an_fsync() {
        let pos = Some(Some(Pos { x: 0.5, y: 0.5 }));
        assert!(!needs_sync(&patch(Patch { pos, ..Patch::default() })));
        assert!(needs_sync(&patch(Patch { page: Some(2), ..Patch::default() })));
        assert!(needs_sync(&patch(Patch { pos, page: Some(2), ..Patch::default() })));
        assert!(!needs_sync(&Msg::Record(
            Arc::from("room"),
            Event::Hand { pid: "p".into(), up: true, time: 0 }
        )));
        assert!(needs_sync(&Msg::Snapshot(vec![1])));
    }
}
