//! The SQLite store: numbered migrations applied at open, WAL, one writer thread with group commit.
//!
//! The room queues records on a bounded channel and never waits. The writer drains everything queued
//! into one transaction, commits, then tells the teacher its patches are durable (`ok`). When a commit
//! fails (disk full, read-only, locked), the lesson goes on from memory: the writer keeps the records,
//! answers pending `ok`s at once marked not durable, reports "degraded" with the reason (logged once,
//! not per patch), and retries every second until the disk is back, then writes everything it kept.
//!
//! Durability: a transaction that holds a significant change (page, document, highlight, mode, notice,
//! end) or a lesson commits with `synchronous=FULL`, so its `ok` promises the change survives power
//! loss; group commit keeps that to one fsync per batch, off the fan-out path. A batch of pointer moves,
//! acks, hands and joins alone commits with `synchronous=NORMAL`: in WAL mode that survives a crash of
//! Lectern at once, and the next FULL commit (at most [`SYNC_EVERY`] later, forced by a timer if nothing
//! else comes) makes it survive power loss too. Such records also wait up to [`COMMIT_WINDOW`] to share
//! a transaction. A 60 Hz pointer then costs 20 commits and one fsync a second, not 60 of each.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::{LessonRecord, OpenLesson, Record, Store};
use crate::error::{Error, Result};
use crate::state::{LessonState, Patch};

/// Migrations, in order; `PRAGMA user_version` is the number applied.
const MIGRATIONS: &[&str] = &[include_str!("../../migrations/0001_init.sql")];

/// Records kept in memory while the disk cannot be written, before pointer moves are dropped.
const MAX_PENDING: usize = 1_000_000;
/// Records queued between the room and the writer (the writer moves them to its own queue between
/// transactions). The channel grows as needed and preallocates nothing; past this many the writer is
/// hopelessly behind and records are dropped, loudly.
const CHANNEL: usize = 1_000_000;
/// How often the lesson's state snapshot is rewritten; a restart replays the patches logged after it.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);
/// The longest pointer moves, acks, hands and joins wait to share a transaction (their `ok`, for a
/// pointer move, comes after it; nothing waits on it). Significant changes commit at once.
pub const COMMIT_WINDOW: Duration = Duration::from_millis(50);
/// The longest a commit that was not synced (pointer moves, acks) waits for an fsync.
pub const SYNC_EVERY: Duration = Duration::from_secs(1);

/// The schema version this build writes.
pub fn schema_version() -> u32 {
    MIGRATIONS.len() as u32
}

/// Hex SHA-256 of a token, as stored.
pub fn token_hash(token: &str) -> String {
    crate::docs::hex(&Sha256::digest(token.as_bytes()))
}

fn pragmas(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(2))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

fn explain(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::File {
        path: path.to_path_buf(),
        message: format!(
            "the session database cannot be used ({e}). If it is damaged, move it aside (for example \
             `mv {p} {p}.broken`) and start again: a new, empty log is created and the lessons in the old \
             file stay readable with sqlite3.",
            p = path.display()
        ),
    }
}

/// Opens (creating if needed) and migrates the database for writing; refuses a newer schema.
pub fn open_for_writing(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(|e| explain(path, e))?;
    pragmas(&conn).map_err(|e| explain(path, e))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(|e| explain(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(%mode, "WAL is not available for the session database");
    }
    conn.pragma_update(None, "synchronous", "FULL").map_err(|e| explain(path, e))?;
    let check: String =
        conn.query_row("PRAGMA quick_check", [], |r| r.get(0)).map_err(|e| explain(path, e))?;
    if check != "ok" {
        return Err(explain(path, format!("integrity check: {check}")));
    }
    migrate(&conn, path)?;
    Ok(conn)
}

/// Opens the database read-only (reports; works while a server writes).
pub fn open_for_reading(path: &Path) -> Result<Connection> {
    if !path.exists() {
        return Err(Error::File {
            path: path.into(),
            message: "no session database here yet; run `lectern serve` first".into(),
        });
    }
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(|e| explain(path, e))?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(|e| explain(path, e))?;
    let version: u32 =
        conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| explain(path, e))?;
    if version > schema_version() {
        return Err(newer(path, version));
    }
    Ok(conn)
}

fn newer(path: &Path, version: u32) -> Error {
    Error::File {
        path: path.into(),
        message: format!(
            "this session database has schema {version}, written by a newer Lectern; this one knows schema {}. \
             Upgrade Lectern, or use another --data-dir.",
            schema_version()
        ),
    }
}

/// Applies the migrations this database lacks, each in its own transaction; refuses a newer schema.
fn migrate(conn: &Connection, path: &Path) -> Result<()> {
    let sql = |e| explain(path, e);
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(sql)?;
    if version > schema_version() {
        return Err(newer(path, version));
    }
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.unchecked_transaction().map_err(sql)?;
        tx.execute_batch(migration).map_err(sql)?;
        tx.pragma_update(None, "user_version", i + 1).map_err(sql)?;
        tx.commit().map_err(sql)?;
    }
    Ok(())
}

fn sql(e: rusqlite::Error) -> Error {
    Error::Config(e.to_string())
}

/// Deletes lessons that ended more than `days` ago (and everything they logged). Returns how many.
pub fn prune(conn: &Connection, days: u32) -> Result<usize> {
    let cutoff = crate::protocol::now_ms().saturating_sub(u64::from(days) * 86_400_000);
    conn.execute("DELETE FROM lessons WHERE ended_ms IS NOT NULL AND ended_ms < ?1", [cutoff as i64])
        .map_err(sql)
}

enum Msg {
    Lesson(LessonRecord, Option<(u64, LessonState)>),
    /// Rewrite these lessons' snapshots.
    Snapshot(Vec<i64>),
    Record(Arc<str>, Record),
    Flush(std::sync::mpsc::Sender<bool>),
}

/// The SQLite store.
pub struct SqliteStore {
    path: PathBuf,
    /// The writer thread, unparked for records that must commit at once.
    writer: std::thread::Thread,
    tx: Sender<Msg>,
    /// Messages sent and not yet taken by the writer.
    depth: Arc<AtomicUsize>,
    degraded: Arc<Mutex<Option<String>>>,
    log_events: bool,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the database at `path` and starts its writer. With `log_events` off, lessons and their state
    /// are kept but joins, patches, acks and hands are not logged (and `ok` is not delayed).
    pub fn open(path: &Path, log_events: bool, keep_days: Option<u32>) -> Result<SqliteStore> {
        let conn = open_for_writing(path)?;
        if let Some(days) = keep_days {
            let pruned = prune(&conn, days)?;
            if pruned > 0 {
                tracing::info!(pruned, days, "removed lessons older than the retention period");
            }
        }
        close_dangling(&conn).map_err(|e| explain(path, e))?;
        let (tx, rx) = channel();
        let depth = Arc::new(AtomicUsize::new(0));
        let degraded = Arc::new(Mutex::new(None));
        let writer = Writer {
            conn,
            pending: VecDeque::new(),
            cache: Cache::default(),
            degraded: degraded.clone(),
            dropped: 0,
            depth: depth.clone(),
            full: true,
            unsynced_since: None,
            pending_since: None,
            urgent: false,
        };
        let writer = std::thread::Builder::new()
            .name("lectern-store".into())
            .spawn(move || writer.run(rx))?
            .thread()
            .clone();
        Ok(SqliteStore { path: path.to_path_buf(), tx, depth, degraded, log_events, writer })
    }

    fn send(&self, msg: Msg) {
        if self.depth.fetch_add(1, Ordering::Relaxed) >= CHANNEL {
            self.depth.fetch_sub(1, Ordering::Relaxed);
            // The writer is stuck with a million records queued: the lesson must not wait, so this
            // record is lost; say so loudly, once.
            if let Msg::Record(_, Record::Patch { done: Some(done), .. }) = msg {
                done.call(false);
            }
            self.set_degraded("the session log is too far behind the lesson; records were dropped");
            return;
        }
        let urgent = needs_sync(&msg);
        if self.tx.send(msg).is_err() {
            self.set_degraded("the session log writer stopped");
        } else if urgent {
            // The writer may be sleeping out a commit window: this one commits now.
            self.writer.unpark();
        }
    }

    fn set_degraded(&self, why: &str) {
        let mut d = self.degraded.lock().unwrap_or_else(|p| p.into_inner());
        if d.is_none() {
            tracing::error!(reason = why, "session log degraded");
            *d = Some(why.to_string());
        }
    }
}

impl Store for SqliteStore {
    fn open_lesson(&self) -> Result<Option<OpenLesson>> {
        let conn = open_for_reading(&self.path)?;
        let row = conn
            .query_row(
                "SELECT id, room, title, code, started_ms, opening_doc, seq, state FROM lessons
                 WHERE ended_ms IS NULL ORDER BY id DESC LIMIT 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, i64>(6)?,
                        r.get::<_, Option<String>>(7)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| explain(&self.path, e))?;
        let Some((id, room, title, code, started, doc, seq, state)) = row else { return Ok(None) };
        let mut stmt = conn
            .prepare("SELECT id FROM participants WHERE lesson = ?1 AND revoked = 1")
            .map_err(|e| explain(&self.path, e))?;
        let revoked = stmt
            .query_map([id], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| explain(&self.path, e))?;
        let snapshot = state.and_then(|s| serde_json::from_str::<LessonState>(&s).ok());
        let (seq, state) = replay(&conn, id, seq as u64, snapshot).map_err(|e| explain(&self.path, e))?;
        Ok(Some(OpenLesson {
            lesson: LessonRecord {
                room,
                title,
                code,
                started_ms: started as u64,
                ended_ms: None,
                doc,
                revoked,
            },
            seq,
            state,
        }))
    }

    fn save_lesson(&self, lesson: &LessonRecord, state: Option<(u64, &LessonState)>) {
        self.send(Msg::Lesson(lesson.clone(), state.map(|(seq, s)| (seq, s.clone()))));
    }

    fn record(&self, room: &str, record: Record) {
        if !self.log_events {
            if let Record::Patch { done: Some(done), .. } = record {
                done.call(true);
            }
            return;
        }
        self.send(Msg::Record(Arc::from(room), record));
    }

    fn confirms(&self) -> bool {
        self.log_events
    }

    fn degraded(&self) -> Option<String> {
        self.degraded.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn flush(&self, timeout: Duration) -> bool {
        let (tx, rx) = channel();
        self.depth.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(Msg::Flush(tx)).is_err() {
            return false;
        }
        self.writer.unpark();
        rx.recv_timeout(timeout).unwrap_or(false)
    }
}

struct Writer {
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
    /// Write every snapshot in the next transaction (flush, shutdown).
    force_snapshot: bool,
}

fn ten_thousandths(v: f64) -> i64 {
    (v * 10_000.0).round() as i64
}

impl Writer {
    fn run(mut self, rx: Receiver<Msg>) {
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
            .retain(|m| !matches!(m, Msg::Record(_, Record::Patch { patch, .. }) if patch.is_pointer_only()));
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
                    if let Msg::Record(_, Record::Patch { done: Some(done), .. }) = msg {
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
                    if let Msg::Record(_, Record::Patch { done, .. }) = msg
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

/// A transaction whose BEGIN and COMMIT are cached statements, so a commit parses no SQL (rusqlite's
/// own transaction prepares both every time). Rolls back when dropped uncommitted.
struct Tx<'c> {
    conn: &'c Connection,
    done: bool,
}

impl<'c> Tx<'c> {
    fn begin(conn: &'c Connection) -> rusqlite::Result<Tx<'c>> {
        conn.prepare_cached("BEGIN")?.execute([])?;
        Ok(Tx { conn, done: false })
    }

    fn commit(mut self) -> rusqlite::Result<()> {
        self.done = true;
        let result = self.conn.prepare_cached("COMMIT").and_then(|mut s| s.execute([]));
        if result.is_err() {
            // A failed COMMIT can leave the transaction open (SQLITE_BUSY): do not leave it so.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        result.map(|_| ())
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.conn.prepare_cached("ROLLBACK").and_then(|mut s| s.execute([]));
        }
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

/// Whether a queued message must reach the disk before its commit returns: significant changes (their
/// `ok` promises survival of power loss), lessons, and the snapshots of a flush or a forced sync.
fn needs_sync(msg: &Msg) -> bool {
    match msg {
        Msg::Record(_, Record::Patch { patch, .. }) => !patch.is_pointer_only(),
        Msg::Record(..) => false,
        Msg::Lesson(..) | Msg::Snapshot(_) | Msg::Flush(_) => true,
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
            if let std::collections::hash_map::Entry::Vacant(slot) = self.states.entry(id) {
                let row: (i64, Option<String>) =
                    tx.query_row("SELECT seq, state FROM lessons WHERE id = ?1", [id], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?;
                if let Some(state) = row.1.and_then(|s| serde_json::from_str::<LessonState>(&s).ok()) {
                    slot.insert((row.0 as u64, state));
                }
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
                Msg::Flush(_) => {}
                Msg::Snapshot(ids) => touched.extend(ids),
                Msg::Lesson(l, state) => {
                    tx.prepare_cached("INSERT INTO lessons (room, title, code, started_ms, ended_ms, opening_doc) VALUES (?1,?2,?3,?4,?5,?6)
                         ON CONFLICT(room) DO UPDATE SET title=excluded.title, code=excluded.code, ended_ms=excluded.ended_ms,
                         opening_doc=excluded.opening_doc")?.execute(
                        params![l.room, l.title, l.code, l.started_ms as i64, l.ended_ms.map(|e| e as i64), l.doc],
                    )?;
                    let room: Arc<str> = Arc::from(l.room.as_str());
                    self.lessons.remove(&room);
                    if let Some(id) = self.lesson_id(&tx, &room)?
                        && let Some((seq, state)) = state
                    {
                        self.states.insert(id, (*seq, state.clone()));
                        touched.push(id);
                        if let Some(doc) = &state.doc {
                            tx.prepare_cached(
                                "INSERT OR IGNORE INTO lesson_docs VALUES (?1,?2,?3,?4,?5,?6)",
                            )?
                            .execute(params![
                                id,
                                doc.id,
                                doc.title,
                                doc.pages,
                                doc.sha256,
                                l.started_ms as i64
                            ])?;
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
                || self.snapshots.get(&id).is_none_or(|at| now.duration_since(*at) >= SNAPSHOT_EVERY);
            if let Some((seq, state)) = self.states.get(&id).filter(|_| due) {
                let json = serde_json::to_string(state).unwrap_or_default();
                tx.prepare_cached("UPDATE lessons SET seq = ?1, state = ?2 WHERE id = ?3")?
                    .execute(params![*seq as i64, json, id])?;
                written.push(id);
            }
        }
        tx.commit()?;
        for id in written {
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
        record: &Record,
        touched: &mut Vec<i64>,
        new_conns: &mut Vec<(u64, i64)>,
        closed: &mut Vec<u64>,
    ) -> rusqlite::Result<()> {
        match record {
            Record::Joined { conn, pid, role, name, device, remote, token_hash, addr, time } => {
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
            Record::Left { conn, time } => {
                let row = self.conns.get(conn).copied().or_else(|| {
                    new_conns.iter().position(|(c, _)| c == conn).map(|i| new_conns.swap_remove(i).1)
                });
                closed.push(*conn);
                if let Some(row) = row {
                    tx.prepare_cached("UPDATE connections SET left_ms = ?1 WHERE id = ?2")?
                        .execute(params![*time as i64, row])?;
                }
            }
            Record::Patch { seq, time, patch, .. } => {
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
                        tx.prepare_cached("INSERT OR IGNORE INTO lesson_docs VALUES (?1,?2,?3,?4,?5,?6)")?
                            .execute(params![
                                lesson,
                                doc.id,
                                doc.title,
                                doc.pages,
                                doc.sha256,
                                *time as i64
                            ])?;
                    }
                }
                let entry = self.states.entry(lesson).or_insert_with(|| (0, LessonState::new(None)));
                entry.1.apply(patch);
                entry.0 = *seq;
                touched.push(lesson);
            }
            Record::Ack { pid, seq, time } => {
                tx.prepare_cached("INSERT OR IGNORE INTO acks VALUES (?1,?2,?3,?4)")?.execute(params![
                    lesson,
                    pid,
                    *seq as i64,
                    *time as i64
                ])?;
            }
            Record::Hand { pid, up, time } => {
                tx.prepare_cached("INSERT INTO hands VALUES (?1,?2,?3,?4)")?.execute(params![
                    lesson,
                    pid,
                    *time as i64,
                    *up
                ])?;
            }
            Record::Revoked { pid } => {
                tx.prepare_cached("UPDATE participants SET revoked = 1 WHERE lesson = ?1 AND id = ?2")?
                    .execute(params![lesson, pid])?;
            }
        }
        Ok(())
    }
}

/// Closes connections left open by a server that stopped without saying so (a crash), at the time of the
/// lesson's last logged event, so attendance does not count the time the server was down.
fn close_dangling(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE connections SET left_ms = max(joined_ms, coalesce(
            (SELECT max(time_ms) FROM patches p WHERE p.lesson = connections.lesson),
            (SELECT max(time_ms) FROM pointer q WHERE q.lesson = connections.lesson), joined_ms))
         WHERE left_ms IS NULL",
        [],
    )
}

/// The lesson's state: its snapshot plus every patch logged after it, in seq order.
fn replay(
    conn: &Connection,
    lesson: i64,
    snapshot_seq: u64,
    snapshot: Option<LessonState>,
) -> rusqlite::Result<(u64, Option<LessonState>)> {
    let mut newer: Vec<(u64, Patch)> = Vec::new();
    let mut stmt = conn.prepare("SELECT seq, patch FROM patches WHERE lesson = ?1 AND seq > ?2")?;
    for row in stmt.query_map(params![lesson, snapshot_seq as i64], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })? {
        let (seq, json) = row?;
        if let Ok(patch) = serde_json::from_str::<Patch>(&json) {
            newer.push((seq as u64, patch));
        }
    }
    let mut stmt = conn.prepare("SELECT seq, x, y FROM pointer WHERE lesson = ?1 AND seq > ?2")?;
    for row in stmt.query_map(params![lesson, snapshot_seq as i64], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?, r.get::<_, Option<i64>>(2)?))
    })? {
        let (seq, x, y) = row?;
        let pos = x.zip(y).map(|(x, y)| crate::state::Pos { x: x as f64 / 10_000.0, y: y as f64 / 10_000.0 });
        newer.push((seq as u64, Patch { pos: Some(pos), ..Patch::default() }));
    }
    newer.sort_by_key(|(seq, _)| *seq);
    let Some(mut state) = snapshot else { return Ok((snapshot_seq, None)) };
    let mut seq = snapshot_seq;
    for (s, patch) in newer {
        state.apply(&patch);
        seq = s;
    }
    Ok((seq, Some(state)))
}

/// What a failed write means, in words a teacher or a school's IT person can act on.
fn reason(e: &rusqlite::Error) -> String {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::DiskFull) => "the disk is full".into(),
        // SQLite reports some out-of-space writes (of the WAL, say) as plain I/O errors.
        Some(C::SystemIoFailure) => format!("disk I/O error; is the disk full or removed? ({e})"),
        Some(C::ReadOnly) => "the disk or file is read-only".into(),
        Some(C::DatabaseBusy | C::DatabaseLocked) => "the database is locked by another program".into(),
        Some(C::CannotOpen) => format!("the database file cannot be opened ({e})"),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Pos;

    fn patch(patch: Patch) -> Msg {
        Msg::Record(Arc::from("room"), Record::Patch { seq: 1, time: 0, patch, done: None })
    }

    #[test]
    fn only_significant_changes_and_lessons_wait_for_an_fsync() {
        let pos = Some(Some(Pos { x: 0.5, y: 0.5 }));
        assert!(!needs_sync(&patch(Patch { pos, ..Patch::default() })));
        assert!(needs_sync(&patch(Patch { page: Some(2), ..Patch::default() })));
        assert!(needs_sync(&patch(Patch { pos, page: Some(2), ..Patch::default() })));
        assert!(!needs_sync(&Msg::Record(
            Arc::from("room"),
            Record::Hand { pid: "p".into(), up: true, time: 0 }
        )));
        assert!(needs_sync(&Msg::Snapshot(vec![1])));
    }
}
