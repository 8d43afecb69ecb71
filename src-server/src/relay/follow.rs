//! How a relay's mirror follows its room (docs/RELAY.md): a blocking read of the room's `down`
//! stream, each frame checked against the teacher's key before it is applied and passed on, and the
//! teacher's server's removals and refusals carried out.

use std::sync::Arc;
use std::time::Duration;

use redis::streams::StreamReadReply;

use tokio_util::sync::CancellationToken;

use super::upsink::UpSink;
use crate::cloud::connect::{Conn, Redis};
use crate::cloud::keys::{self, Meta, Snapshot};
use crate::engine::registry::Registry;
use crate::engine::room::Room;
use crate::protocol::sign::Verifier;
use crate::protocol::signed::Kind;
use crate::protocol::{Beat, ServerMsg, close};

/// How long a blocking read of a room's stream waits before it is made again.
const BLOCK: Duration = Duration::from_secs(5);
/// How soon a lost Redis is tried again.
const RETRY: Duration = Duration::from_millis(250);
/// How long a mirror with no students is kept before the relay lets it go.
const IDLE: Duration = Duration::from_secs(60);

/// What a mirror's feed needs from its relay.
pub(super) struct FeedParts {
    /// The Redis the rooms come from.
    pub(super) client: Redis,
    /// The relay's metrics (forged entries are counted).
    pub(super) metrics: crate::metrics::Metrics,
    /// The rooms served, which a feed takes its room out of when it lets it go.
    pub(super) rooms: Arc<Registry>,
    /// Where the room's students are announced again after a new epoch.
    pub(super) up: Arc<UpSink>,
    /// Ends every feed.
    pub(super) shutdown: CancellationToken,
}

impl FeedParts {
    /// Lets a room go: its students are closed with 4503 (they reconnect, perhaps elsewhere). Only
    /// this room: a newer copy of the same id stays.
    fn drop_room(&self, room: &Arc<Room>, reason: &str) {
        room.close_all(close::RESTARTING, reason);
        if self.rooms.get(&room.info().id).is_some_and(|r| Arc::ptr_eq(&r, room)) {
            self.rooms.remove(&room.info().id);
        }
    }
}

/// Feeds a mirror from its room's stream until it has had no students for a while; then lets it go.
/// While Redis is away, its students are told the teacher is away and stay connected; once Redis is
/// back, the bridge's fresh snapshot brings them up to date.
pub(super) async fn follow(mirrors: Arc<FeedParts>, room: Arc<Room>, mut last: String, verifier: Verifier) {
    let id = room.info().id.clone();
    let key = keys::down(&id);
    let mut idle_since = None;
    let mut conn = None;
    let mut lost = false;
    let mut forged = Forged::default();
    // A `details` entry was read and the details not yet read again (kept across a Redis failure).
    let mut details = false;
    loop {
        // Any connection keeps the copy, a second path for a student on another relay included.
        if room.has_members() {
            idle_since = None;
        } else if idle_since.get_or_insert_with(tokio::time::Instant::now).elapsed() > IDLE {
            mirrors.drop_room(&room, "no students");
            return;
        }
        if room.state().1.ended {
            mirrors.drop_room(&room, "the lesson has ended");
            return;
        }
        if conn.is_none() {
            conn = mirrors.client.connect_blocking().await.ok();
        }
        let Some(c) = conn.as_mut() else {
            // The students are not told here that the teacher is away: only the teacher's signed
            // beats say so. They notice the beats stop, and try another relay.
            if !lost {
                lost = true;
                tracing::warn!(room = %id, "lost redis; the room's students wait for it");
            }
            tokio::select! {
                _ = mirrors.shutdown.cancelled() => return,
                _ = tokio::time::sleep(RETRY) => continue,
            }
        };
        let cmd = keys::read_after(&key, &last, 512, BLOCK);
        let reply = tokio::select! {
            _ = mirrors.shutdown.cancelled() => return,
            r = cmd.query_async::<Option<StreamReadReply>>(c) => r,
        };
        let Ok(reply) = reply else {
            // Back off first: an error that comes back at once must not spin the relay.
            conn = None;
            tokio::time::sleep(RETRY).await;
            continue;
        };
        if std::mem::take(&mut lost) {
            tracing::info!(room = %id, "redis is back");
        }
        for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
            last = entry.id.clone();
            let text = |field: &str| entry.get::<String>(field).unwrap_or_default();
            match (text("k").as_str(), text("pid")) {
                ("kick", pid) => {
                    let removal = keys::Removal { pid, sig: text("s") };
                    if removal.is_signed(&verifier) {
                        room.mirror_kick(&removal.pid);
                    } else {
                        forged.note(&mirrors, &id, "a removal");
                    }
                    continue;
                }
                ("refuse", pid) => {
                    // For this relay only, for the one connection the teacher's server refused, in
                    // answer to an entry this relay wrote itself.
                    let conn = text("conn").parse::<u64>().ok();
                    let relay = mirrors.up.relay();
                    // (Another relay's refusals are not this one's to check.)
                    if let Some(c) = conn.filter(|_| text("relay") == relay) {
                        let entry = text("entry");
                        if keys::is_refusal(&verifier, relay, &pid, c, &entry, &text("s"))
                            && mirrors.up.is_own_entry(&id, c, &entry).await
                        {
                            room.mirror_refuse(&pid, c);
                        } else {
                            forged.note(&mirrors, &id, "a refusal");
                        }
                    }
                    continue;
                }
                ("details", _) => {
                    // Read once, after the batch: a burst of entries costs one read.
                    details = true;
                    continue;
                }
                _ => {}
            }
            let Some(frame) = entry.get::<String>("f") else { continue };
            match apply(&mirrors, c, &room, &verifier, &frame, &mut forged).await {
                Applied::Yes => {}
                Applied::Forged => forged.note(&mirrors, &id, "a frame"),
                Applied::RedisFailed => {
                    conn = None;
                    break;
                }
            }
        }
        if let Some(c) = conn.as_mut().filter(|_| details) {
            match reread_details(c, &room).await {
                Ok(()) => details = false,
                Err(_) => conn = None,
            }
        }
    }
}

/// Reads the room's join details again (a new code, the waiting room turned on or off, the title
/// signed for a new epoch); kept as they were when Redis does not answer or holds something
/// unreadable.
/// An error only when Redis failed.
async fn reread_details(conn: &mut Conn, room: &Room) -> redis::RedisResult<()> {
    let meta: Option<String> = redis::cmd("GET").arg(keys::meta(&room.info().id)).query_async(conn).await?;
    if let Some(meta) = meta.and_then(|m| serde_json::from_str::<Meta>(&m).ok()) {
        room.mirror_details(&meta.code, meta.waiting_room);
        room.mirror_title(&meta.title, meta.title_signed().map(|s| s.sig));
    }
    Ok(())
}

/// What became of a frame of the room's stream.
enum Applied {
    /// Applied and passed on, or not needed (a change already had, an older snapshot).
    Yes,
    /// Not signed by the teacher: dropped.
    Forged,
    /// Redis failed while the snapshot was read again: the feed reconnects.
    RedisFailed,
}

/// Frames someone other than the teacher's server wrote into the room's stream: counted, and said
/// in the log at most every few seconds. A forgery costs a log line, never a sync to every student.
#[derive(Default)]
struct Forged {
    since_said: u64,
    said: Option<tokio::time::Instant>,
    /// When the snapshot was last read again for a gap (at most once a second).
    reloaded: Option<tokio::time::Instant>,
}

impl Forged {
    fn note(&mut self, mirrors: &FeedParts, room: &str, what: &str) {
        mirrors.metrics.relay_forged.increment(1);
        self.since_said += 1;
        if self.said.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
            tracing::warn!(
                room,
                what,
                count = self.since_said,
                "dropped entries in redis its teacher did not sign"
            );
            self.said = Some(tokio::time::Instant::now());
            self.since_said = 0;
        }
    }
}

/// Applies one frame of the room's stream, if the teacher signed it.
async fn apply(
    mirrors: &FeedParts,
    conn: &mut Conn,
    room: &Room,
    verifier: &Verifier,
    frame: &str,
    forged: &mut Forged,
) -> Applied {
    match serde_json::from_str::<ServerMsg>(frame) {
        Ok(ServerMsg::Patch { seq, time, patch, signed: Some(signed) }) => {
            let (have, mut after) = room.state();
            if seq <= have {
                return Applied::Yes;
            }
            // More changes than a teacher's server sends at once, or a stroke longer than it keeps:
            // refused before any is applied (the copy of the state shares its pages: cheap).
            let long = |n: usize| n > crate::protocol::ink::MAX_STROKE_POINTS;
            if !after.marks.within_caps(patch.marks.as_deref())
                || patch.live.as_ref().is_some_and(|l| l.as_ref().is_some_and(|l| long(l.points.len())))
            {
                return Applied::Forged;
            }
            after.apply(&patch);
            if after.live.as_ref().is_some_and(|l| long(l.points.len())) || !after.marks.within_caps(None) {
                return Applied::Forged;
            }
            if seq == have + 1 && !verifier.check(Kind::State, seq, 0, &after, &signed) {
                return Applied::Forged;
            }
            if room.mirror_patch(seq, time, patch, signed).is_err() {
                // Entries went missing (the stream was trimmed, or a new epoch began): the snapshot,
                // if it is newer than what the room has. A forged gap finds it is not, and gaps
                // read it at most once a second.
                if forged.reloaded.is_some_and(|at| at.elapsed() < Duration::from_secs(1)) {
                    return Applied::Forged;
                }
                forged.reloaded = Some(tokio::time::Instant::now());
                return reload(conn, room, verifier).await;
            }
            Applied::Yes
        }
        // Only a whole state: the teacher's server never writes a partial one (PROTOCOL-ADDITIONS O).
        Ok(ServerMsg::Sync { seq, state, signed: Some(signed), partial: None }) => {
            if !verifier.check(Kind::State, seq, 0, &state, &signed) {
                return Applied::Forged;
            }
            if new_epoch_details(conn, room, &signed).await.is_err() {
                // Taken later, from the snapshot, when the next change finds the gap.
                return Applied::RedisFailed;
            }
            // A new epoch: the teacher's server may have lost who is here (Redis went away); say it.
            let here = room.mirror_reset(seq, state, signed).unwrap_or_default();
            if !here.is_empty() {
                mirrors.up.announce(&room.info().id);
            }
            Applied::Yes
        }
        // A beat is passed on only if it is the teacher's, for the state here, and re-encoded: a
        // frame someone else wrote into Redis never reaches the students. The latest is kept for
        // the welcomes made here.
        Ok(ServerMsg::Beat { seq, n, at, teacher, signed }) => {
            let have = room.state().0;
            if seq > have {
                return Applied::Yes; // for a state not here yet: proves nothing
            }
            if !verifier.check_beat(seq, n, at, teacher, &signed) {
                return Applied::Forged;
            }
            // Kept for welcomes either way (a later state is newer than it); passed on only for the
            // state the students have.
            room.mirror_beat(Beat { seq, n, at, teacher, signed }, seq == have);
            Applied::Yes
        }
        _ => Applied::Forged, // not for students: the relay passes on only what the teacher signed
    }
}

/// Before a signed state of a new epoch is taken: the join details again, since the title's
/// signature holds for one epoch (section E) and the teacher's server may have restarted with
/// another title. Read first, so that no student is sent the new epoch's state with the last one's
/// title.
async fn new_epoch_details(
    conn: &mut Conn,
    room: &Room,
    signed: &crate::protocol::Signed,
) -> redis::RedisResult<()> {
    if room.mirror_position().1.is_some_and(|epoch| signed.epoch > epoch) {
        reread_details(conn, room).await?;
    }
    Ok(())
}

/// Takes the room's snapshot from Redis when it is newer than what the room has.
async fn reload(conn: &mut Conn, room: &Room, verifier: &Verifier) -> Applied {
    let snap: redis::RedisResult<Option<String>> =
        redis::cmd("GET").arg(keys::snapshot(&room.info().id)).query_async(conn).await;
    let Ok(snap) = snap else { return Applied::RedisFailed };
    let Some(snap) = snap.and_then(|s| serde_json::from_str::<Snapshot>(&s).ok()) else {
        return Applied::Forged;
    };
    if !verifier.check(Kind::State, snap.seq, 0, &snap.state, &snap.signed) {
        return Applied::Forged;
    }
    if new_epoch_details(conn, room, &snap.signed).await.is_err() {
        return Applied::RedisFailed;
    }
    match room.mirror_reset(snap.seq, snap.state, snap.signed) {
        Some(_) => Applied::Yes,
        None => Applied::Forged, // nothing newer: the gap was not the teacher's
    }
}
