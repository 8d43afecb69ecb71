//! A lesson room: the state and its seq, the participants, and the fan-out.
//!
//! One std mutex guards the room; every operation is short and never awaits. A patch is validated,
//! stamped with the next seq, encoded once, and its bytes pushed into every connection's [`Outbox`] while
//! the lock is held, so every connection sees patches in seq order and a joiner's welcome snapshot is
//! exactly followed by the first patch it does not contain. Slow consumers cost the room nothing: a
//! push never waits (conflation is the outbox's job). What happens is reported through a [`Reporter`],
//! which never waits either: the session log and, later, the Redis bridge consume the reports.

mod admission;
mod change;
mod ending;
pub mod guard;
pub mod join;
pub mod knock;
pub mod mirror;
mod partial;
mod participant;
mod refused;
pub mod remote;
mod roster;
pub(crate) mod second;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use self::participant::Participant;
use crate::config::Limits;
use crate::engine::lesson::Documents;
use crate::engine::outbox::{Item, Outbox};
use crate::engine::report::{Event, LessonRecord, Reporter};
use crate::engine::token::{TokenKey, constant_time_eq};
use crate::metrics::Metrics;
use crate::now_ms;
use crate::protocol::{LessonState, Role, RoomInfo, ServerMsg, close};

#[derive(Debug)]
struct Member {
    conn: u64,
    role: Role,
    outbox: Arc<Outbox>,
    /// The address it connected from, as limits count it (an IPv6 /64 is one).
    addr: Option<std::net::IpAddr>,
    /// A second path's (PROTOCOL-ADDITIONS N): the student it carries changes for. It holds no seat.
    second_of: Option<String>,
}

impl Inner {
    /// Whether a token was issued before its participant id was given afresh to another holder (a
    /// reused twin): it then proves nothing, in a resume, a second path or a bearer.
    fn outdated(&self, claims: &crate::engine::token::Claims) -> bool {
        self.reissued.get(&claims.pid).is_some_and(|at| claims.issued < *at)
    }
}

impl Member {
    /// Whether this connection holds a student's seat (a second path does not).
    fn seated_student(&self) -> bool {
        self.role == Role::Student && self.second_of.is_none()
    }
}

#[derive(Debug)]
struct Inner {
    state: LessonState,
    seq: u64,
    lesson: LessonRecord,
    revoked: HashSet<String>,
    participants: HashMap<String, Participant>,
    members: Vec<Member>,
    roster_dirty: Vec<String>,
    sync_cache: Option<Bytes>,
    /// Which pages' marks changed at which seq, for partial syncs.
    marks_at: partial::MarksAt,
    teachers_online: usize,
    /// Seqs of significant changes (not pointer moves), for deciding which acks to log.
    significant: Vec<u64>,
    /// Students waiting to be let in, in knock order.
    knocks: Vec<knock::Knock>,
    /// The last knock id given.
    next_knock: u64,
    /// A mirror's (a relay's room): the teacher's server's signature of `state` at `seq`.
    signed: Option<crate::protocol::Signed>,
    /// A mirror's: the teacher's latest signed beat of this epoch, which its welcome carries.
    beat: Option<crate::protocol::Beat>,
    /// A mirror's: the teacher's signature of the title (kind 5), for the epoch of `signed`.
    title_sig: Option<String>,
    /// The documents shown before the current one, the latest last (at most [`RECENT_DOCS`]).
    recent_docs: Vec<String>,
    /// The budget of wrong join codes (`guard`).
    guard: guard::Guard,
    /// Remote students' open connections: by participant id, how many on each relay (by relay id).
    remote_conns: HashMap<String, HashMap<String, u32>>,
    /// Students the teacher removed, for flagging newcomers that look like them.
    lookalikes: admission::Lookalikes,
    /// Participant ids given afresh to another holder, and when: older tokens for them are refused.
    reissued: HashMap<String, u64>,
    /// A relay's copy: second paths opened this minute by students online on another relay.
    second_opens_elsewhere: HashMap<String, (u64, u32)>,
}

/// How many documents shown before the current one a student may still fetch.
pub(super) const RECENT_DOCS: usize = 3;

/// A lesson room.
pub struct Room {
    inner: Mutex<Inner>,
    /// The room id, shared by every report.
    id: Arc<str>,
    info: RoomInfo,
    teacher_key: String,
    tokens: TokenKey,
    docs: Arc<dyn Documents>,
    reporter: Reporter,
    metrics: Metrics,
    limits: Limits,
    heartbeat_ms: u64,
    next_conn: AtomicU64,
    /// A relay's copy of a room on a teacher's server: no teacher joins it, and its changes come
    /// signed from Redis (see `mirror`).
    mirror: bool,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room").field("id", &self.info.id).finish_non_exhaustive()
    }
}

/// Everything a room is made of.
pub struct RoomParts {
    /// The lesson's identity.
    pub lesson: LessonRecord,
    /// The state to start from.
    pub state: LessonState,
    /// The seq of that state.
    pub seq: u64,
    /// The teacher key.
    pub teacher_key: String,
    /// The documents.
    pub docs: Arc<dyn Documents>,
    /// Where reports go.
    pub reporter: Reporter,
    /// Where counts go.
    pub metrics: Metrics,
    /// Limits.
    pub limits: Limits,
    /// Heartbeat told to clients.
    pub heartbeat_ms: u64,
    /// Whether this is a relay's copy of a room on a teacher's server (see `mirror`).
    pub mirror: bool,
    /// A relay's copy: the teacher's signature of the title, passed on in welcomes.
    pub title_sig: Option<String>,
}

fn encode(msg: &ServerMsg) -> Bytes {
    Bytes::from(msg.encode())
}

impl Room {
    /// A room for this lesson.
    pub fn new(parts: RoomParts) -> Room {
        let RoomParts {
            lesson,
            state,
            seq,
            teacher_key,
            docs,
            reporter,
            metrics,
            limits,
            heartbeat_ms,
            mirror,
            title_sig,
        } = parts;
        let tokens = TokenKey::from_teacher_key(&teacher_key);
        let id: Arc<str> = Arc::from(lesson.room.as_str());
        reporter.emit(&id, Event::Lesson { lesson: lesson.clone(), state: Some((seq, state.clone())) });
        Room {
            id,
            info: RoomInfo { id: lesson.room.clone(), title: lesson.title.clone(), title_sig: None },
            teacher_key,
            tokens,
            docs,
            reporter,
            metrics,
            limits,
            heartbeat_ms,
            // A relay's copy numbers its connections from a random point, so that a refusal the
            // teacher's server signed for one connection never matches a later copy's (section E).
            next_conn: AtomicU64::new(if mirror { rand::random_range(1..1u64 << 52) } else { 1 }),
            mirror,
            inner: Mutex::new(Inner {
                guard: guard::Guard::new(lesson.code.len()),
                state,
                seq,
                revoked: lesson.revoked.iter().cloned().collect(),
                lesson,
                participants: HashMap::new(),
                members: Vec::new(),
                roster_dirty: Vec::new(),
                sync_cache: None,
                marks_at: partial::MarksAt::from(seq),
                significant: Vec::new(),
                knocks: Vec::new(),
                next_knock: 0,
                signed: None,
                beat: None,
                title_sig,
                remote_conns: HashMap::new(),
                lookalikes: admission::Lookalikes::default(),
                reissued: HashMap::new(),
                second_opens_elsewhere: HashMap::new(),
                recent_docs: Vec::new(),
                // A relay's students hear of the teacher through the teacher's server's changes.
                teachers_online: usize::from(mirror),
            }),
        }
    }

    fn report(&self, event: Event) {
        self.reporter.emit(&self.id, event);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section leaves the room consistent between statements that can panic only on
        // allocation failure, so a poisoned lock is recovered rather than taking the lesson down.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Room id and the title the lesson started with (a relay's copy may have been renamed since:
    /// see [`Room::titled`]).
    pub fn info(&self) -> &RoomInfo {
        &self.info
    }

    /// The participant id of a student device's own seat in this room (a twin's differs).
    pub fn student_id(&self, device: &str) -> String {
        self.tokens.participant_id(&self.info.id, Role::Student, device)
    }

    /// The join code (the teacher may change it: `new_code`).
    pub fn code(&self) -> String {
        self.lock().lesson.code.clone()
    }

    /// Whether a student may fetch document `id`: the one shown now, or one of the few shown just
    /// before it (so a download under way when the teacher turns to another is not cut off).
    pub fn student_may_fetch(&self, id: &str) -> bool {
        let inner = self.lock();
        inner.state.doc.as_ref().is_some_and(|d| d.id == id) || inner.recent_docs.iter().any(|d| d == id)
    }

    /// The current seq and state.
    pub fn state(&self) -> (u64, LessonState) {
        let inner = self.lock();
        (inner.seq, inner.state.clone())
    }

    /// Whether a bearer secret is the teacher key or a live participant's token (for `/v1/docs/{id}`).
    pub fn authorize_bearer(&self, secret: &str) -> Option<Role> {
        if constant_time_eq(secret, &self.teacher_key) {
            return Some(Role::Teacher);
        }
        let claims = self.tokens.verify(secret)?;
        let inner = self.lock();
        // A token issued before its participant id was given afresh (a reused twin) proves nothing,
        // here as in a resume.
        let reissued = inner.outdated(&claims);
        (claims.room == self.info.id
            && !inner.revoked.contains(&claims.pid)
            && !inner.state.ended
            && !reissued)
            .then_some(claims.role)
    }

    /// Removes a closed connection. A connection already replaced by a newer one changes nothing else.
    pub fn leave(&self, pid: &str, conn: u64) {
        let mut inner = self.lock();
        inner.members.retain(|m| m.conn != conn);
        self.report(Event::Left { conn, time: now_ms() });
        let Some(p) = inner.participants.get_mut(pid) else { return };
        if p.conn != Some(conn) {
            return;
        }
        p.conn = None;
        p.left_ms = now_ms();
        let role = p.role;
        match role {
            Role::Teacher => {
                inner.teachers_online = inner.teachers_online.saturating_sub(1);
                if inner.teachers_online == 0 && !inner.state.ended {
                    self.broadcast_students(&inner, &ServerMsg::Teacher { online: false });
                    self.report(Event::Teacher { online: false });
                }
            }
            Role::Student => {
                // Its second path, if it has one, goes with it: the student opens it again.
                Self::close_second(&mut inner, pid, close::REPLACED, "the first path closed");
                self.mark(&mut inner, pid);
                self.flush_roster_locked(&mut inner);
            }
        }
    }

    fn broadcast_students(&self, inner: &Inner, msg: &ServerMsg) {
        let bytes = encode(msg);
        for m in inner.members.iter().filter(|m| m.role == Role::Student) {
            m.outbox.push_or_close(Item::Msg(bytes.clone()));
        }
    }

    /// The `sync` frame for the current state (cached until the next patch).
    pub fn sync_frame(&self) -> (u64, Bytes) {
        let mut inner = self.lock();
        let seq = inner.seq;
        if let Some(bytes) = &inner.sync_cache {
            return (seq, bytes.clone());
        }
        let bytes = encode(&ServerMsg::Sync {
            seq,
            state: inner.state.clone(),
            signed: inner.signed.clone(),
            partial: None,
        });
        inner.sync_cache = Some(bytes.clone());
        (seq, bytes)
    }

    /// Closes every connection with this code (server shutdown).
    pub fn close_all(&self, code: u16, reason: &str) {
        let inner = self.lock();
        for m in &inner.members {
            m.outbox.close(code, reason);
        }
    }

    /// Online connections by role: (teachers, students).
    pub fn online(&self) -> (usize, usize) {
        let inner = self.lock();
        let teachers = inner.members.iter().filter(|m| m.role == Role::Teacher).count();
        (teachers, inner.members.iter().filter(|m| m.seated_student()).count())
    }
}
