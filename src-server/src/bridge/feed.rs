//! What the bridge keeps: how it was made, and each room as it published it.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::upstream::FindRoom;
use crate::cloud::connect::Redis;
use crate::docs::Library;
use crate::engine::lesson::LessonRecord;
use crate::protocol::LessonState;
use crate::protocol::sign::Signer;

/// What a bridge is made of.
pub struct BridgeParts {
    /// `redis://…` or `rediss://…`.
    pub client: Redis,
    /// The teacher's server's signing key.
    pub signer: Signer,
    /// The teacher key (relay token secrets are derived from it).
    pub teacher_key: String,
    /// Heartbeat: how often beats are published.
    pub heartbeat: Duration,
    /// The most students online in a room, which relays keep too.
    pub max_participants: usize,
    /// Finds a room, to read its state when continuity is lost and to apply remote students.
    pub find: FindRoom,
    /// The documents, put into Redis when a room shows one.
    pub docs: Arc<Library>,
    /// Ends the bridge.
    pub shutdown: CancellationToken,
    /// Owns the bridge's tasks (a room's reader, a document being put), so a stopping server waits
    /// for them.
    pub tracker: TaskTracker,
}

/// One room as published.
pub(super) struct Feed {
    pub(super) lesson: LessonRecord,
    pub(super) seq: u64,
    pub(super) state: LessonState,
    pub(super) epoch: u64,
    pub(super) beat: u64,
    /// Remote students removed (their relay ids).
    pub(super) revoked: Vec<String>,
    /// The sha256 of the document last put into Redis for this room.
    pub(super) doc_published: Option<String>,
    /// Changes published since the snapshot was last written (see [`keys::SNAPSHOT_EVERY`]).
    pub(super) unsnapped: u64,
    pub(super) reader: Option<tokio::task::JoinHandle<()>>,
}
