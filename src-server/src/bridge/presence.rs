//! Which relays are alive, as the teacher's server reads them from a room's `up` stream. Every relay
//! writes an `alive` entry (with `every`: its interval, ms; [`ALIVE`] by default) in every room it
//! has students in; a relay not heard from for [`MISSED`] intervals crashed or lost Redis, and its students go offline in the roster (those that
//! resumed on another relay stay online). A relay that lost entries while Redis was away says who it
//! has again: `reset`, then `here` for each student, then `synced`; who it no longer has goes offline.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use crate::engine::room::Room;

/// How often a relay says it is alive in each room it has students in, by default.
pub const ALIVE: Duration = Duration::from_secs(10);

/// How many of its intervals a relay may be silent before its students are taken as gone.
pub const MISSED: f64 = 3.5;

/// The shortest and longest a relay may be silent before its students are taken as gone, whatever
/// interval it says it has.
const SILENCE: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(120));

/// The most relays followed in one room (entries from more are not trusted to add anyone).
const MAX_RELAYS: usize = 256;

/// The longest relay id taken.
const MAX_ID: usize = 32;

/// The relays of one room, as its reader has heard them.
#[derive(Default)]
pub struct Presence {
    /// When each relay was last heard from, and how long it may be silent.
    seen: HashMap<String, (Instant, Duration)>,
    /// Relays saying who they have: the students they had and have not named yet.
    unconfirmed: HashMap<String, HashSet<String>>,
}

impl Presence {
    /// Notes an entry from relay `relay` (`every`: the interval an `alive` entry gives, ms); false
    /// when it is one relay too many to follow (or its id is not one), and its entry must not add
    /// anyone.
    pub fn heard(&mut self, relay: &str, every: Option<u64>) -> bool {
        if relay.len() > MAX_ID || (!self.seen.contains_key(relay) && self.seen.len() >= MAX_RELAYS) {
            return false;
        }
        let silence = || ALIVE.mul_f64(MISSED);
        let entry = self.seen.entry(relay.to_string()).or_insert_with(|| (Instant::now(), silence()));
        entry.0 = Instant::now();
        if let Some(ms) = every {
            entry.1 = Duration::from_millis(ms).mul_f64(MISSED).clamp(SILENCE.0, SILENCE.1);
        }
        true
    }

    /// Relay `relay` starts saying who it has.
    pub fn reset(&mut self, room: &Room, relay: &str) {
        self.unconfirmed.insert(relay.to_string(), room.remote_on(relay).into_iter().collect());
    }

    /// Relay `relay` has student `pid` (while it says who it has, or any time).
    pub fn here(&mut self, relay: &str, pid: &str) {
        if let Some(pids) = self.unconfirmed.get_mut(relay) {
            pids.remove(pid);
        }
    }

    /// Relay `relay` has said who it has: everyone else is gone from it.
    pub fn synced(&mut self, room: &Room, relay: &str) {
        for pid in self.unconfirmed.remove(relay).unwrap_or_default() {
            room.remote_gone_from(relay, &pid);
        }
    }

    /// Takes the students of every relay silent for too long offline.
    pub fn sweep(&mut self, room: &Room) {
        let now = Instant::now();
        self.seen.retain(|relay, (last, silence)| {
            let alive = now.duration_since(*last) < *silence;
            if !alive {
                tracing::warn!(room = %room.info().id, relay, "a relay went silent; its students are offline");
                room.remote_relay_gone(relay);
            }
            alive
        });
        self.unconfirmed.retain(|relay, _| self.seen.contains_key(relay));
    }
}
