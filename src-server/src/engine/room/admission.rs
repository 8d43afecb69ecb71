//! Who comes in without waiting (docs/PROTOCOL-ADDITIONS.md, H): the teacher's waiting room, where a
//! student with the right join code waits to be let in as a knock does, and newcomers that look like
//! a student the teacher removed, flagged on the teacher's screen.
//!
//! A removed student cannot come back on the same device (its ids are revoked), but a device id is
//! whatever a browser makes up: with a new one, the student is a stranger again. What is left to go
//! on is the name it gives and the address it comes from. A name is easy to change, and a school's
//! NAT puts the whole class behind one address, so neither refuses anyone: a match only flags the
//! newcomer for the teacher, and an address counts only when the removed student had it to itself.

use std::net::IpAddr;

use super::{Inner, Room, encode};
use crate::engine::names::key;
use crate::engine::outbox::{Item, Outbox};
use crate::engine::report::Event;
use crate::protocol::{Role, ServerMsg};

/// How many removed students a room remembers for flagging newcomers.
const REMEMBERED: usize = 256;

/// What a room remembers of a student the teacher removed.
#[derive(Debug)]
pub(super) struct Removed {
    /// The name, reduced for comparing ([`key`]).
    name: String,
    /// Its address, when no other student of the room was online from it.
    addr: Option<IpAddr>,
}

/// The students the teacher removed, for flagging newcomers that look like them.
#[derive(Debug, Default)]
pub(super) struct Lookalikes {
    removed: std::collections::VecDeque<Removed>,
}

impl Lookalikes {
    /// Remembers a removed student: its name, and its address if it had it to itself.
    pub(super) fn remember(&mut self, name: &str, addr: Option<IpAddr>) {
        if self.removed.len() >= REMEMBERED {
            self.removed.pop_front();
        }
        self.removed.push_back(Removed { name: key(name), addr });
    }

    /// Whether a newcomer with this name, from this address (as limits count it), looks like a
    /// student the teacher removed.
    pub(super) fn like_removed(&self, name: &str, addr: Option<IpAddr>) -> bool {
        if self.removed.is_empty() {
            return false;
        }
        let name = key(name);
        self.removed
            .iter()
            .any(|r| (!name.is_empty() && r.name == name) || (addr.is_some() && r.addr == addr))
    }
}

impl Room {
    /// Whether students with the join code wait for the teacher to let them in.
    pub fn waiting_room(&self) -> bool {
        self.lock().lesson.waiting_room
    }

    /// The teacher's `waiting_room`: turns it on or off, keeps it with the lesson (so a restart keeps
    /// it, and relays hear of it), tells every teacher, and answers `ok`. Students already in stay;
    /// turning it off lets in those who wait with the right code.
    pub fn set_waiting_room(&self, id: Option<u32>, on: bool, reply: &Outbox) {
        let mut inner = self.lock();
        if !on {
            self.admit_with_code(&mut inner);
        }
        if inner.lesson.waiting_room != on {
            inner.lesson.waiting_room = on;
            self.report(Event::Lesson { lesson: inner.lesson.clone(), state: None });
            let frame = encode(&ServerMsg::WaitingRoom { on });
            for m in inner.members.iter().filter(|m| m.role == Role::Teacher) {
                m.outbox.push_or_close(Item::Msg(frame.clone()));
            }
        }
        drop(inner);
        reply.push_or_close(Item::Msg(encode(&ServerMsg::Ok { id, seq: None, durable: None })));
    }

    /// A relay's copy of the room takes the teacher's server's join details as they change: a new
    /// code, the waiting room turned on or off.
    pub fn mirror_details(&self, code: &str, waiting_room: bool) {
        let mut inner = self.lock();
        if inner.lesson.code != code {
            if inner.lesson.code.len() == code.len() {
                inner.guard.new_code();
            } else {
                inner.guard = super::guard::Guard::new(code.len());
            }
            inner.lesson.code = code.to_string();
        }
        inner.lesson.waiting_room = waiting_room;
    }

    /// Remembers a student the teacher is removing; the caller holds the lock.
    pub(super) fn remember_removed(&self, inner: &mut Inner, pid: &str) {
        let Some(p) = inner.participants.get(pid) else { return };
        let (name, addr) = (p.name.clone(), p.addr);
        let shared = |a: IpAddr| {
            inner.members.iter().any(|m| m.seated_student() && m.addr == Some(a) && Some(m.conn) != p.conn)
        };
        let addr = addr.filter(|a| !shared(*a));
        inner.lookalikes.remember(&name, addr);
    }
}
