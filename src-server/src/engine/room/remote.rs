//! Students on relays, as the teacher's server sees them (docs/RELAY.md): their joins, leaves, hands
//! and acks arrive through Redis, not through a connection of this server, and they appear in the
//! roster and the session log as `remote`.
//!
//! A relay is not trusted with more than that: what it reports can only add or change remote
//! students (their ids are namespaced, `r-…`, so a relay cannot touch a student in the room), and
//! remote students count against the same limits as local ones.

use std::sync::atomic::Ordering;

use super::Room;
use super::participant::Participant;
use crate::engine::outbox::Outbox;
use crate::engine::report::Event;
use crate::now_ms;
use crate::protocol::Role;

/// The prefix of every remote student's participant id on the teacher's server.
pub const REMOTE_PREFIX: &str = "r-";

/// A remote student's id on the teacher's server, from its id on the relay.
pub fn remote_pid(relay_pid: &str) -> String {
    format!("{REMOTE_PREFIX}{relay_pid}")
}

impl Room {
    /// A student joined through a relay (one more of its connections, if it already had one). False
    /// when the room refuses it: ended, full, or the student was removed.
    pub fn remote_joined(&self, relay_pid: &str, name: &str, device: &str) -> bool {
        let pid = remote_pid(relay_pid);
        let mut inner = self.lock();
        let online = inner.members.iter().filter(|m| m.role == Role::Student).count()
            + inner.participants.values().filter(|p| p.remote && p.conn.is_some()).count();
        let known = inner.participants.get(&pid);
        let was_online = known.is_some_and(|p| p.conn.is_some());
        if inner.state.ended
            || inner.revoked.contains(&pid)
            || (known.is_none() && inner.participants.len() >= self.limits.max_participants.saturating_mul(4))
            || (!was_online && online >= self.limits.max_participants)
        {
            return false;
        }
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let name: String = name.trim().chars().filter(|c| !c.is_control()).take(64).collect();
        let name = if name.is_empty() { "?".to_string() } else { name };
        let p = inner.participants.entry(pid.clone()).or_insert_with(|| {
            Participant::new(pid.clone(), Role::Student, name.clone(), device.to_string())
        });
        p.name = name.clone();
        p.remote = true;
        p.conn = Some(conn);
        *inner.remote_conns.entry(pid.clone()).or_default() += 1;
        self.mark(&mut inner, &pid);
        self.flush_roster_locked(&mut inner);
        self.report(Event::Joined {
            conn,
            pid,
            role: Role::Student,
            name,
            device: device.to_string(),
            remote: true,
            token_hash: String::new(),
            addr: None,
            time: now_ms(),
        });
        true
    }

    /// One of a remote student's connections closed; it goes offline with its last.
    pub fn remote_left(&self, relay_pid: &str) {
        let pid = remote_pid(relay_pid);
        let mut inner = self.lock();
        let Some(count) = inner.remote_conns.get_mut(&pid) else { return };
        *count = count.saturating_sub(1);
        if *count > 0 {
            return;
        }
        inner.remote_conns.remove(&pid);
        let Some(conn) = inner.participants.get_mut(&pid).and_then(|p| p.conn.take()) else { return };
        self.report(Event::Left { conn, time: now_ms() });
        self.mark(&mut inner, &pid);
        self.flush_roster_locked(&mut inner);
    }

    /// Every remote student goes offline (the bridge lost Redis: nothing is known of them).
    pub fn remote_all_left(&self) {
        let pids: Vec<String> = {
            let mut inner = self.lock();
            let pids = inner.remote_conns.keys().cloned().collect();
            for count in inner.remote_conns.values_mut() {
                *count = 1;
            }
            pids
        };
        for pid in pids {
            if let Some(relay_pid) = pid.strip_prefix(REMOTE_PREFIX) {
                self.remote_left(relay_pid);
            }
        }
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
