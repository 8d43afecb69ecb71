//! Asking to join without a code (docs/PROTOCOL-ADDITIONS.md, "Asking to join"): a student that found
//! the class on the network knocks, and a teacher lets it in or turns it away.
//!
//! A knock holds no seat and proves nothing. It waits in the room's list, which every teacher gets
//! whole whenever it changes, until a teacher decides, the student leaves, or the lesson ends. The list
//! is bounded per room, per device (a new knock replaces the older one) and per address (an IPv6 /64
//! counts as one address), so a student who can see the class cannot bury the teacher's screen in
//! knocks.

use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::oneshot;

use super::join::{JoinError, Joined, check_fields};
use axum::extract::ws::Utf8Bytes;

use super::{Inner, Room, encode};
use crate::engine::outbox::{Item, Outbox};
use crate::engine::rate::address_bucket;
use crate::engine::token::Claims;
use crate::protocol::{Hello, KnockEntry, Role, ServerMsg, close};

/// At most this many knocks without the join code wait in a room (those with it, in the waiting
/// room, are bounded by the class size instead).
pub const MAX_WAITING: usize = 32;
/// At most this many knocks without the join code wait from one address (an IPv6 /64 is one).
pub const MAX_PER_ADDRESS: usize = 3;
/// At most this many knocks a minute from one address, withdrawn ones included: a student who
/// knocks and leaves in a loop cannot flood the teacher's screen.
pub const KNOCKS_PER_MINUTE: u32 = 10;

/// What became of a knock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A teacher let the student in.
    Admitted,
    /// A teacher turned the student away.
    Denied,
    /// The same device knocked again.
    Replaced,
    /// The lesson ended.
    Ended,
}

impl Verdict {
    /// The close code and reason for a knock that was not let in.
    pub fn close(self) -> (u16, &'static str) {
        match self {
            Verdict::Admitted => (close::NORMAL, "let in"),
            Verdict::Denied => (close::KICKED, "the teacher did not let you in"),
            Verdict::Replaced => (close::REPLACED, "replaced by a newer knock from the same device"),
            Verdict::Ended => (close::ENDED, "the lesson has ended"),
        }
    }
}

/// A knock in the room's list.
#[derive(Debug)]
pub(super) struct Knock {
    entry: KnockEntry,
    bucket: Option<IpAddr>,
    verdict: oneshot::Sender<Verdict>,
}

impl Knock {
    /// Whether it came with the right join code.
    pub(super) fn has_code(&self) -> bool {
        self.entry.has_code
    }
}

/// A student's knock while it waits. Dropping it (the student left) takes it off the teacher's list.
#[derive(Debug)]
pub struct Waiting {
    room: Arc<Room>,
    id: String,
    claims: Claims,
    verdict: oneshot::Receiver<Verdict>,
}

impl Waiting {
    /// Waits for a teacher's decision (or the end of the lesson).
    pub async fn verdict(&mut self) -> Verdict {
        (&mut self.verdict).await.unwrap_or(Verdict::Ended)
    }

    /// Seats a student a teacher let in, as a code would have; its `welcome` is queued.
    pub fn enter(&self, addr: Option<IpAddr>, remote: bool) -> Result<Joined, JoinError> {
        self.room.enter(self.claims.clone(), false, addr, remote)
    }

    /// The room knocked at.
    pub fn room(&self) -> &Arc<Room> {
        &self.room
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.room.withdraw(&self.id);
    }
}

impl Room {
    /// Puts a student's knock on the teacher's list. Refused at once when the lesson has ended, the
    /// device was removed, or the room or the address has too many knocks waiting. `has_code`: the
    /// student gave the right join code and waits only because the waiting room is on; such knocks
    /// are bounded by the class size rather than per address (a school NAT puts a whole class behind
    /// one address).
    pub fn knock(
        self: &Arc<Self>,
        hello: &Hello,
        addr: Option<IpAddr>,
        has_code: bool,
    ) -> Result<Waiting, JoinError> {
        let checked = check_fields(hello)?;
        if checked.role != Role::Student {
            return Err(JoinError::BadRequest("only a student may knock".into()));
        }
        let name = checked.name.ok_or_else(|| JoinError::BadRequest("a knock needs \"name\"".into()))?;
        let device = checked.device.to_string();
        let claims = Claims {
            room: self.info.id.clone(),
            pid: self.tokens.participant_id(&self.info.id, Role::Student, &device),
            role: Role::Student,
            device: device.clone(),
            name: name.clone(),
            issued: 0,
        };
        let bucket = addr.map(address_bucket);
        let mut inner = self.lock();
        if inner.state.ended {
            return Err(JoinError::Ended);
        }
        if inner.revoked.contains(&claims.pid) || self.twins(&device).any(|pid| inner.revoked.contains(&pid))
        {
            return Err(JoinError::Kicked);
        }
        // Only from the same address: a device id is no secret, and a classmate must not be able to
        // cancel someone else's knock with it.
        if inner.knocks.iter().any(|k| k.entry.device == device && k.bucket != bucket) {
            return Err(JoinError::TooManyWaiting);
        }
        let replaced = inner.knocks.iter().position(|k| k.entry.device == device);
        if let Some(i) = replaced {
            let old = inner.knocks.remove(i);
            let _ = old.verdict.send(Verdict::Replaced);
        }
        let (with_code, without): (Vec<&Knock>, Vec<&Knock>) =
            inner.knocks.iter().partition(|k| k.entry.has_code);
        let too_many = if has_code {
            // As many as the address could still seat (`limits.max_students_per_address`), and no
            // more than the class: a student with the code cannot bury the teacher's list in fakes.
            let seat_bucket = bucket.filter(|b| !b.is_loopback());
            let seated = inner
                .members
                .iter()
                .filter(|m| m.role == Role::Student && seat_bucket.is_some() && m.addr == seat_bucket)
                .count();
            let waiting_here =
                with_code.iter().filter(|k| seat_bucket.is_some() && k.bucket == bucket).count();
            with_code.len() >= self.limits.max_participants
                || (seat_bucket.is_some() && seated + waiting_here >= self.limits.max_students_per_address)
        } else {
            let from_here = without.iter().filter(|k| bucket.is_some() && k.bucket == bucket).count();
            from_here >= MAX_PER_ADDRESS || without.len() >= MAX_WAITING
        };
        if too_many {
            if replaced.is_some() {
                self.send_knocks(&inner);
            }
            return Err(JoinError::TooManyWaiting);
        }
        inner.next_knock += 1;
        let id = format!("k{}", inner.next_knock);
        let (tx, rx) = oneshot::channel();
        let like_removed = inner.lookalikes.like_removed(&name, bucket.filter(|b| !b.is_loopback()));
        let entry = KnockEntry { id: id.clone(), name, device, has_code, like_removed };
        inner.knocks.push(Knock { entry, bucket, verdict: tx });
        self.send_knocks(&inner);
        Ok(Waiting { room: self.clone(), id, claims, verdict: rx })
    }

    /// A teacher's `admit` or `deny`: tells each waiting knock, and answers `ok`. Ids no longer
    /// waiting (the student left, or another teacher decided first) are skipped.
    pub fn decide(&self, id: Option<u32>, knocks: &[String], verdict: Verdict, reply: &Outbox) {
        let mut inner = self.lock();
        let before = inner.knocks.len();
        let mut i = 0;
        while i < inner.knocks.len() {
            if knocks.contains(&inner.knocks[i].entry.id) {
                let k = inner.knocks.remove(i);
                let _ = k.verdict.send(verdict);
            } else {
                i += 1;
            }
        }
        if inner.knocks.len() != before {
            self.send_knocks(&inner);
        }
        reply.push_or_close(Item::Msg(encode(&ServerMsg::Ok { id, seq: None, durable: None })));
    }

    /// Takes a knock off the list once its student has gone.
    fn withdraw(&self, id: &str) {
        let mut inner = self.lock();
        let before = inner.knocks.len();
        inner.knocks.retain(|k| k.entry.id != id);
        if inner.knocks.len() != before {
            self.send_knocks(&inner);
        }
    }

    /// Marks every waiting knock as having no code (the code changed); the caller holds the lock.
    pub(super) fn forget_codes(&self, inner: &mut Inner) {
        for k in inner.knocks.iter_mut() {
            k.entry.has_code = false;
        }
        self.send_knocks(inner);
    }

    /// Lets in every knock that came with the right code (the waiting room was turned off); the
    /// caller holds the lock.
    pub(super) fn admit_with_code(&self, inner: &mut Inner) {
        let (with_code, rest): (Vec<Knock>, Vec<Knock>) =
            std::mem::take(&mut inner.knocks).into_iter().partition(|k| k.entry.has_code);
        inner.knocks = rest;
        if !with_code.is_empty() {
            for k in with_code {
                let _ = k.verdict.send(Verdict::Admitted);
            }
            self.send_knocks(inner);
        }
    }

    /// Turns away every knock of a device that was just removed; the caller holds the lock.
    pub(super) fn deny_device(&self, inner: &mut Inner, device: &str) {
        let before = inner.knocks.len();
        let (gone, kept): (Vec<Knock>, Vec<Knock>) =
            std::mem::take(&mut inner.knocks).into_iter().partition(|k| k.entry.device == device);
        inner.knocks = kept;
        for k in gone {
            let _ = k.verdict.send(Verdict::Denied);
        }
        if inner.knocks.len() != before {
            self.send_knocks(inner);
        }
    }

    /// Tells every knock the lesson has ended; the caller holds the lock.
    pub(super) fn end_knocks(&self, inner: &mut Inner) {
        for k in inner.knocks.drain(..) {
            let _ = k.verdict.send(Verdict::Ended);
        }
    }

    /// The `knocks` frame for the list as it is now (the writer renders [`Item::Knocks`] with it).
    pub fn knocks_frame(&self) -> Utf8Bytes {
        let inner = self.lock();
        encode(&ServerMsg::Knocks { knocks: inner.knocks.iter().map(|k| k.entry.clone()).collect() })
    }

    /// Tells every teacher the list changed. The marker is rendered when the teacher's writer gets to
    /// it and queued at most once, so knocks however fast never fill a teacher's queue.
    pub(super) fn send_knocks(&self, inner: &Inner) {
        for m in inner.members.iter().filter(|m| m.role == Role::Teacher) {
            m.outbox.push_marker(Item::Knocks);
        }
    }
}
