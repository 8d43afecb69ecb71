//! What a lesson connection needs from the process that accepted it, whichever shell that is: the
//! teacher's server (its lesson and the rooms its tokens name) or a relay (mirrors of rooms on
//! teachers' servers, fetched from Redis on first asking). The connection code sees only this.

use std::pin::Pin;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Limits, Timing};
use crate::engine::rate::FailedHellos;
use crate::engine::room::Room;
use crate::metrics::Metrics;
use crate::protocol::Hello;

/// Why no room was found for a hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRoom {
    /// There is no such room: close 4001, as for a wrong code.
    Unknown,
    /// It cannot be reached now (a relay without Redis): close 4503, and the client tries again.
    Unavailable,
    /// Redis said just now that nobody has published it (yet: a teacher's server may be about to):
    /// close 4503 as well, but counted against the address, so a stranger cannot make a relay ask
    /// Redis for rooms at will. (Asked again within a second, the relay answers `Unavailable`
    /// without asking Redis, and counts nothing.)
    NotPublished,
    /// Its lesson has ended: close 4000.
    Ended,
    /// This address asked for too many rooms nobody has published: close 4029.
    TooMany,
}

/// A future that a [`Rooms`] answers with.
pub type RoomFuture<'a> = Pin<Box<dyn Future<Output = Result<Arc<Room>, NoRoom>> + Send + 'a>>;

/// Finds the room a `hello` asks for.
pub trait Rooms: Send + Sync {
    /// The room for this hello.
    fn room_for<'a>(&'a self, hello: &'a Hello) -> RoomFuture<'a>;

    /// The room for this hello if it is served now, found without asking anyone (a relay's copy
    /// already made): no per-address limit on finding rooms keeps a student out of one.
    fn served(&self, _hello: &Hello) -> Option<Arc<Room>> {
        None
    }
}

/// What the room's other relays say of a student whose second path landed here without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// Online on another relay, its first connection from `addr` (`None`: not counted); `first`
    /// names that connection, and changes when a resume replaces it.
    Elsewhere {
        /// The first connection's address.
        addr: Option<std::net::IpAddr>,
        /// Which relay and connection it is.
        first: String,
    },
    /// Online on no relay (or on this one's word only, which this relay knows better).
    Gone,
    /// Redis could not be asked.
    Unknown,
}

/// Where a room's remote students are online across its relays (through Redis): a second path
/// (PROTOCOL-ADDITIONS N) that a load balancer sends to another relay than its student's is taken
/// there, and closed once the student has left.
pub trait Whereabouts: Send + Sync {
    /// Where student `pid` of room `room` is online.
    fn find<'a>(&'a self, room: &'a str, pid: &'a str) -> GuessFuture<'a, Presence>;
    /// How often a second path taken for a student elsewhere checks that it still is.
    fn every(&self) -> std::time::Duration;
}

/// Hellos for a room nobody has published that one address may make in a minute (a class behind one
/// NAT, each retrying every few seconds while its teacher's server reconnects, fits).
pub const UNPUBLISHED_PER_MINUTE: u32 = 600;

/// A future a [`SharedGuesses`] or [`Whereabouts`] answers with.
pub type GuessFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A room's budget of wrong join codes shared by every process that admits to it (the teacher's
/// server and its relays, through Redis), so that however many relays there are, and however often
/// one rebuilds its copy of the room, the room answers no more wrong codes than section G allows.
pub trait SharedGuesses: Send + Sync {
    /// Takes one check of a code from room `room`'s budget (a code of `digits` digits): `Some(true)`
    /// when taken, `Some(false)` when the budget is spent, `None` when it could not be asked (the
    /// room's own budget still holds then).
    fn take<'a>(&'a self, room: &'a str, digits: usize) -> GuessFuture<'a, Option<bool>>;
    /// Gives back a check taken for a code that was right (or never checked), without waiting.
    fn give_back(&self, room: &str, digits: usize);
}

/// What ends a host's tasks, and what owns them: made before the host, so that what it is built from
/// (a relay's mirrors, say) runs on the same ones.
#[derive(Clone, Default)]
pub struct Lifetime {
    /// Cancelled when the host stops.
    pub shutdown: CancellationToken,
    /// Every task of the host: `wait_stopped` waits for all of them.
    pub tracker: TaskTracker,
}

/// The limits, counters and lifetime every connection of one process shares, and its rooms.
pub struct Host {
    /// Limits.
    pub limits: Limits,
    /// Timing.
    pub timing: Timing,
    /// Metrics.
    pub metrics: Metrics,
    /// Failed hellos per address.
    pub failed_hellos: FailedHellos,
    /// Knocks per address: asking to join, however often it is withdrawn, is bounded too.
    pub knocks: FailedHellos,
    /// Hellos per address for rooms nobody has published (a relay's): a few a second are a class
    /// waiting for its teacher's server, thousands are somebody making the relay ask Redis.
    pub unpublished: FailedHellos,
    /// Code claims held per address while someone guesses (right code or wrong alike): a class
    /// behind one NAT fits, a flood of claims that would churn the teacher's list does not.
    pub held_claims: FailedHellos,
    /// Cancelled when the process shuts down.
    pub shutdown: CancellationToken,
    /// Every task of the process.
    pub tracker: TaskTracker,
    /// Where a hello's room is found.
    pub rooms: Arc<dyn Rooms>,
    /// The bytes of request bodies being read now, in all and per address.
    pub bodies: crate::transport::body::Budget,
    /// The rooms' shared budgets of wrong codes, once there is a Redis to keep them (set once).
    pub guesses: std::sync::OnceLock<Arc<dyn SharedGuesses>>,
    /// A relay's: where its rooms' students are online on other relays (set once).
    pub whereabouts: std::sync::OnceLock<Arc<dyn Whereabouts>>,
}

impl Host {
    /// A host with these limits and timings, fresh counters, these rooms, and this lifetime.
    pub fn new(
        limits: Limits,
        timing: Timing,
        metrics: Metrics,
        rooms: Arc<dyn Rooms>,
        lifetime: Lifetime,
    ) -> Host {
        Host {
            failed_hellos: FailedHellos::new(limits.failed_hellos_per_minute),
            knocks: FailedHellos::new(crate::engine::room::knock::KNOCKS_PER_MINUTE),
            unpublished: FailedHellos::new(UNPUBLISHED_PER_MINUTE),
            held_claims: FailedHellos::new(
                u32::try_from(limits.max_students_per_address.clamp(10, 64)).unwrap_or(64),
            ),
            limits,
            timing,
            metrics,
            shutdown: lifetime.shutdown,
            tracker: lifetime.tracker,
            rooms,
            bodies: crate::transport::body::Budget::default(),
            guesses: std::sync::OnceLock::new(),
            whereabouts: std::sync::OnceLock::new(),
        }
    }
}

impl Host {
    /// Forgets the addresses the per-address counters hold that have not counted lately, so their
    /// memory stays bounded: run every few seconds by each shell's upkeep.
    pub fn prune(&self) {
        self.failed_hellos.prune();
        self.knocks.prune();
        self.held_claims.prune();
        self.unpublished.prune();
    }

    /// How many addresses the per-address counters hold now (what [`Host::prune`] bounds).
    pub fn tracked_addresses(&self) -> usize {
        [&self.failed_hellos, &self.knocks, &self.held_claims, &self.unpublished]
            .iter()
            .map(|c| c.len())
            .sum()
    }
}
