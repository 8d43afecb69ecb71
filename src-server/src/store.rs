//! The persistence seam: what the room tells the store, and what a restarted server reads back.
//!
//! The room never waits on the store (DESIGN.md principle 3): `record` and `save_lesson` must return at
//! once, queueing the work for a writer of their own. [`FileStore`] keeps the lesson's identity (room,
//! code, title, revoked participants) in `lesson.json` so a restart continues the same lesson; the session
//! log (patches, joins, acks, hands) is recorded by the SQLite store, which plugs in behind the same trait.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::protocol::Role;
use crate::state::Patch;

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
    #[serde(default)]
    pub ended_ms: Option<u64>,
    /// The document the lesson opened on.
    #[serde(default)]
    pub doc: Option<String>,
    /// Participants kicked by the teacher: their tokens are refused and their devices may not rejoin.
    #[serde(default)]
    pub revoked: Vec<String>,
}

/// One event of the session log.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A connection joined.
    Joined {
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
        /// Peer address.
        addr: Option<std::net::IpAddr>,
        /// Unix ms.
        time: u64,
    },
    /// A connection left.
    Left {
        /// Participant id.
        pid: String,
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
    },
    /// A student's ack.
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
}

/// Where lessons are kept. Implementations must not block in `record` or `save_lesson`.
pub trait Store: Send + Sync + 'static {
    /// The lesson that was open when the server last stopped (blocking; called at start).
    fn load_lesson(&self) -> Result<Option<LessonRecord>>;
    /// Keeps the lesson's identity (queued; returns at once).
    fn save_lesson(&self, lesson: &LessonRecord);
    /// Logs an event (queued; returns at once; dropped with a warning if the queue is full).
    fn record(&self, record: Record);
}

/// Keeps the lesson identity in `lesson.json`, written by a thread of its own.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    tx: SyncSender<LessonRecord>,
}

impl FileStore {
    /// A store in this data directory.
    pub fn open(dir: &Path) -> Result<FileStore> {
        let path = dir.join("lesson.json");
        let (tx, rx) = sync_channel::<LessonRecord>(64);
        let file = path.clone();
        std::thread::Builder::new().name("lectern-lesson-file".into()).spawn(move || {
            let mut failing = false;
            while let Ok(mut lesson) = rx.recv() {
                // Only the newest state matters: skip to the last queued one.
                while let Ok(newer) = rx.try_recv() {
                    lesson = newer;
                }
                let result = serde_json::to_vec_pretty(&lesson)
                    .map_err(std::io::Error::other)
                    .and_then(|json| crate::setup::write_private(&file, &json).map_err(std::io::Error::other));
                match result {
                    Err(e) if !failing => {
                        tracing::error!(path = %file.display(), error = %e, "cannot save the lesson; it continues in memory");
                        failing = true;
                    }
                    Ok(()) if failing => {
                        tracing::info!(path = %file.display(), "lesson file writable again");
                        failing = false;
                    }
                    _ => {}
                }
            }
        })?;
        Ok(FileStore { path, tx })
    }
}

impl Store for FileStore {
    fn load_lesson(&self) -> Result<Option<LessonRecord>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| Error::File {
                path: self.path.clone(),
                message: format!("unreadable lesson file ({e}); move it aside to start a new lesson"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::File { path: self.path.clone(), message: e.to_string() }),
        }
    }

    fn save_lesson(&self, lesson: &LessonRecord) {
        match self.tx.try_send(lesson.clone()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => tracing::warn!("lesson file writer is behind; a save was skipped"),
            Err(TrySendError::Disconnected(_)) => tracing::error!("lesson file writer stopped"),
        }
    }

    fn record(&self, _record: Record) {}
}

/// Keeps nothing: for tests and embedders that want no files.
#[derive(Debug, Default)]
pub struct MemoryStore;

impl Store for MemoryStore {
    fn load_lesson(&self) -> Result<Option<LessonRecord>> {
        Ok(None)
    }
    fn save_lesson(&self, _lesson: &LessonRecord) {}
    fn record(&self, _record: Record) {}
}
