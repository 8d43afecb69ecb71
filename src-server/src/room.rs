//! A lesson room: the state and its seq, the participants, and the fan-out.
//!
//! One std mutex guards the room; every operation is short and never awaits. A patch is validated,
//! stamped with the next seq, encoded once, and its bytes pushed into every connection's [`Outbox`] while
//! the lock is held, so every connection sees patches in seq order and a joiner's welcome snapshot is
//! exactly followed by the first patch it does not contain. Slow consumers cost the room nothing: a
//! push never waits (conflation is the outbox's job). The store is told about events through a
//! non-blocking call.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::extract::ws::Utf8Bytes;

use crate::config::Limits;
use crate::docs::Library;
use crate::metrics::Metrics;
use crate::outbox::{Item, Outbox, Pushed};
use crate::protocol::{
    ErrorCode, Hello, Role, RoomInfo, RosterEntry, ServerMsg, SetPatch, VERSION, You, close, now_ms,
};
use crate::state::{LessonState, Patch};
use crate::store::{Done, LessonRecord, Record, Store};
use crate::token::{Claims, TokenKey, constant_time_eq};

/// Why a `hello` was refused; each maps to the close code of §3/§10.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinError {
    /// A field is missing or malformed: `error` `bad_request`, then close 4400.
    BadRequest(String),
    /// Unsupported protocol version: close 4426.
    Version(String),
    /// Wrong code, key or token: close 4001.
    Credentials,
    /// The device was kicked from this lesson: close 4003.
    Kicked,
    /// The room is full: close 4029.
    Full,
    /// The lesson has ended: close 4000.
    Ended,
}

impl JoinError {
    /// The close code and reason for this refusal.
    pub fn close(&self) -> (u16, String) {
        match self {
            JoinError::BadRequest(m) => (close::PROTOCOL, m.clone()),
            JoinError::Version(m) => (close::VERSION, m.clone()),
            JoinError::Credentials => {
                (close::BAD_CREDENTIALS, "wrong join code, teacher key or token".into())
            }
            JoinError::Kicked => (close::KICKED, "removed from this lesson by the teacher".into()),
            JoinError::Full => (close::RATE_LIMITED, "the room is full".into()),
            JoinError::Ended => (close::ENDED, "the lesson has ended".into()),
        }
    }
}

/// A connection admitted to the room.
#[derive(Debug, Clone)]
pub struct Joined {
    /// Connection id, unique within the server's life.
    pub conn: u64,
    /// Participant id.
    pub pid: String,
    /// Role.
    pub role: Role,
    /// The connection's send queue; the welcome is already in it.
    pub outbox: Arc<Outbox>,
}

#[derive(Debug)]
struct Participant {
    id: String,
    role: Role,
    name: String,
    device: String,
    remote: bool,
    acked: Option<u64>,
    rtt_ms: Option<u32>,
    hand: bool,
    view: Option<u32>,
    conn: Option<u64>,
    kicked: bool,
    dirty: bool,
    /// Highest ack written to the log (only acks that cross a significant change are).
    logged_ack: u64,
}

impl Participant {
    fn entry(&self) -> RosterEntry {
        RosterEntry {
            id: self.id.clone(),
            name: self.name.clone(),
            online: self.conn.is_some(),
            remote: self.remote,
            acked: self.acked,
            rtt_ms: self.rtt_ms,
            hand: self.hand,
            view: self.view,
            kicked: self.kicked,
        }
    }
}

#[derive(Debug)]
struct Member {
    conn: u64,
    role: Role,
    outbox: Arc<Outbox>,
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
    sync_cache: Option<Utf8Bytes>,
    teachers_online: usize,
    /// Seqs of significant changes (not pointer moves), for deciding which acks to log.
    significant: Vec<u64>,
}

/// A lesson room.
pub struct Room {
    inner: Mutex<Inner>,
    info: RoomInfo,
    code: String,
    teacher_key: String,
    tokens: TokenKey,
    docs: Arc<Library>,
    store: Arc<dyn Store>,
    metrics: Metrics,
    limits: Limits,
    heartbeat_ms: u64,
    next_conn: AtomicU64,
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
    pub docs: Arc<Library>,
    /// Where events go.
    pub store: Arc<dyn Store>,
    /// Where counts go.
    pub metrics: Metrics,
    /// Limits.
    pub limits: Limits,
    /// Heartbeat told to clients.
    pub heartbeat_ms: u64,
}

fn encode(msg: &ServerMsg) -> Utf8Bytes {
    Utf8Bytes::from(msg.encode())
}

fn valid_device(d: &str) -> bool {
    (8..=64).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Checks a display name (§3): 1 to 64 characters after trimming, no control characters.
pub fn valid_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    let n = name.chars().count();
    if n == 0 || n > 64 {
        return Err(format!("name must be 1 to 64 characters, not {n}"));
    }
    if name.chars().any(char::is_control) {
        return Err("name may not contain control characters".into());
    }
    Ok(name.to_string())
}

impl Room {
    /// A room for this lesson.
    pub fn new(parts: RoomParts) -> Room {
        let RoomParts { lesson, state, seq, teacher_key, docs, store, metrics, limits, heartbeat_ms } = parts;
        let tokens = TokenKey::from_teacher_key(&teacher_key);
        store.save_lesson(&lesson, Some((seq, &state)));
        Room {
            info: RoomInfo { id: lesson.room.clone(), title: lesson.title.clone() },
            code: lesson.code.clone(),
            teacher_key,
            tokens,
            docs,
            store,
            metrics,
            limits,
            heartbeat_ms,
            next_conn: AtomicU64::new(1),
            inner: Mutex::new(Inner {
                state,
                seq,
                revoked: lesson.revoked.iter().cloned().collect(),
                lesson,
                participants: HashMap::new(),
                members: Vec::new(),
                roster_dirty: Vec::new(),
                sync_cache: None,
                teachers_online: 0,
                significant: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section leaves the room consistent between statements that can panic only on
        // allocation failure, so a poisoned lock is recovered rather than taking the lesson down.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Room id and title.
    pub fn info(&self) -> &RoomInfo {
        &self.info
    }

    /// The join code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The document library.
    pub fn docs(&self) -> &Arc<Library> {
        &self.docs
    }

    /// The current seq and state.
    pub fn state(&self) -> (u64, LessonState) {
        let inner = self.lock();
        (inner.seq, inner.state.clone())
    }

    /// The lesson record (identity, revocations).
    pub fn lesson(&self) -> LessonRecord {
        self.lock().lesson.clone()
    }

    /// Whether a bearer secret is the teacher key or a live participant's token (for `/v1/docs/{id}`).
    pub fn authorize_bearer(&self, secret: &str) -> Option<Role> {
        if constant_time_eq(secret, &self.teacher_key) {
            return Some(Role::Teacher);
        }
        let claims = self.tokens.verify(secret)?;
        let inner = self.lock();
        (claims.room == self.info.id && !inner.revoked.contains(&claims.pid) && !inner.state.ended)
            .then_some(claims.role)
    }

    /// Whether a secret is the teacher key.
    pub fn is_teacher_key(&self, secret: &str) -> bool {
        constant_time_eq(secret, &self.teacher_key)
    }

    /// Admits a connection that said `hello`, queueing its `welcome`.
    pub fn join(&self, hello: Hello, addr: Option<IpAddr>, remote: bool) -> Result<Joined, JoinError> {
        let bad = |m: &str| JoinError::BadRequest(m.to_string());
        let v = hello.v.as_ref().ok_or_else(|| bad("hello needs \"v\", the protocol version"))?;
        let v = v.as_u64().ok_or_else(|| bad("\"v\" must be an integer"))?;
        if v != u64::from(VERSION) {
            return Err(JoinError::Version(format!(
                "protocol version {v} is not supported; this server speaks 1"
            )));
        }
        let role = match hello.role.as_deref() {
            Some("student") => Role::Student,
            Some("teacher") => Role::Teacher,
            Some(other) => {
                return Err(bad(&format!("role must be \"student\" or \"teacher\", not \"{other}\"")));
            }
            None => return Err(bad("hello needs \"role\"")),
        };
        let device = hello.device.as_deref().ok_or_else(|| bad("hello needs \"device\""))?;
        if !valid_device(device) {
            return Err(bad("device must be 8 to 64 characters of A-Z, a-z, 0-9, _ and -"));
        }
        let name = match hello.name.as_deref() {
            Some(n) => Some(valid_name(n).map_err(JoinError::BadRequest)?),
            None => None,
        };

        let claims = if let Some(token) = hello.resume.as_deref() {
            let claims = self.tokens.verify(token).ok_or(JoinError::Credentials)?;
            if claims.room != self.info.id {
                return Err(JoinError::Credentials);
            }
            Claims { name: name.unwrap_or(claims.name.clone()), ..claims }
        } else {
            match role {
                Role::Teacher => {
                    let key = hello
                        .key
                        .as_deref()
                        .ok_or_else(|| bad("a teacher's hello needs \"key\" or \"resume\""))?;
                    if !constant_time_eq(key, &self.teacher_key) {
                        return Err(JoinError::Credentials);
                    }
                }
                Role::Student => {
                    let code = hello
                        .code
                        .as_deref()
                        .ok_or_else(|| bad("a student's hello needs \"code\" or \"resume\""))?;
                    if name.is_none() {
                        return Err(bad("a student's hello needs \"name\""));
                    }
                    if !constant_time_eq(code.trim(), &self.code) {
                        return Err(JoinError::Credentials);
                    }
                }
            }
            Claims {
                room: self.info.id.clone(),
                pid: self.tokens.participant_id(&self.info.id, role, device),
                role,
                device: device.to_string(),
                name: name.unwrap_or_else(|| "Teacher".to_string()),
            }
        };

        let mut inner = self.lock();
        if inner.state.ended {
            return Err(JoinError::Ended);
        }
        if inner.revoked.contains(&claims.pid) {
            return Err(if hello.resume.is_some() { JoinError::Credentials } else { JoinError::Kicked });
        }
        // Known participants are kept for the roster; bound them too, or new device ids could grow the
        // room without limit.
        if !inner.participants.contains_key(&claims.pid)
            && inner.participants.len() >= self.limits.max_participants * 4
        {
            return Err(JoinError::Full);
        }
        let online_students = inner.members.iter().filter(|m| m.role == Role::Student).count();
        let was_online = inner.participants.get(&claims.pid).and_then(|p| p.conn);
        if claims.role == Role::Student
            && was_online.is_none()
            && online_students >= self.limits.max_participants
        {
            return Err(JoinError::Full);
        }
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        if let Some(old) = was_online {
            if let Some(m) = inner.members.iter().find(|m| m.conn == old) {
                m.outbox.close(close::REPLACED, "replaced by a newer connection of the same device");
            }
            inner.members.retain(|m| m.conn != old);
        }
        let outbox = Arc::new(Outbox::new(self.limits.queue_capacity));
        let participant = inner.participants.entry(claims.pid.clone()).or_insert_with(|| Participant {
            id: claims.pid.clone(),
            role: claims.role,
            name: claims.name.clone(),
            device: claims.device.clone(),
            remote,
            acked: None,
            rtt_ms: None,
            hand: false,
            view: None,
            conn: None,
            kicked: false,
            dirty: false,
            logged_ack: 0,
        });
        participant.name = claims.name.clone();
        participant.remote = remote;
        participant.conn = Some(conn);
        let you = You { id: participant.id.clone(), role: participant.role, name: participant.name.clone() };
        let device = participant.device.clone();
        inner.members.push(Member { conn, role: claims.role, outbox: outbox.clone() });

        if claims.role == Role::Teacher && was_online.is_none() {
            inner.teachers_online += 1;
            if inner.teachers_online == 1 {
                self.broadcast_students(&inner, &ServerMsg::Teacher { online: true });
            }
        }
        let roster = (claims.role == Role::Teacher).then(|| {
            let mut r: Vec<RosterEntry> = inner
                .participants
                .values()
                .filter(|p| p.role == Role::Student)
                .map(Participant::entry)
                .collect();
            r.sort_by(|a, b| a.name.cmp(&b.name));
            r
        });
        let token = self.tokens.issue(&claims);
        let token_hash = crate::store::sqlite::token_hash(&token);
        let welcome = ServerMsg::Welcome {
            v: VERSION,
            you: you.clone(),
            token,
            room: self.info.clone(),
            seq: inner.seq,
            state: inner.state.clone(),
            heartbeat_ms: self.heartbeat_ms,
            time: now_ms(),
            teacher_online: inner.teachers_online > 0,
            roster,
        };
        outbox.push(Item::Msg(encode(&welcome)));
        if claims.role == Role::Student {
            self.mark(&mut inner, &you.id);
            self.flush_roster_locked(&mut inner);
        }
        self.store.record(
            &self.info.id,
            Record::Joined {
                conn,
                token_hash,
                pid: you.id.clone(),
                role: you.role,
                name: you.name,
                device,
                remote,
                addr,
                time: now_ms(),
            },
        );
        Ok(Joined { conn, pid: you.id, role: claims.role, outbox })
    }

    /// Removes a closed connection. A connection already replaced by a newer one changes nothing else.
    pub fn leave(&self, pid: &str, conn: u64) {
        let mut inner = self.lock();
        inner.members.retain(|m| m.conn != conn);
        self.store.record(&self.info.id, Record::Left { conn, time: now_ms() });
        let Some(p) = inner.participants.get_mut(pid) else { return };
        if p.conn != Some(conn) {
            return;
        }
        p.conn = None;
        let role = p.role;
        match role {
            Role::Teacher => {
                inner.teachers_online = inner.teachers_online.saturating_sub(1);
                if inner.teachers_online == 0 && !inner.state.ended {
                    self.broadcast_students(&inner, &ServerMsg::Teacher { online: false });
                }
            }
            Role::Student => {
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

    /// Encodes a patch once and pushes its bytes to every connection; the caller holds the lock.
    fn fan_out(&self, inner: &mut Inner, seq: u64, patch: &Patch, time: u64) {
        let accepted = Instant::now();
        let bytes = Utf8Bytes::from(crate::protocol::patch_frame(seq, time, patch));
        let mut conflated = 0;
        for m in &inner.members {
            if m.outbox.push(Item::Patch { seq, bytes: bytes.clone(), accepted }) == Pushed::Conflated {
                conflated += 1;
            }
        }
        inner.sync_cache = None;
        self.metrics.patches.increment(1);
        if conflated > 0 {
            self.metrics.conflations.increment(conflated);
        }
    }

    /// A teacher's `set`: validates, stamps, fans out, and answers `ok` (once the patch is durable, when
    /// the store confirms) or `error` into `reply`.
    pub fn set(&self, id: Option<u32>, set: SetPatch, reply: &Arc<Outbox>) {
        let mut inner = self.lock();
        let patch = match inner.state.validate(set, |doc| self.docs.get(doc)) {
            Ok(p) => p,
            Err(message) => {
                self.metrics.reject(crate::metrics::Rejected::BadRequest);
                reply.push_or_close(Item::Msg(encode(&ServerMsg::error(id, ErrorCode::BadRequest, message))));
                return;
            }
        };
        inner.seq += 1;
        let seq = inner.seq;
        let time = now_ms();
        inner.state.apply(&patch);
        if !patch.is_pointer_only() {
            inner.significant.push(seq);
        }
        self.fan_out(&mut inner, seq, &patch, time);
        let done = self.ok_when_durable(id, seq, reply, None);
        self.store.record(&self.info.id, Record::Patch { seq, time, patch, done });
    }

    /// The `ok` for a patch: now if the store does not confirm, else when it has written the patch.
    /// `then_close` closes the connection after the `ok` (for `end`).
    fn ok_when_durable(
        &self,
        id: Option<u32>,
        seq: u64,
        reply: &Arc<Outbox>,
        then_close: Option<u16>,
    ) -> Option<Done> {
        let send = {
            let reply = reply.clone();
            move |durable: bool| {
                let ok = ServerMsg::Ok { id, seq: Some(seq), durable: (!durable).then_some(false) };
                reply.push_or_close(Item::Msg(encode(&ok)));
                if let Some(code) = then_close {
                    reply.close(code, "the lesson has ended");
                }
            }
        };
        if self.store.confirms() {
            Some(Done::new(send))
        } else {
            send(true);
            None
        }
    }

    /// Ends the lesson: everyone gets the `ended` patch, then is closed with 4000 (the teacher who asked
    /// once its `ok` is durable).
    pub fn end(&self, id: Option<u32>, reply: &Arc<Outbox>) {
        let mut inner = self.lock();
        if inner.state.ended {
            reply.push_or_close(Item::Msg(encode(&ServerMsg::error(
                id,
                ErrorCode::BadRequest,
                "the lesson has ended",
            ))));
            return;
        }
        self.end_locked(&mut inner, Some((id, reply)));
    }

    /// Ends the lesson with no request (a new lesson replaces it).
    pub fn end_now(&self) {
        let mut inner = self.lock();
        if !inner.state.ended {
            self.end_locked(&mut inner, None);
        }
    }

    /// Applies, logs and fans out the `ended` patch and closes everyone with 4000; the teacher who
    /// asked (`asker`: request id and outbox) is closed after its `ok`.
    fn end_locked(&self, inner: &mut Inner, asker: Option<(Option<u32>, &Arc<Outbox>)>) {
        inner.seq += 1;
        let seq = inner.seq;
        let time = now_ms();
        let patch = Patch { ended: Some(true), ..Patch::default() };
        inner.state.apply(&patch);
        inner.lesson.ended_ms = Some(time);
        self.store.save_lesson(&inner.lesson, None);
        self.fan_out(inner, seq, &patch, time);
        for m in &inner.members {
            if asker.is_none_or(|(_, a)| !Arc::ptr_eq(a, &m.outbox)) {
                m.outbox.close(close::ENDED, "the lesson has ended");
            }
        }
        let done = asker.and_then(|(id, reply)| self.ok_when_durable(id, seq, reply, Some(close::ENDED)));
        self.store.record(&self.info.id, Record::Patch { seq, time, patch, done });
    }

    /// A teacher's `kick`: closes the student with 4003 and revokes its token.
    pub fn kick(&self, id: Option<u32>, who: &str, reply: &Outbox) {
        let mut inner = self.lock();
        let Some(p) = inner.participants.get_mut(who).filter(|p| p.role == Role::Student) else {
            reply.push_or_close(Item::Msg(encode(&ServerMsg::error(
                id,
                ErrorCode::NotFound,
                format!("no student \"{who}\""),
            ))));
            return;
        };
        p.kicked = true;
        p.hand = false;
        let conn = p.conn;
        inner.revoked.insert(who.to_string());
        self.store.record(&self.info.id, Record::Revoked { pid: who.to_string() });
        if let Some(m) = conn.and_then(|c| inner.members.iter().find(|m| m.conn == c)) {
            m.outbox.close(close::KICKED, "removed from this lesson by the teacher");
        }
        self.mark(&mut inner, who);
        self.flush_roster_locked(&mut inner);
        reply.push_or_close(Item::Msg(encode(&ServerMsg::Ok { id, seq: None, durable: None })));
    }

    /// A student's cumulative `ack`. It is logged only when it crosses a significant change not yet
    /// logged for this student, which is all follow times need (pointer moves are not followed).
    pub fn ack(&self, pid: &str, seq: u64, reply: &Outbox) {
        let mut inner = self.lock();
        if seq > inner.seq {
            let msg = format!("ack {seq} is ahead of the lesson (seq {})", inner.seq);
            reply.push_or_close(Item::Msg(encode(&ServerMsg::error(None, ErrorCode::BadRequest, msg))));
            return;
        }
        let Inner { participants, significant, .. } = &mut *inner;
        let Some(p) = participants.get_mut(pid) else { return };
        if p.acked.is_some_and(|a| a >= seq) {
            return;
        }
        p.acked = Some(seq);
        // The newest significant change this ack reaches, if the log has not seen this student reach it.
        let reached = significant.partition_point(|s| *s <= seq);
        if reached > 0 && significant.get(reached - 1).is_some_and(|s| *s > p.logged_ack) {
            p.logged_ack = seq;
            self.store.record(&self.info.id, Record::Ack { pid: pid.to_string(), seq, time: now_ms() });
        }
        self.mark(&mut inner, pid);
    }

    /// A student's `hand`: the teacher sees it at once.
    pub fn hand(&self, pid: &str, up: bool) {
        let mut inner = self.lock();
        let Some(p) = inner.participants.get_mut(pid) else { return };
        if p.hand == up {
            return;
        }
        p.hand = up;
        self.store.record(&self.info.id, Record::Hand { pid: pid.to_string(), up, time: now_ms() });
        self.mark(&mut inner, pid);
        self.flush_roster_locked(&mut inner);
    }

    /// A student's `view` (the page shown in free mode).
    pub fn view(&self, pid: &str, page: Option<u32>, reply: &Outbox) {
        let mut inner = self.lock();
        let pages = inner.state.doc.as_ref().map_or(0, |d| d.pages);
        if let Some(page) = page
            && (page == 0 || page > pages)
        {
            let msg = format!("view page {page} is outside 1 to {pages}");
            reply.push_or_close(Item::Msg(encode(&ServerMsg::error(None, ErrorCode::BadRequest, msg))));
            return;
        }
        let Some(p) = inner.participants.get_mut(pid) else { return };
        if p.view != page {
            p.view = page;
            self.mark(&mut inner, pid);
        }
    }

    /// A measured round trip for a participant.
    pub fn rtt(&self, pid: &str, rtt_ms: u32) {
        let mut inner = self.lock();
        let Some(p) = inner.participants.get_mut(pid) else { return };
        if p.role == Role::Student && p.rtt_ms != Some(rtt_ms) {
            p.rtt_ms = Some(rtt_ms);
            self.mark(&mut inner, pid);
        }
    }

    fn mark(&self, inner: &mut Inner, pid: &str) {
        if let Some(p) = inner.participants.get_mut(pid)
            && !p.dirty
        {
            p.dirty = true;
            inner.roster_dirty.push(pid.to_string());
        }
    }

    fn flush_roster_locked(&self, inner: &mut Inner) {
        if inner.roster_dirty.is_empty() {
            return;
        }
        let dirty = std::mem::take(&mut inner.roster_dirty);
        let mut changes = Vec::with_capacity(dirty.len());
        for pid in dirty {
            if let Some(p) = inner.participants.get_mut(&pid) {
                p.dirty = false;
                changes.push(p.entry());
            }
        }
        let bytes = encode(&ServerMsg::Roster { changes });
        for m in inner.members.iter().filter(|m| m.role == Role::Teacher) {
            m.outbox.push(Item::Roster(bytes.clone()));
        }
    }

    /// Sends pending ack, round-trip and view changes to teachers; called every roster interval.
    pub fn flush_roster(&self) {
        let mut inner = self.lock();
        self.flush_roster_locked(&mut inner);
    }

    /// The `sync` frame for the current state (cached until the next patch).
    pub fn sync_frame(&self) -> (u64, Utf8Bytes) {
        let mut inner = self.lock();
        let seq = inner.seq;
        if let Some(bytes) = &inner.sync_cache {
            return (seq, bytes.clone());
        }
        let bytes = encode(&ServerMsg::Sync { seq, state: inner.state.clone() });
        inner.sync_cache = Some(bytes.clone());
        (seq, bytes)
    }

    /// The whole roster as one `roster` frame (for a teacher whose roster updates were conflated).
    pub fn roster_frame(&self) -> Utf8Bytes {
        let inner = self.lock();
        let changes =
            inner.participants.values().filter(|p| p.role == Role::Student).map(Participant::entry).collect();
        encode(&ServerMsg::Roster { changes })
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
        (teachers, inner.members.len() - teachers)
    }
}
