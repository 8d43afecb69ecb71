//! A relay's rooms (docs/RELAY.md): each is a mirror of a room on a teacher's server, made from Redis
//! when its first student says hello, and fed from the room's `down` stream for as long as it has
//! students. A relay keeps nothing else, so any relay can serve any room and a restart loses nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cloud::connect::{Conn, Redis};
use redis::streams::StreamReadReply;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::upsink::UpSink;
use crate::cloud::keys::{self, Meta, Snapshot};
use crate::config::Limits;
use crate::engine::lesson::LessonRecord;
use crate::engine::registry::Registry;
use crate::engine::report::Reporter;
use crate::engine::room::{Room, RoomParts};
use crate::metrics::Metrics;
use crate::protocol::sign::Verifier;
use crate::protocol::signed::Kind;
use crate::protocol::{Hello, ServerMsg, close};
use crate::transport::host::{Lifetime, NoRoom, RoomFuture, Rooms};

/// How long a blocking read of a room's stream waits before it is made again.
const BLOCK: Duration = Duration::from_secs(5);
/// How soon a lost Redis is tried again.
const RETRY: Duration = Duration::from_millis(250);
/// How long a mirror with no students is kept before the relay lets it go.
const IDLE: Duration = Duration::from_secs(60);

/// A room being fetched from Redis, shared by every hello that asks meanwhile.
type Loading = OnceCell<Result<Arc<Room>, NoRoom>>;

/// The rooms a relay serves.
pub struct Mirrors {
    client: Redis,
    rooms: Registry,
    loading: Mutex<HashMap<String, Arc<Loading>>>,
    limits: Limits,
    metrics: Metrics,
    up: Arc<UpSink>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Mirrors {
    /// Rooms from this Redis, reporting what their students do to `up`.
    pub fn new(
        client: Redis,
        limits: Limits,
        metrics: Metrics,
        up: Arc<UpSink>,
        lifetime: Lifetime,
    ) -> Mirrors {
        Mirrors {
            client,
            rooms: Registry::default(),
            loading: Mutex::default(),
            limits,
            metrics,
            up,
            shutdown: lifetime.shutdown,
            tracker: lifetime.tracker,
        }
    }

    /// The Redis the rooms come from.
    pub fn redis(&self) -> &Redis {
        &self.client
    }

    /// Every room served now.
    pub fn rooms(&self) -> &Registry {
        &self.rooms
    }

    /// The mirror of room `id`: the one served, or a new one from Redis (shared by every hello that
    /// asks meanwhile).
    async fn mirror(self: &Arc<Self>, id: &str) -> Result<Arc<Room>, NoRoom> {
        if let Some(room) = self.rooms.get(id) {
            return Ok(room);
        }
        let cell =
            self.loading.lock().unwrap_or_else(|p| p.into_inner()).entry(id.to_string()).or_default().clone();
        let this = self.clone();
        let room = cell.get_or_init(|| async move { this.load(id).await }).await.clone();
        let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
        if loading.get(id).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            loading.remove(id);
        }
        room
    }

    async fn load(self: &Arc<Self>, id: &str) -> Result<Arc<Room>, NoRoom> {
        let unavailable = |_| NoRoom::Unavailable;
        let mut conn = self.client.connect().await.map_err(unavailable)?;
        // Where the stream stands before the snapshot is read: the snapshot is at least as new as
        // every entry up to here (the bridge writes an entry and its snapshot in one transaction).
        let last = keys::last_id(&mut conn, &keys::down(id)).await.map_err(unavailable)?;
        let (meta, snap): (Option<String>, Option<String>) = redis::pipe()
            .get(keys::meta(id))
            .get(keys::snapshot(id))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        // Not in Redis (yet): the teacher's server may be about to publish it, or be reconnecting;
        // the student tries again. A lesson that ended says so.
        let parse = |text: Option<String>| text.ok_or(NoRoom::Unavailable);
        let meta: Meta = serde_json::from_str(&parse(meta)?).map_err(|_| NoRoom::Unknown)?;
        let snap: Snapshot = serde_json::from_str(&parse(snap)?).map_err(|_| NoRoom::Unknown)?;
        if meta.ended {
            return Err(NoRoom::Ended);
        }
        let lesson = LessonRecord {
            room: id.to_string(),
            title: meta.title.clone(),
            code: meta.code.clone(),
            started_ms: crate::now_ms(),
            ended_ms: None,
            doc: None,
            revoked: meta.revoked.clone(),
            waiting_room: meta.waiting_room,
        };
        let room = Arc::new(Room::new(RoomParts {
            lesson,
            state: snap.state.clone(),
            seq: snap.seq,
            teacher_key: meta.secret.clone(),
            docs: Arc::new(crate::engine::lesson::NoDocuments),
            reporter: Reporter::new(vec![self.up.clone()]),
            metrics: self.metrics.clone(),
            limits: {
                // The teacher's server says how large the class may be.
                let mut limits = self.limits.clone();
                if meta.max_participants > 0 {
                    limits.max_participants = meta.max_participants;
                }
                limits
            },
            heartbeat_ms: meta.heartbeat_ms,
            mirror: true,
        }));
        // The relay checks what it passes on, as its students will: a frame someone else wrote into
        // Redis is dropped here rather than poisoning the room for every student.
        let verifier = Verifier::new(&meta.pk, id).ok_or(NoRoom::Unknown)?;
        if !verifier.check(Kind::State, snap.seq, 0, &snap.state, &snap.signed) {
            tracing::warn!(room = %id, "the room's snapshot in redis is not signed by its teacher");
            return Err(NoRoom::Unknown);
        }
        room.mirror_reset(snap.seq, snap.state, snap.signed);
        self.rooms.insert(room.clone());
        self.tracker.spawn(follow(self.clone(), room.clone(), last, verifier));
        tracing::info!(room = %id, "serving a room from redis");
        Ok(room)
    }

    /// Lets a room go: its students are closed with 4503 (they reconnect, perhaps elsewhere). Only
    /// this room: a newer copy of the same id stays.
    fn drop_room(&self, room: &Arc<Room>, reason: &str) {
        room.close_all(close::RESTARTING, reason);
        if self.rooms.get(&room.info().id).is_some_and(|r| Arc::ptr_eq(&r, room)) {
            self.rooms.remove(&room.info().id);
        }
    }
}

impl Rooms for Arc<Mirrors> {
    fn room_for<'a>(&'a self, hello: &'a Hello) -> RoomFuture<'a> {
        Box::pin(async move {
            let id = match hello.resume.as_deref() {
                Some(token) => crate::engine::token::unchecked_room(token),
                None => hello.room.clone(),
            };
            let id = id.filter(|id| !id.is_empty() && id.len() <= 64).ok_or(NoRoom::Unknown)?;
            self.mirror(&id).await
        })
    }
}

/// Feeds a mirror from its room's stream until it has had no students for a while; then lets it go.
/// While Redis is away, its students are told the teacher is away and stay connected; once Redis is
/// back, the bridge's fresh snapshot brings them up to date.
async fn follow(mirrors: Arc<Mirrors>, room: Arc<Room>, mut last: String, verifier: Verifier) {
    let id = room.info().id.clone();
    let key = keys::down(&id);
    let mut idle_since = None;
    let mut conn = None;
    let mut lost = false;
    loop {
        let (teachers, students) = room.online();
        if teachers + students > 0 {
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
            if !lost {
                lost = true;
                tracing::warn!(room = %id, "lost redis; the room's students wait for it");
                room.mirror_send(ServerMsg::Teacher { online: false }.encode().into());
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
            room.mirror_send(ServerMsg::Teacher { online: true }.encode().into());
        }
        for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
            last = entry.id.clone();
            match (entry.get::<String>("k").as_deref(), entry.get::<String>("pid")) {
                (Some("kick"), Some(pid)) => {
                    room.mirror_kick(&pid);
                    continue;
                }
                (Some("refuse"), Some(pid)) => {
                    room.mirror_refuse(&pid);
                    continue;
                }
                (Some("details"), _) => {
                    reread_details(c, &room).await;
                    continue;
                }
                _ => {}
            }
            let Some(frame) = entry.get::<String>("f") else { continue };
            if !apply(&mirrors, &room, &verifier, &frame).await {
                conn = None;
                break;
            }
        }
    }
}

/// Reads the room's join details again (a new code, the waiting room turned on or off); kept as
/// they were when Redis does not answer or holds something unreadable.
async fn reread_details(conn: &mut Conn, room: &Room) {
    let meta: redis::RedisResult<Option<String>> =
        redis::cmd("GET").arg(keys::meta(&room.info().id)).query_async(conn).await;
    if let Some(meta) = meta.ok().flatten().and_then(|m| serde_json::from_str::<Meta>(&m).ok()) {
        room.mirror_details(&meta.code, meta.waiting_room);
    }
}

/// Applies one frame of the room's stream, if the teacher signed it; false when the mirror cannot
/// continue.
async fn apply(mirrors: &Mirrors, room: &Room, verifier: &Verifier, frame: &str) -> bool {
    match serde_json::from_str::<ServerMsg>(frame) {
        Ok(ServerMsg::Patch { seq, time, patch, signed: Some(signed) }) => {
            let (have, mut after) = room.state();
            if seq <= have {
                return true;
            }
            after.apply(&patch);
            if seq == have + 1 && !verifier.check(Kind::State, seq, 0, &after, &signed) {
                tracing::warn!(room = %room.info().id, seq, "dropped a change its teacher did not sign");
                return reload(mirrors, room, verifier).await;
            }
            if room.mirror_patch(seq, time, patch, signed).is_err() {
                // Entries went missing (the stream was trimmed, or a new epoch began): the snapshot.
                return reload(mirrors, room, verifier).await;
            }
        }
        Ok(ServerMsg::Sync { seq, state, signed: Some(signed) })
            if verifier.check(Kind::State, seq, 0, &state, &signed) =>
        {
            // A new epoch: the teacher's server may have lost who is here (Redis went away); say it.
            let here = room.mirror_reset(seq, state, signed).unwrap_or_default();
            if !here.is_empty() {
                mirrors.up.announce(&room.info().id);
            }
        }
        // A beat is passed on only if it is the teacher's, for the state here, and re-encoded: a
        // frame someone else wrote into Redis never reaches the students.
        Ok(ServerMsg::Beat { seq, n, signed }) => {
            let (have, state) = room.state();
            if seq == have && verifier.check(Kind::Beat, seq, n, &state, &signed) {
                room.mirror_send(ServerMsg::Beat { seq, n, signed }.encode().into());
            }
        }
        _ => {} // not for students: the relay passes on only what the teacher's server signed
    }
    true
}

async fn reload(mirrors: &Mirrors, room: &Room, verifier: &Verifier) -> bool {
    let Ok(mut conn) = mirrors.client.connect().await else { return false };
    let snap: Option<String> =
        redis::cmd("GET").arg(keys::snapshot(&room.info().id)).query_async(&mut conn).await.ok().flatten();
    let Some(snap) = snap.and_then(|s| serde_json::from_str::<Snapshot>(&s).ok()) else { return false };
    if !verifier.check(Kind::State, snap.seq, 0, &snap.state, &snap.signed) {
        return false;
    }
    room.mirror_reset(snap.seq, snap.state, snap.signed);
    true
}
