//! Students on relays, as the teacher's server sees them (docs/RELAY.md): their joins, leaves, hands
//! and acks arrive through Redis, not through a connection of this server, and they appear in the
//! roster and the session log as `remote`.
//!
//! A relay is not trusted with more than that: what it reports can only add or change remote
//! students (their ids are namespaced, `r-…`, so a relay cannot touch a student in the room), and
//! remote students count against the same limits as local ones.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use super::participant::Participant;
use super::{Inner, Room};
use crate::engine::outbox::Outbox;
use crate::engine::report::Event;
use crate::now_ms;
use crate::protocol::Role;

/// The most connections one remote student is counted with (relays, devices).
const MAX_REMOTE_CONNS: u32 = 8;

/// The most relays one remote student is counted on at once.
const MAX_RELAYS: usize = 4;

/// The prefix of every remote student's participant id on the teacher's server.
pub const REMOTE_PREFIX: &str = "r-";

/// A remote student's id on the teacher's server, from its id on the relay.
pub fn remote_pid(relay_pid: &str) -> String {
    format!("{REMOTE_PREFIX}{relay_pid}")
}

impl Room {
    /// A student joined through relay `relay` (one more of its connections, if it already had one).
    /// False when the room refuses it: ended, full, or the student was removed.
    pub fn remote_joined(&self, relay: &str, relay_pid: &str, name: &str, device: &str) -> bool {
        self.remote_enter(relay, relay_pid, name, device, None)
    }

    /// Relay `relay` says the student has `n` connections there (after a new epoch, or after it lost
    /// Redis for a while): that count is taken as the truth for that relay. False when the room
    /// refuses the student.
    pub fn remote_here(&self, relay: &str, relay_pid: &str, name: &str, device: &str, n: u32) -> bool {
        self.remote_enter(relay, relay_pid, name, device, Some(n.max(1)))
    }

    /// The remote students counted on relay `relay` (their ids on the relays).
    pub fn remote_on(&self, relay: &str) -> Vec<String> {
        let inner = self.lock();
        let on = inner.remote_conns.iter().filter(|(_, relays)| relays.contains_key(relay));
        on.filter_map(|(pid, _)| pid.strip_prefix(REMOTE_PREFIX).map(str::to_string)).collect()
    }

    /// Relay `relay` no longer has the student at all (it said who it has, and the student was not
    /// among them); offline unless another relay has it.
    pub fn remote_gone_from(&self, relay: &str, relay_pid: &str) {
        let pid = remote_pid(relay_pid);
        let mut inner = self.lock();
        let Some(relays) = inner.remote_conns.get_mut(&pid) else { return };
        relays.remove(relay);
        if relays.is_empty() {
            self.remote_offline(&mut inner, &pid);
        }
    }

    fn remote_enter(
        &self,
        relay: &str,
        relay_pid: &str,
        name: &str,
        device: &str,
        here: Option<u32>,
    ) -> bool {
        let pid = remote_pid(relay_pid);
        let mut inner = self.lock();
        // Already online: one more of its connections (another relay, say), up to a few; nothing to
        // show or log, so a relay repeating a join costs the room nothing.
        if let Some(relays) = inner.remote_conns.get_mut(&pid) {
            let count = relays.get(relay).copied().unwrap_or(0);
            let others = relays.values().sum::<u32>() - count;
            if count > 0 || relays.len() < MAX_RELAYS {
                let wanted = here.unwrap_or(count + 1);
                relays.insert(relay.to_string(), wanted.min(MAX_REMOTE_CONNS.saturating_sub(others)).max(1));
            }
            return true;
        }
        let online = inner.members.iter().filter(|m| m.seated_student()).count() + inner.remote_conns.len();
        // Remote students have a table of their own size, so that entries from relays can never
        // crowd out the students in the room (whose table counts only them, see `seat`).
        let remote_known = inner.participants.values().filter(|p| p.remote).count();
        let known = inner.participants.contains_key(&pid);
        if inner.state.ended
            || inner.revoked.contains(&pid)
            || (!known && remote_known >= self.limits.max_participants.saturating_mul(4))
            || online >= self.limits.max_participants
        {
            return false;
        }
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        // The same cleaning as in the room; a name it refuses is shown as "?" rather than refusing a
        // student the relay let in.
        let name = crate::engine::names::student(name).unwrap_or_else(|_| "?".to_string());
        // A relay's device id is namespaced too: removing a remote student must not touch a device
        // in the room that happens to share its id.
        let device = format!("{REMOTE_PREFIX}{}", device.chars().take(64).collect::<String>());
        let p = inner
            .participants
            .entry(pid.clone())
            .or_insert_with(|| Participant::new(pid.clone(), Role::Student, name.clone(), device.clone()));
        p.name = name.clone();
        p.remote = true;
        p.conn = Some(conn);
        let count = here.unwrap_or(1).min(MAX_REMOTE_CONNS);
        inner.remote_conns.insert(pid.clone(), HashMap::from([(relay.to_string(), count)]));
        self.mark(&mut inner, &pid);
        self.flush_roster_locked(&mut inner);
        self.report(Event::Joined {
            conn,
            pid,
            role: Role::Student,
            name,
            device,
            remote: true,
            token_hash: String::new(),
            addr: None,
            time: now_ms(),
        });
        true
    }

    /// One of a remote student's connections on relay `relay` closed; it goes offline with its last.
    pub fn remote_left(&self, relay: &str, relay_pid: &str) {
        let pid = remote_pid(relay_pid);
        let mut inner = self.lock();
        let Some(relays) = inner.remote_conns.get_mut(&pid) else { return };
        if let Some(count) = relays.get_mut(relay) {
            *count = count.saturating_sub(1);
        }
        relays.retain(|_, c| *c > 0);
        if relays.is_empty() {
            self.remote_offline(&mut inner, &pid);
        }
    }

    /// Relay `relay` is gone (it crashed, or lost Redis): its students' connections with it.
    /// Those that resumed on another relay stay online.
    pub fn remote_relay_gone(&self, relay: &str) {
        let mut inner = self.lock();
        let mut gone = Vec::new();
        for (pid, relays) in inner.remote_conns.iter_mut() {
            relays.remove(relay);
            if relays.is_empty() {
                gone.push(pid.clone());
            }
        }
        for pid in gone {
            self.remote_offline(&mut inner, &pid);
        }
    }

    /// Every remote student goes offline (the bridge lost Redis: nothing is known of them).
    pub fn remote_all_left(&self) {
        let mut inner = self.lock();
        let pids: Vec<String> = inner.remote_conns.keys().cloned().collect();
        for pid in pids {
            self.remote_offline(&mut inner, &pid);
        }
    }

    fn remote_offline(&self, inner: &mut Inner, pid: &str) {
        inner.remote_conns.remove(pid);
        let Some(conn) = inner.participants.get_mut(pid).and_then(|p| p.conn.take()) else { return };
        self.report(Event::Left { conn, time: now_ms() });
        self.mark(inner, pid);
        self.flush_roster_locked(inner);
    }

    /// A remote student raised or lowered a hand.
    pub fn remote_hand(&self, relay_pid: &str, up: bool) {
        let pid = remote_pid(relay_pid);
        if self.lock().remote_conns.contains_key(&pid) {
            self.hand(&pid, up);
        }
    }

    /// A remote student's screen shows `seq` (an ack ahead of the lesson is held to it).
    pub fn remote_ack(&self, relay_pid: &str, seq: u64) {
        let pid = remote_pid(relay_pid);
        let current = {
            let inner = self.lock();
            if !inner.remote_conns.contains_key(&pid) {
                return;
            }
            inner.seq
        };
        self.ack(&pid, seq.min(current), &Outbox::new(1));
    }
}
