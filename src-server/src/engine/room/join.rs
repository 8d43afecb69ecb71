//! Admission to a room: checking a `hello` (§3), and seating the participant it proves.
//!
//! Checking is pure (no lock): the version, role, device and name, then the credentials (a resume token,
//! the teacher key or the join code). Seating takes the room's lock once: revocations, the limits, a
//! newer connection of the same participant replacing the older one (4409), and the `welcome` queued as
//! the connection's first frame, so it is followed exactly by the first patch it does not contain.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::participant::Participant;
use super::{Inner, Member, Room, encode};
use crate::engine::outbox::{Item, Outbox};
use crate::engine::report::Event;
use crate::engine::token::{Claims, constant_time_eq, token_hash};
use crate::now_ms;
use crate::protocol::{Hello, Role, RosterEntry, ServerMsg, VERSION, You, close};

pub use super::refused::JoinError;

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
    /// A second path (PROTOCOL-ADDITIONS N): it only listens, and holds no seat.
    pub second: bool,
}

fn valid_device(d: &str) -> bool {
    (8..=64).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Checks a display name (§3) and cleans it for showing: 1 to 64 characters, at least one visible,
/// no direction overrides ([`crate::engine::names`]); a student's may not be one kept for the teacher.
pub fn valid_name(name: &str, role: Role) -> Result<String, String> {
    match role {
        Role::Teacher => crate::engine::names::clean(name),
        Role::Student => crate::engine::names::student(name),
    }
}

fn bad(m: &str) -> JoinError {
    JoinError::BadRequest(m.to_string())
}

/// The fields every `hello` needs, checked.
pub(super) struct Checked<'h> {
    pub(super) role: Role,
    pub(super) device: &'h str,
    pub(super) name: Option<String>,
}

pub(super) fn check_fields(hello: &Hello) -> Result<Checked<'_>, JoinError> {
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
        Some(other) => return Err(bad(&format!("role must be \"student\" or \"teacher\", not \"{other}\""))),
        None => return Err(bad("hello needs \"role\"")),
    };
    let device = hello.device.as_deref().ok_or_else(|| bad("hello needs \"device\""))?;
    if !valid_device(device) {
        return Err(bad("device must be 8 to 64 characters of A-Z, a-z, 0-9, _ and -"));
    }
    // A resume's name is not used (the token's is), so it is not held to the rules either.
    let name = hello
        .name
        .as_deref()
        .filter(|_| hello.resume.is_none())
        .map(|n| valid_name(n, role))
        .transpose()
        .map_err(JoinError::BadRequest)?;
    Ok(Checked { role, device, name })
}

/// How many participants one device id may be at once: a new claim never takes over a student who is
/// online (§3), so a second join from the same device id becomes a twin with its own id.
const MAX_TWINS: usize = 8;

impl Room {
    /// Admits a connection that said `hello`, queueing its `welcome`.
    pub fn join(&self, hello: Hello, addr: Option<IpAddr>, remote: bool) -> Result<Joined, JoinError> {
        let claims = self.claims(&hello)?;
        if hello.second {
            return self.enter_second(&claims, hello.resume.is_some(), addr);
        }
        self.enter(claims, hello.resume.is_some(), addr, remote)
    }

    /// Seats a participant whose claims are proven (a resume token, the key, the code, or a knock the
    /// teacher let in), and queues its `welcome`.
    pub(super) fn enter(
        &self,
        mut claims: Claims,
        resumed: bool,
        addr: Option<IpAddr>,
        remote: bool,
    ) -> Result<Joined, JoinError> {
        let mut inner = self.lock();
        if inner.revoked.contains(&claims.pid) {
            return Err(if resumed { JoinError::Credentials } else { JoinError::Kicked });
        }
        // A token issued before its participant id was given afresh to another is no proof.
        if resumed && inner.outdated(&claims) {
            return Err(JoinError::Credentials);
        }
        if !resumed && claims.role == Role::Student && self.teachers_name(&inner, &claims.name) {
            return Err(bad("that name is the teacher's; use your own"));
        }
        let mut reused = false;
        if !resumed {
            let (pid, again) = self.free_pid(&inner, &claims)?;
            claims.pid = pid;
            reused = again;
        }
        // This machine's own connections (loopback) are not counted per address.
        let addr = addr.and_then(crate::engine::rate::counted);
        let (conn, replaced) = self.seat(&mut inner, &claims, addr)?;
        if reused {
            // A twin seat of this very device, long gone: it starts afresh (no hand, no acks), and
            // the tokens its earlier holder had no longer resume into it.
            inner.participants.remove(&claims.pid);
            inner.reissued.insert(claims.pid.clone(), now_ms());
        }
        let outbox = Arc::new(Outbox::new(self.limits.queue_capacity));
        // A newcomer (no resume token) that looks like a removed student is flagged for the teacher.
        let lookalike = !resumed
            && claims.role == Role::Student
            && !inner.participants.contains_key(&claims.pid)
            && inner.lookalikes.like_removed(&claims.name, addr);
        let participant = inner.participants.entry(claims.pid.clone()).or_insert_with(|| {
            Participant::new(claims.pid.clone(), claims.role, claims.name.clone(), claims.device.clone())
        });
        participant.name = claims.name.clone();
        participant.remote = remote;
        participant.conn = Some(conn);
        participant.addr = addr;
        participant.like_removed |= lookalike;
        let you = You { id: participant.id.clone(), role: participant.role, name: participant.name.clone() };
        inner.members.push(Member { conn, role: claims.role, outbox: outbox.clone(), addr, second_of: None });
        if claims.role == Role::Teacher && !replaced {
            inner.teachers_online += 1;
            if inner.teachers_online == 1 {
                self.broadcast_students(&inner, &ServerMsg::Teacher { online: true });
                self.report(Event::Teacher { online: true });
            }
        }
        let token = self.tokens.issue(&claims);
        let token_hash = token_hash(&token);
        outbox.push(Item::Msg(encode(&self.welcome(&inner, you.clone(), token))));
        if claims.role == Role::Teacher {
            outbox.push(Item::Msg(encode(&ServerMsg::WaitingRoom { on: inner.lesson.waiting_room })));
            if !inner.knocks.is_empty() {
                outbox.push_marker(Item::Knocks);
            }
        }
        if claims.role == Role::Student {
            self.mark(&mut inner, &you.id);
            self.flush_roster_locked(&mut inner);
        }
        self.report(Event::Joined {
            conn,
            token_hash,
            pid: you.id.clone(),
            role: you.role,
            name: you.name,
            device: claims.device,
            remote,
            addr,
            time: now_ms(),
        });
        Ok(Joined { conn, pid: you.id, role: claims.role, outbox, second: false })
    }

    /// The participant id for a new claim: the device's own, unless the room knows that participant
    /// already (online or not), then the first of its twins it does not know. A device id is no
    /// secret: only a resume token proves the same participant, so a claim by code never inherits
    /// a seat, its name, hand or place on the roster. A teacher's key claim replaces (the key is the
    /// proof). When every twin is known, the one that left longest ago is used again, afresh
    /// (`true`): never the device's own id, which only its token may take back.
    fn free_pid(&self, inner: &Inner, claims: &Claims) -> Result<(String, bool), JoinError> {
        let known = |pid: &str| inner.participants.get(pid);
        if claims.role == Role::Teacher || known(&claims.pid).is_none() {
            return Ok((claims.pid.clone(), false));
        }
        let mut removed = false;
        let mut oldest: Option<(u64, String)> = None;
        for pid in self.twins(&claims.device) {
            match known(&pid) {
                _ if inner.revoked.contains(&pid) => removed = true,
                None => return Ok((pid, false)),
                Some(p) if p.conn.is_none() && oldest.as_ref().is_none_or(|(left, _)| p.left_ms < *left) => {
                    oldest = Some((p.left_ms, pid));
                }
                Some(_) => {}
            }
        }
        match oldest {
            Some((_, pid)) => Ok((pid, true)),
            None if removed => Err(JoinError::Kicked),
            None => Err(JoinError::TooManyFromDevice),
        }
    }

    /// Whether `name` would pass for the name a teacher of this room goes by.
    pub(super) fn teachers_name(&self, inner: &Inner, name: &str) -> bool {
        inner
            .participants
            .values()
            .any(|p| p.role == Role::Teacher && crate::engine::names::same_to_the_eye(&p.name, name))
    }

    /// The participant ids a student device may have besides its own (see `MAX_TWINS`).
    pub(super) fn twins<'a>(&'a self, device: &'a str) -> impl Iterator<Item = String> + 'a {
        (1..MAX_TWINS)
            .map(move |k| self.tokens.participant_id(&self.info.id, Role::Student, &format!("{device}~{k}")))
    }

    /// Who a `hello` proves to be: the participant of a resume token, or a new claim by key or code.
    pub(super) fn claims(&self, hello: &Hello) -> Result<Claims, JoinError> {
        let Checked { role, device, name } = check_fields(hello)?;
        if let Some(token) = hello.resume.as_deref() {
            let claims = self.tokens.verify(token).ok_or(JoinError::Credentials)?;
            if claims.room != self.info.id || (self.mirror && claims.role == Role::Teacher) {
                return Err(JoinError::Credentials);
            }
            // The token decides the role: a student's token in a teacher's hello is no teacher. It
            // decides the name too: the one the participant was let in with, whatever this hello
            // says (a student let in as "Ali" cannot come back as "Aisha"). That name passed the
            // rules when it was let in; it is cleaned again for showing (an older token's too), but
            // rules made stricter since never lock a seated student out.
            if claims.role != role {
                return Err(bad("\"role\" is not the one this resume token was issued to"));
            }
            let name = crate::engine::names::clean(&claims.name).unwrap_or_else(|_| "Student".to_string());
            return Ok(Claims { name, ..claims });
        }
        match role {
            Role::Teacher => {
                let key = hello
                    .key
                    .as_deref()
                    .ok_or_else(|| bad("a teacher's hello needs \"key\" or \"resume\""))?;
                // A relay's room has no teacher: the teacher teaches on their own server.
                if self.mirror || !constant_time_eq(key, &self.teacher_key) {
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
                match self.check_code(code) {
                    Some(true) => {}
                    Some(false) => return Err(JoinError::Credentials),
                    None => return Err(JoinError::WaitingRoom),
                }
                // On the teacher's server, a code claim in the waiting room is a knock before it
                // gets here; a relay's room cannot knock.
                if self.mirror && self.waiting_room() {
                    return Err(JoinError::LetIn);
                }
            }
        }
        Ok(Claims {
            room: self.info.id.clone(),
            pid: self.tokens.participant_id(&self.info.id, role, device),
            role,
            device: device.to_string(),
            name: name.unwrap_or_else(|| "Teacher".to_string()),
            issued: 0,
        })
    }

    /// Checks the room can seat this participant and gives it a connection id; an older connection
    /// of the same participant (a resume, or the teacher's key) is closed with 4409 (`true` when one
    /// was).
    fn seat(
        &self,
        inner: &mut Inner,
        claims: &Claims,
        addr: Option<IpAddr>,
    ) -> Result<(u64, bool), JoinError> {
        if inner.state.ended {
            return Err(JoinError::Ended);
        }
        // Known participants are kept for the roster; bound them too, or new device ids could grow the
        // room without limit. When the table is full, the student who left longest ago is forgotten
        // (never one online, nor one the teacher removed): departed devices never lock a class out.
        // Remote students (from relays) have a table of their own: only the room's own count here.
        let table_full = !inner.participants.contains_key(&claims.pid)
            && inner.participants.values().filter(|p| !p.remote).count()
                >= self.limits.max_participants.saturating_mul(4);
        let departed = table_full.then(|| {
            let gone =
                |p: &&Participant| !p.remote && p.role == Role::Student && p.conn.is_none() && !p.kicked;
            inner.participants.values().filter(gone).min_by_key(|p| p.left_ms).map(|p| p.id.clone())
        });
        if departed.as_ref().is_some_and(Option::is_none) {
            return Err(JoinError::Full);
        }
        let online_students = inner.members.iter().filter(|m| m.seated_student()).count();
        let was_online = inner.participants.get(&claims.pid).and_then(|p| p.conn);
        if claims.role == Role::Student
            && was_online.is_none()
            && online_students >= self.limits.max_participants
        {
            return Err(JoinError::Full);
        }
        // One address (one device, or one NAT) holds at most so many students' seats: a student with
        // the code cannot fill the class with fakes from one machine.
        let from_here = |m: &&Member| m.seated_student() && addr.is_some() && m.addr == addr;
        if claims.role == Role::Student
            && was_online.is_none()
            && inner.members.iter().filter(from_here).count() >= self.limits.max_students_per_address
        {
            return Err(JoinError::TooManyFromAddress);
        }
        // Only a join that is going ahead forgets a departed student (see above).
        if let Some(Some(departed)) = departed {
            inner.participants.remove(&departed);
        }
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        if let Some(old) = was_online {
            if let Some(m) = inner.members.iter().find(|m| m.conn == old) {
                m.outbox.close(close::REPLACED, "replaced by a newer connection of the same device");
            }
            inner.members.retain(|m| m.conn != old);
            // Its second path was the older connection's: the newer opens its own.
            Self::close_second(inner, &claims.pid, close::REPLACED, "the first path was replaced");
        }
        Ok((conn, was_online.is_some()))
    }

    pub(super) fn welcome(&self, inner: &Inner, you: You, token: String) -> ServerMsg {
        let roster = (you.role == Role::Teacher).then(|| {
            let mut r: Vec<RosterEntry> = inner
                .participants
                .values()
                .filter(|p| p.role == Role::Student)
                .map(Participant::entry)
                .collect();
            r.sort_by(|a, b| a.name.cmp(&b.name));
            r
        });
        let second = you.role == Role::Student && self.offers_second();
        ServerMsg::Welcome {
            v: VERSION,
            you,
            token,
            room: Box::new(self.room_info(inner)),
            seq: inner.seq,
            state: inner.state.clone(),
            heartbeat_ms: self.heartbeat_ms,
            time: now_ms(),
            // A relay's copy has no teacher of its own: the teacher's latest beat says.
            teacher_online: inner.teachers_online > 0 || inner.beat.as_ref().is_some_and(|b| b.teacher),
            roster,
            signed: inner.signed.clone(),
            beat: inner.beat.clone().map(Box::new),
            second,
        }
    }
}
