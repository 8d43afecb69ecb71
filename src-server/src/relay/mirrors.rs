//! A relay's rooms (docs/RELAY.md): each is a mirror of a room on a teacher's server, made from Redis
//! when its first student says hello, and fed from the room's `down` stream for as long as it has
//! students. A relay keeps nothing else, so any relay can serve any room and a restart loses nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cloud::connect::Redis;
use tokio::sync::OnceCell;
use tokio_util::task::TaskTracker;

use super::follow::{FeedParts, follow};
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
use crate::protocol::{Hello, RoomInfo, ServerMsg};
use crate::transport::host::{Lifetime, NoRoom, RoomFuture, Rooms};

/// How long a room Redis does not have is taken as not there without asking again.
const UNPUBLISHED_FOR: Duration = Duration::from_secs(1);
/// The most such rooms remembered (past that, all are forgotten: the cache only saves Redis work).
const UNPUBLISHED_MAX: usize = 4096;

/// A room being fetched from Redis, shared by every hello that asks meanwhile.
type Loading = OnceCell<Result<Arc<Room>, NoRoom>>;

/// The rooms a relay serves.
pub struct Mirrors {
    client: Redis,
    rooms: Arc<Registry>,
    loading: Mutex<HashMap<String, Arc<Loading>>>,
    /// The documents' blocks in memory, and each student's open requests (see `docs`).
    pub(super) blocks: super::blocks::Blocks,
    /// Rooms Redis did not have, and when it said so.
    unpublished: Mutex<HashMap<String, tokio::time::Instant>>,
    limits: Limits,
    metrics: Metrics,
    up: Arc<UpSink>,
    /// What each room's feed needs (the same Redis, rooms, writer and shutdown).
    feed: Arc<FeedParts>,
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
        let rooms = Arc::new(Registry::default());
        let feed = Arc::new(FeedParts {
            client: client.clone(),
            metrics: metrics.clone(),
            rooms: rooms.clone(),
            up: up.clone(),
            shutdown: lifetime.shutdown.clone(),
        });
        Mirrors {
            client,
            rooms,
            feed,
            loading: Mutex::default(),
            unpublished: Mutex::default(),
            blocks: super::blocks::Blocks::default(),
            limits,
            metrics,
            up,
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
        if self.known_unpublished(id) {
            return Err(NoRoom::Unavailable); // Redis was asked a moment ago: not again, nor counted
        }
        let cell =
            self.loading.lock().unwrap_or_else(|p| p.into_inner()).entry(id.to_string()).or_default().clone();
        let this = self.clone();
        let room = cell.get_or_init(|| async move { this.load(id).await }).await.clone();
        let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
        if loading.get(id).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            loading.remove(id);
        }
        if room.as_ref().err() == Some(&NoRoom::NotPublished) {
            self.remember_unpublished(id);
        }
        room
    }

    /// Whether Redis said within [`UNPUBLISHED_FOR`] that it does not have room `id`.
    fn known_unpublished(&self, id: &str) -> bool {
        let mut unpublished = self.unpublished.lock().unwrap_or_else(|p| p.into_inner());
        match unpublished.get(id) {
            Some(at) if at.elapsed() < UNPUBLISHED_FOR => true,
            Some(_) => {
                unpublished.remove(id);
                false
            }
            None => false,
        }
    }

    /// The title of room `id`, the teacher's signature of it and the epoch that holds for, for
    /// `GET /v1/info?room=` (what a join page shows before the student joins): from the room served,
    /// else from its join details in Redis.
    pub async fn title(&self, id: &str) -> Result<(RoomInfo, Option<u64>), NoRoom> {
        if let Some(room) = self.rooms.get(id) {
            return Ok(room.titled());
        }
        if self.known_unpublished(id) {
            return Err(NoRoom::Unavailable); // Redis was asked a moment ago: not again, nor counted
        }
        let mut conn = self.client.connect().await.map_err(|_| NoRoom::Unavailable)?;
        let meta: Option<String> = redis::cmd("GET")
            .arg(keys::meta(id))
            .query_async(&mut conn)
            .await
            .map_err(|_| NoRoom::Unavailable)?;
        let Some(meta) = meta else {
            self.remember_unpublished(id);
            return Err(NoRoom::NotPublished);
        };
        match serde_json::from_str::<Meta>(&meta) {
            Ok(meta) if meta.ended => Err(NoRoom::Ended),
            Ok(meta) => {
                let signed = meta.title_signed();
                let info = RoomInfo {
                    id: id.to_string(),
                    title: meta.title,
                    title_sig: signed.as_ref().map(|s| s.sig.clone()),
                };
                Ok((info, signed.map(|s| s.epoch)))
            }
            Err(_) => Err(NoRoom::Unknown),
        }
    }

    fn remember_unpublished(&self, id: &str) {
        let mut unpublished = self.unpublished.lock().unwrap_or_else(|p| p.into_inner());
        if unpublished.len() >= UNPUBLISHED_MAX {
            unpublished.clear();
        }
        unpublished.insert(id.to_string(), tokio::time::Instant::now());
    }

    /// Forgets the rooms remembered as not published once that is old news.
    pub fn prune(&self) {
        self.unpublished
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, at| at.elapsed() < UNPUBLISHED_FOR);
    }

    async fn load(self: &Arc<Self>, id: &str) -> Result<Arc<Room>, NoRoom> {
        let unavailable = |_| NoRoom::Unavailable;
        let mut conn = self.client.connect().await.map_err(unavailable)?;
        // The stream's newest entries, read with the snapshot: the snapshot is at least as new as
        // every entry but the motion since it (the bridge writes an entry and its snapshot in one
        // transaction, and skips the snapshot for up to SNAPSHOT_EVERY motion changes, or until its
        // next beat). Following from the snapshot's own change applies those, each checked. One
        // round trip, and more only when the window does not reach back to the snapshot.
        let (newest, meta, snap, beat): (keys::Entries, Option<String>, Option<String>, Option<String>) =
            redis::pipe()
                .atomic()
                .cmd("XREVRANGE")
                .arg(keys::down(id))
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(keys::SNAPSHOT_WINDOW)
                .get(keys::meta(id))
                .get(keys::snapshot(id))
                .get(keys::beat(id))
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
        // Not in Redis (yet): the teacher's server may be about to publish it, or be reconnecting;
        // the student tries again. A lesson that ended says so.
        let parse = |text: Option<String>| text.ok_or(NoRoom::NotPublished);
        let meta: Meta = serde_json::from_str(&parse(meta)?).map_err(|_| NoRoom::Unknown)?;
        let snap: Snapshot = serde_json::from_str(&parse(snap)?).map_err(|_| NoRoom::Unknown)?;
        let last = start_after(&mut conn, id, newest, snap.seq).await.map_err(unavailable)?;
        if meta.ended {
            return Err(NoRoom::Ended);
        }
        // The relay checks what it passes on, as its students will: a frame someone else wrote into
        // Redis is dropped here rather than poisoning the room for every student.
        let verifier = Verifier::new(&meta.pk, id).ok_or(NoRoom::Unknown)?;
        if !verifier.check(Kind::State, snap.seq, 0, &snap.state, &snap.signed) {
            tracing::warn!(room = %id, "the room's snapshot in redis is not signed by its teacher");
            return Err(NoRoom::Unknown);
        }
        // Only the removals the teacher signed keep anyone out.
        let (revoked, forged): (Vec<_>, Vec<_>) = meta.revoked.iter().partition(|r| r.is_signed(&verifier));
        if !forged.is_empty() {
            tracing::warn!(room = %id, forged = forged.len(), "removals in redis the teacher did not sign are ignored");
        }
        let lesson = LessonRecord {
            room: id.to_string(),
            title: meta.title.clone(),
            code: meta.code.clone(),
            started_ms: crate::now_ms(),
            ended_ms: None,
            doc: None,
            revoked: revoked.into_iter().map(|r| r.pid.clone()).collect(),
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
            title_sig: meta.title_signed().map(|s| s.sig),
        }));
        let (epoch, snap_seq) = (snap.signed.epoch, snap.seq);
        room.mirror_reset(snap.seq, snap.state, snap.signed);
        // The teacher's latest beat, if it is of this epoch and the teacher signed it: the first
        // welcomes carry it (a beat for an older seq still says the snapshot is at least as new).
        if let Some(Ok(ServerMsg::Beat { seq, n, at, teacher, signed })) =
            beat.map(|b| serde_json::from_str::<ServerMsg>(&b))
            && signed.epoch == epoch
            && seq <= snap_seq
            && verifier.check_beat(seq, n, at, teacher, &signed)
        {
            room.mirror_beat(crate::protocol::Beat { seq, n, at, teacher, signed }, false);
        }
        self.rooms.insert(room.clone());
        self.tracker.spawn(follow(self.feed.clone(), room.clone(), last, verifier));
        tracing::info!(room = %id, "serving a room from redis");
        Ok(room)
    }
}

/// Where a relay opening a room follows its stream from: after the newest change (or sync) at or
/// before the snapshot's seq, searched back from `newest` (the stream's newest entries, newest
/// first) a window at a time; from the stream's start when none is found.
async fn start_after(
    conn: &mut crate::cloud::connect::Conn,
    room: &str,
    mut entries: keys::Entries,
    snapshot_seq: u64,
) -> redis::RedisResult<String> {
    #[derive(serde::Deserialize)]
    struct Seq {
        seq: Option<u64>,
    }
    for _ in 0..=keys::STREAM_LEN / keys::SNAPSHOT_WINDOW {
        for (entry, fields) in &entries {
            let change = fields.iter().any(|(k, v)| k == "k" && (v == "patch" || v == "sync"));
            let seq =
                fields.iter().find(|(k, _)| k == "f").and_then(|(_, f)| serde_json::from_str::<Seq>(f).ok());
            if change && seq.and_then(|s| s.seq).is_some_and(|s| s <= snapshot_seq) {
                return Ok(entry.clone());
            }
        }
        let Some((oldest, _)) = entries.last().filter(|_| entries.len() >= keys::SNAPSHOT_WINDOW) else {
            break;
        };
        entries = redis::cmd("XREVRANGE")
            .arg(keys::down(room))
            .arg(format!("({oldest}"))
            .arg("-")
            .arg("COUNT")
            .arg(keys::SNAPSHOT_WINDOW)
            .query_async(conn)
            .await?;
    }
    Ok("0".to_string())
}

/// The room id a hello to a relay names: its resume token's, or its `room`.
fn named_room(hello: &Hello) -> Option<String> {
    let id = match hello.resume.as_deref() {
        Some(token) => crate::engine::token::unchecked_room(token),
        None => hello.room.clone(),
    };
    id.filter(|id| !id.is_empty() && id.len() <= 64)
}

impl Rooms for Arc<Mirrors> {
    fn room_for<'a>(&'a self, hello: &'a Hello) -> RoomFuture<'a> {
        Box::pin(async move {
            let id = named_room(hello).ok_or(NoRoom::Unknown)?;
            self.mirror(&id).await
        })
    }

    fn served(&self, hello: &Hello) -> Option<Arc<Room>> {
        self.rooms.get(&named_room(hello)?)
    }
}
