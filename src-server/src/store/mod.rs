//! The persistence seam: what the room tells the store, and what a restarted server reads back.
//!
//! The room never waits on the store (DESIGN.md principle 3): `record` and `save_lesson` return at once,
//! queueing the work for the store's own writer. A store that `confirms` calls a patch's [`Done`] after
//! the patch is durable, which is when the teacher gets its `ok`; the students' fan-out has already
//! happened by then. [`sqlite::SqliteStore`] is the real store; [`MemoryStore`] keeps nothing.

pub mod report;
pub mod sqlite;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::protocol::Role;
use crate::state::{LessonState, Patch};

/// What identifies a lesson across restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LessonRecord {
    /// Room id.
    pub room: String,
    /// Lesson title.
    pub title: String,
    /// Join code.
    pub code: String,
    /// Start, Unix ms.
    pub started_ms: u64,
    /// End, Unix ms, once ended.
    pub ended_ms: Option<u64>,
    /// The document the lesson opened on.
    pub doc: Option<String>,
    /// Participants kicked by the teacher: their tokens are refused and their devices may not rejoin.
    pub revoked: Vec<String>,
}

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

/// Called once a patch is durable (`true`), or at once with `false` when the store cannot write now.
pub struct Done(Box<dyn FnOnce(bool) + Send>);

impl Done {
    /// Wraps a callback.
    pub fn new(f: impl FnOnce(bool) + Send + 'static) -> Done {
        Done(Box::new(f))
    }
    /// Calls it.
    pub fn call(self, durable: bool) {
        (self.0)(durable)
    }
}

impl std::fmt::Debug for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Done")
    }
}

/// One event of the session log.
#[derive(Debug)]
pub enum Record {
    /// A connection joined.
    Joined {
        /// Server-local connection id.
        conn: u64,
        /// Participant id.
        pid: String,
        /// Role.
        role: Role,
        /// Name.
        name: String,
        /// Device id.
        device: String,
        /// Through a relay.
        remote: bool,
        /// SHA-256 (hex) of the participant's resume token: the token itself is never stored.
        token_hash: String,
        /// Peer address.
        addr: Option<std::net::IpAddr>,
        /// Unix ms.
        time: u64,
    },
    /// A connection left.
    Left {
        /// Server-local connection id.
        conn: u64,
        /// Unix ms.
        time: u64,
    },
    /// An accepted patch.
    Patch {
        /// Seq.
        seq: u64,
        /// Unix ms.
        time: u64,
        /// The change.
        patch: Patch,
        /// Tell the teacher once durable.
        done: Option<Done>,
    },
    /// A student's ack that crossed a significant change.
    Ack {
        /// Participant id.
        pid: String,
        /// Seq on screen.
        seq: u64,
        /// Unix ms.
        time: u64,
    },
    /// A hand raised or lowered.
    Hand {
        /// Participant id.
        pid: String,
        /// Raised?
        up: bool,
        /// Unix ms.
        time: u64,
    },
    /// A participant was kicked.
    Revoked {
        /// Participant id.
        pid: String,
    },
}

/// Where lessons are kept. Implementations must not block in `record` or `save_lesson`.
pub trait Store: Send + Sync + 'static {
    /// The lesson that was open when the server last stopped (blocking; called at start).
    fn open_lesson(&self) -> Result<Option<OpenLesson>>;
    /// Creates or updates a lesson; `state` is its state at `seq` when it starts (queued; returns at once).
    fn save_lesson(&self, lesson: &LessonRecord, state: Option<(u64, &LessonState)>);
    /// Logs an event of a room's lesson (queued; returns at once).
    fn record(&self, room: &str, record: Record);
    /// Whether `Done` callbacks wait for durability (else the room answers `ok` at once).
    fn confirms(&self) -> bool;
    /// Why the store cannot write now, if it cannot.
    fn degraded(&self) -> Option<String>;
    /// Writes everything queued, waiting at most `timeout` (blocking; called at shutdown).
    fn flush(&self, timeout: std::time::Duration) -> bool;
}

/// Keeps nothing: for embedders and tests that want no files.
#[derive(Debug, Default)]
pub struct MemoryStore;

impl Store for MemoryStore {
    fn open_lesson(&self) -> Result<Option<OpenLesson>> {
        Ok(None)
    }
    fn save_lesson(&self, _lesson: &LessonRecord, _state: Option<(u64, &LessonState)>) {}
    fn record(&self, _room: &str, record: Record) {
        if let Record::Patch { done: Some(done), .. } = record {
            done.call(false);
        }
    }
    fn confirms(&self) -> bool {
        false
    }
    fn degraded(&self) -> Option<String> {
        None
    }
    fn flush(&self, _timeout: std::time::Duration) -> bool {
        true
    }
}
