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

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::schema::{close_dangling, explain, open_for_reading, open_for_writing, prune};
use super::writer::{Msg, Writer, needs_sync};
use crate::engine::report::{Event, LessonRecord, Report, ReportSink};
use crate::error::Result;
use crate::protocol::{LessonState, Patch, Pos};

/// Records queued between the rooms and the writer (the writer moves them to its own queue between
/// transactions). The channel grows as needed and preallocates nothing; past this many the writer is
/// hopelessly behind and records are dropped, loudly.
const CHANNEL: usize = 1_000_000;

/// A lesson that was open when the server stopped, with its last durable state.
#[derive(Debug, Clone)]
pub struct OpenLesson {
    /// Its identity.
    pub lesson: LessonRecord,
    /// The last seq whose patch is in the log.
    pub seq: u64,
    /// The state at `seq`.
    pub state: Option<LessonState>,
}

/// The SQLite store: the session log, and where a restarted server finds its open lesson.
pub struct SqliteStore {
    path: PathBuf,
    /// The writer thread, unparked for records that must commit at once; joined by [`SqliteStore::close`].
    writer: std::thread::Thread,
    join: Mutex<Option<std::thread::JoinHandle<()>>>,
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
        let writer = Writer::new(conn, degraded.clone(), depth.clone());
        let join = std::thread::Builder::new().name("lectern-store".into()).spawn(move || writer.run(rx))?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer: join.thread().clone(),
            join: Mutex::new(Some(join)),
            tx,
            depth,
            degraded,
            log_events,
        })
    }

    #[allow(clippy::result_large_err)] // the message comes back by value, as in `ReportSink::offer`
    fn send(&self, msg: Msg) -> Result<(), Msg> {
        if self.depth.fetch_add(1, Ordering::Relaxed) >= CHANNEL {
            self.depth.fetch_sub(1, Ordering::Relaxed);
            // The writer is stuck with a million records queued: the lesson must not wait, so this
            // record is lost; say so loudly, once.
            self.set_degraded("the session log is too far behind the lesson; records were dropped");
            return Err(msg);
        }
        let urgent = needs_sync(&msg);
        match self.tx.send(msg) {
            Err(e) => {
                self.depth.fetch_sub(1, Ordering::Relaxed);
                self.set_degraded("the session log writer stopped");
                Err(e.0)
            }
            Ok(()) => {
                if urgent {
                    // The writer may be sleeping out a commit window: this one commits now.
                    self.writer.unpark();
                }
                Ok(())
            }
        }
    }

    fn set_degraded(&self, why: &str) {
        let mut d = self.degraded.lock().unwrap_or_else(|p| p.into_inner());
        if d.is_none() {
            tracing::error!(reason = why, "session log degraded");
            *d = Some(why.to_string());
        }
    }

    /// Creates or updates a lesson's record (queued; returns at once).
    pub fn save_lesson(&self, lesson: &LessonRecord, state: Option<(u64, &LessonState)>) {
        let _ = self.send(Msg::Lesson(lesson.clone(), state.map(|(seq, s)| (seq, s.clone()))));
    }

    /// Why the log cannot write now, if it cannot.
    pub fn degraded(&self) -> Option<String> {
        self.degraded.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Writes everything queued, waiting at most `timeout` (blocking); true once it is on disk.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (tx, rx) = channel();
        if self.send(Msg::Flush(tx)).is_err() {
            return false;
        }
        rx.recv_timeout(timeout).unwrap_or(false)
    }

    /// Writes everything queued, stops the writer and joins its thread (blocking; at shutdown). True
    /// when everything reached the disk. Later reports are refused, and their `ok` says not durable.
    pub fn close(&self, timeout: Duration) -> bool {
        let (tx, rx) = channel();
        let written = self.send(Msg::Stop(tx)).is_ok() && rx.recv_timeout(timeout).unwrap_or(false);
        let join = self.join.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(join) = join {
            // The writer returns right after answering the stop; a panic in it was already logged.
            let _ = join.join();
        }
        written
    }
}

impl ReportSink for SqliteStore {
    #[allow(clippy::result_large_err)]
    fn offer(&self, report: Report) -> Result<(), Report> {
        let Report { room, event } = report;
        let msg = match event {
            Event::Lesson { lesson, state } => Msg::Lesson(lesson, state),
            // Said to relays' students; the log has the teacher's joins and leaves already.
            Event::Teacher { .. } => return Ok(()),
            Event::Patch { done: Some(done), .. } if !self.log_events => {
                done.call(true);
                return Ok(());
            }
            _ if !self.log_events => return Ok(()),
            event => Msg::Record(room.clone(), event),
        };
        self.send(msg).map_err(|msg| match msg {
            Msg::Record(room, event) => Report { room, event },
            Msg::Lesson(lesson, state) => Report { room, event: Event::Lesson { lesson, state } },
            _ => Report { room, event: Event::Left { conn: 0, time: 0 } },
        })
    }

    fn confirms(&self) -> bool {
        self.log_events
    }
}

impl SqliteStore {
    /// The lesson that was open when the server last stopped, with its last durable state (blocking;
    /// called at start).
    pub fn open_lesson(&self) -> Result<Option<OpenLesson>> {
        let conn = open_for_reading(&self.path)?;
        let row = conn
            .query_row(
                "SELECT id, room, title, code, started_ms, opening_doc, seq, state, waiting_room,
                 (SELECT marks FROM lesson_marks WHERE lesson = lessons.id) FROM lessons
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
                        r.get::<_, i64>(8)?,
                        r.get::<_, Option<String>>(9)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| explain(&self.path, e))?;
        let Some((id, room, title, code, started, doc, seq, state, waiting_room, marks)) = row else {
            return Ok(None);
        };
        let mut stmt = conn
            .prepare("SELECT id FROM participants WHERE lesson = ?1 AND revoked = 1")
            .map_err(|e| explain(&self.path, e))?;
        let revoked = stmt
            .query_map([id], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| explain(&self.path, e))?;
        let snapshot = super::snapshot::read(state, marks);
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
                waiting_room: waiting_room != 0,
            },
            seq,
            state,
        }))
    }
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
        let pos = x.zip(y).map(|(x, y)| Pos { x: x as f64 / 10_000.0, y: y as f64 / 10_000.0 });
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
