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
use bytes::Bytes;

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
    /// The list was full, and an address with more waiting gave up its oldest.
    Bumped,
}

impl Verdict {
    /// The close code and reason for a knock that was not let in.
    pub fn close(self) -> (u16, &'static str) {
        match self {
            Verdict::Admitted => (close::NORMAL, "let in"),
            Verdict::Denied => (close::KICKED, "the teacher did not let you in"),
            Verdict::Replaced => (close::REPLACED, "replaced by a newer knock from the same device"),
            Verdict::Ended => (close::ENDED, "the lesson has ended"),
            Verdict::Bumped => {
                (close::RATE_LIMITED, "too many are waiting to be let in; try again in a moment")
            }
        }
    }
}

/// How a knock came to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Came {
    /// Asking without a code (a student who found the class on the network): at most
    /// [`MAX_PER_ADDRESS`] from one address and [`MAX_WAITING`] in all.
    Asking,
    /// With the right code, checked, while the teacher's waiting room is on.
    WithCode,
    /// With a code that was held, not answered, while someone is guessing (the room's budget of
    /// wrong codes is spent, or the address is over its own). `right` is what the code was, for the
    /// teacher's eyes only (`None`: it was not checked, the address having guessed too often); the
    /// student is answered the same whatever it was.
    Held {
        /// Whether the code was right, when it was checked.
        right: Option<bool>,
    },
}

/// A knock in the room's list.
#[derive(Debug)]
pub(super) struct Knock {
    entry: KnockEntry,
    bucket: Option<IpAddr>,
    came: Came,
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
    /// device was removed, or the room or the address has too many knocks waiting (see [`Came`]).
    pub fn knock(
        self: &Arc<Self>,
        hello: &Hello,
        addr: Option<IpAddr>,
        came: Came,
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
        let counted = addr.and_then(crate::engine::rate::counted);
        let mut inner = self.lock();
        if inner.state.ended {
            return Err(JoinError::Ended);
        }
        if inner.revoked.contains(&claims.pid) || self.twins(&device).any(|pid| inner.revoked.contains(&pid))
        {
            return Err(JoinError::Kicked);
        }
        if self.teachers_name(&inner, &name) {
            return Err(JoinError::BadRequest("that name is the teacher's; use your own".into()));
        }
        // A newer knock of the same device from the same address replaces the older one. From another
        // address it is another knock: a device id is no secret, and a classmate must not be able to
        // cancel someone's knock, nor keep them off the list, with it.
        let replaced = inner.knocks.iter().position(|k| k.entry.device == device && k.bucket == bucket);
        if let Some(i) = replaced {
            let old = inner.knocks.remove(i);
            let _ = old.verdict.send(Verdict::Replaced);
        }
        match came {
            Came::Asking => {
                let asking = inner.knocks.iter().filter(|k| k.came == Came::Asking);
                let from_here = asking.clone().filter(|k| bucket.is_some() && k.bucket == bucket).count();
                if from_here >= MAX_PER_ADDRESS || asking.count() >= MAX_WAITING {
                    return Err(self.refuse_knock(&inner, replaced.is_some()));
                }
            }
            Came::WithCode | Came::Held { .. } => {
                if !self.make_room_for_claim(&mut inner, bucket, counted) {
                    return Err(self.refuse_knock(&inner, replaced.is_some()));
                }
            }
        }
        inner.next_knock += 1;
        let id = format!("k{}", inner.next_knock);
        let (tx, rx) = oneshot::channel();
        let like_removed = inner.lookalikes.like_removed(&name, counted);
        let (has_code, wrong_code) = match came {
            Came::Asking => (false, false),
            Came::WithCode => (true, false),
            Came::Held { right } => (right == Some(true), right == Some(false)),
        };
        let entry = KnockEntry { id: id.clone(), name, device, has_code, wrong_code, like_removed };
        inner.knocks.push(Knock { entry, bucket, came, verdict: tx });
        self.send_knocks(&inner);
        // A knock that came without the right code proves nothing of its device: let in, it gets a
        // seat of its own, never the device's own id (which the device's owner may yet claim).
        let twin = self.twins(&claims.device).next();
        let claims = match twin {
            Some(twin) if !has_code => Claims { pid: twin, ..claims },
            _ => claims,
        };
        Ok(Waiting { room: self.clone(), id, claims, verdict: rx })
    }

    /// The refusal of a knock the list has no place for (its list changed when it replaced one).
    fn refuse_knock(&self, inner: &Inner, replaced: bool) -> JoinError {
        if replaced {
            self.send_knocks(inner);
        }
        JoinError::TooManyWaiting
    }

    /// Whether a code claim from `bucket` (`counted`: the same, unless this machine's own) may
    /// wait, making room for it when it can. An address holds at most what it could still seat
    /// (`limits.max_students_per_address`): past that, its own oldest claim goes. The list holds at
    /// most the class size (`limits.max_participants`): past that, the oldest claim of the address
    /// with the most waiting goes, if that address has more than this one (so a guesser with many
    /// addresses can fill the list, but never keep a classmate from a quieter address off it).
    /// What goes is closed 4029, to try again. Nothing here depends on whether a code was right,
    /// so a held claim's answer tells a guesser nothing.
    fn make_room_for_claim(
        &self,
        inner: &mut Inner,
        bucket: Option<IpAddr>,
        counted: Option<IpAddr>,
    ) -> bool {
        let claims = |k: &&Knock| k.came != Came::Asking;
        if let Some(b) = counted {
            let seated = inner.members.iter().filter(|m| m.seated_student() && m.addr == Some(b)).count();
            let waiting_here = inner.knocks.iter().filter(claims).filter(|k| k.bucket == bucket).count();
            if seated + waiting_here >= self.limits.max_students_per_address {
                return waiting_here > 0 && self.bump_oldest_of(inner, bucket);
            }
        }
        if inner.knocks.iter().filter(claims).count() < self.limits.max_participants {
            return true;
        }
        // Per address: how many wait, and the place of its oldest (knocks are kept oldest first).
        let mut by_address: std::collections::HashMap<Option<IpAddr>, (usize, usize)> = Default::default();
        for (i, k) in inner.knocks.iter().enumerate().filter(|(_, k)| k.came != Came::Asking) {
            by_address.entry(k.bucket).or_insert((0, i)).0 += 1;
        }
        let here = by_address.get(&bucket).map_or(0, |(n, _)| *n);
        // The most waiting; among equals, the one whose oldest claim came first.
        let Some((most, n)) = by_address
            .into_iter()
            .min_by_key(|(_, (n, first))| (std::cmp::Reverse(*n), *first))
            .map(|(a, (n, _))| (a, n))
        else {
            return false;
        };
        n > here && self.bump_oldest_of(inner, most)
    }

    /// Closes the oldest code claim waiting from `bucket` (4029, to try again).
    fn bump_oldest_of(&self, inner: &mut Inner, bucket: Option<IpAddr>) -> bool {
        let Some(i) = inner.knocks.iter().position(|k| k.came != Came::Asking && k.bucket == bucket) else {
            return false;
        };
        let bumped = inner.knocks.remove(i);
        let _ = bumped.verdict.send(Verdict::Bumped);
        true
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

    /// Lets in every knock that waits only for the waiting room, with the right code (it was turned
    /// off); claims held while someone guesses still wait for the teacher. The caller holds the lock.
    pub(super) fn admit_with_code(&self, inner: &mut Inner) {
        let (with_code, rest): (Vec<Knock>, Vec<Knock>) = std::mem::take(&mut inner.knocks)
            .into_iter()
            .partition(|k| k.came == Came::WithCode && k.entry.has_code);
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
    pub fn knocks_frame(&self) -> Bytes {
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
