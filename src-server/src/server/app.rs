//! The state every request and connection of a running server shares: the rooms, the lesson being
//! taught, limits, metrics and the shutdown tree. Cheap to clone (one `Arc`).

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use crate::config::{Limits, Timing};
use crate::docs::Library;
use crate::engine::registry::Registry;
use crate::engine::report::{LessonRecord, ReportSink, Reporter};
use crate::engine::room::{Room, RoomParts};
use crate::engine::token::TokenKey;
use crate::metrics::Metrics;
use crate::protocol::{Hello, LessonState};
use crate::store::SqliteStore;
use crate::transport::host::{Host, Lifetime, RoomFuture, Rooms};

/// Shared state of a running server.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// What `AppState` points to. The limits, counters and lifetime its connections share are in its
/// [`Host`]: `app.host.tracker` owns every task, `app.host.shutdown` ends them.
pub struct Shared {
    /// What connections share: limits, timing, metrics, shutdown, and where rooms are found.
    pub host: Arc<Host>,
    local: Arc<LocalRooms>,
    /// Classroom name.
    pub name: String,
    /// Certificate fingerprint.
    pub fingerprint: String,
    /// The teacher's server's signing key (base64url), which travels with the fingerprint.
    pub pk: String,
    /// Where remote students reach the relays, when the lesson is bridged and it is set.
    pub relay_url: Option<String>,
    /// Who may read `/metrics`.
    pub metrics_access: crate::config::MetricsAccess,
    /// The session log.
    pub store: Arc<SqliteStore>,
    /// The session log database, for reports.
    pub db: PathBuf,
    /// The running lesson's (room id, title); the mDNS announcement follows it.
    pub lesson: tokio::sync::watch::Sender<(String, String)>,
    reporter: Reporter,
    teacher_key: String,
    docs: Arc<Library>,
}

/// The rooms of a teacher's server: the lesson being taught, and the rooms its tokens name.
struct LocalRooms {
    rooms: Registry,
    current: RwLock<Arc<Room>>,
    tokens: TokenKey,
}

impl LocalRooms {
    fn current(&self) -> Arc<Room> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Rooms for LocalRooms {
    fn room_for<'a>(&'a self, hello: &'a Hello) -> RoomFuture<'a> {
        // The one its resume token names, else the lesson being taught.
        let room = hello
            .resume
            .as_deref()
            .and_then(|token| self.tokens.verify(token))
            .and_then(|claims| self.rooms.get(&claims.room))
            .unwrap_or_else(|| self.current());
        Box::pin(std::future::ready(Ok(room)))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Everything an [`AppState`] is made from.
pub struct AppParts {
    /// Classroom name.
    pub name: String,
    /// Certificate fingerprint.
    pub fingerprint: String,
    /// The teacher's server's signing key (base64url).
    pub pk: String,
    /// Where remote students reach the relays (`https://…`), when the lesson is bridged.
    pub relay_url: Option<String>,
    /// The teacher key.
    pub teacher_key: String,
    /// The lesson to serve.
    pub lesson: LessonRecord,
    /// Its seq and state when the server last stopped (a continued lesson), or none (a new one).
    pub resume: Option<(u64, LessonState)>,
    /// The documents.
    pub docs: Arc<Library>,
    /// The session log.
    pub store: Arc<SqliteStore>,
    /// Its database file.
    pub db: PathBuf,
    /// Limits.
    pub limits: Limits,
    /// Who may read `/metrics`.
    pub metrics_access: crate::config::MetricsAccess,
    /// Timing.
    pub timing: Timing,
    /// Consumers of the rooms' reports besides the session log (the Redis bridge).
    pub sinks: Vec<Arc<dyn ReportSink>>,
}

impl AppState {
    /// Builds the state, and the room of the lesson, for these parts (no socket yet).
    pub fn new(parts: AppParts) -> AppState {
        let metrics = Metrics::new();
        let mut sinks: Vec<Arc<dyn ReportSink>> = vec![parts.store.clone()];
        sinks.extend(parts.sinks);
        let reporter = Reporter::new(sinks);
        let (seq, state) = parts.resume.unwrap_or_else(|| {
            (0, LessonState::new(parts.lesson.doc.as_deref().and_then(|id| parts.docs.get(id))))
        });
        let room = Arc::new(Room::new(RoomParts {
            lesson: parts.lesson.clone(),
            state,
            seq,
            teacher_key: parts.teacher_key.clone(),
            docs: parts.docs.clone(),
            reporter: reporter.clone(),
            metrics: metrics.clone(),
            limits: parts.limits.clone(),
            heartbeat_ms: parts.timing.heartbeat.as_millis() as u64,
            mirror: false,
            title_sig: None,
        }));
        let rooms = Registry::default();
        rooms.insert(room.clone());
        let local = Arc::new(LocalRooms {
            rooms,
            current: RwLock::new(room),
            tokens: TokenKey::from_teacher_key(&parts.teacher_key),
        });
        let lifetime = Lifetime::default();
        parts.docs.track_on(lifetime.tracker.clone());
        // Documents an older version added are described for relays' students, in the background.
        let (docs, stop) = (parts.docs.clone(), lifetime.shutdown.clone());
        lifetime.tracker.spawn(async move { stop.run_until_cancelled(docs.describe_older()).await });
        let host = Arc::new(Host::new(parts.limits, parts.timing, metrics, local.clone(), lifetime));
        AppState(Arc::new(Shared {
            host,
            local,
            teacher_key: parts.teacher_key,
            docs: parts.docs,
            name: parts.name,
            fingerprint: parts.fingerprint,
            pk: parts.pk,
            metrics_access: parts.metrics_access,
            relay_url: parts.relay_url,
            store: parts.store,
            db: parts.db,
            lesson: tokio::sync::watch::Sender::new((parts.lesson.room, parts.lesson.title)),
            reporter,
        }))
    }

    /// The teacher key (for the ready line a script reads; never logged).
    pub fn teacher_key(&self) -> &str {
        &self.teacher_key
    }

    /// The room of the lesson being taught.
    pub fn room(&self) -> Arc<Room> {
        self.local.current()
    }

    /// The documents this server holds.
    pub fn docs(&self) -> &Arc<Library> {
        &self.docs
    }

    /// Every room this server hosts, by id.
    pub fn rooms(&self) -> &Registry {
        &self.local.rooms
    }

    /// Ends the current lesson (everyone gets `ended` and is closed with 4000) and starts a new one with
    /// a new room, join code and the same document, without a restart.
    pub fn new_lesson(&self, title: Option<String>) -> LessonRecord {
        let mut slot = self.local.current.write().unwrap_or_else(|p| p.into_inner());
        let old = slot.clone();
        old.end_now();
        self.local.rooms.remove(&old.info().id);
        let (_, state) = old.state();
        let lesson = LessonRecord {
            room: crate::engine::lesson::room_id(),
            title: title.filter(|t| !t.trim().is_empty()).unwrap_or_else(|| old.info().title.clone()),
            code: crate::engine::lesson::join_code(),
            started_ms: crate::now_ms(),
            ended_ms: None,
            doc: state.doc.as_ref().map(|d| d.id.clone()),
            revoked: Vec::new(),
            waiting_room: false,
        };
        let room = Arc::new(Room::new(RoomParts {
            lesson: lesson.clone(),
            state: LessonState::new(state.doc.clone()),
            seq: 0,
            teacher_key: self.teacher_key.clone(),
            docs: self.docs.clone(),
            reporter: self.reporter.clone(),
            metrics: self.host.metrics.clone(),
            limits: self.host.limits.clone(),
            heartbeat_ms: self.host.timing.heartbeat.as_millis() as u64,
            mirror: false,
            title_sig: None,
        }));
        self.local.rooms.insert(room.clone());
        *slot = room;
        self.lesson.send_replace((lesson.room.clone(), lesson.title.clone()));
        tracing::info!(room = %lesson.room, "new lesson");
        lesson
    }
}
