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
    /// It cannot be reached now (a relay without Redis, or a room not published yet): close 4503,
    /// and the client tries again.
    Unavailable,
    /// Its lesson has ended: close 4000.
    Ended,
}

/// A future that a [`Rooms`] answers with.
pub type RoomFuture<'a> = Pin<Box<dyn Future<Output = Result<Arc<Room>, NoRoom>> + Send + 'a>>;

/// Finds the room a `hello` asks for.
pub trait Rooms: Send + Sync {
    /// The room for this hello.
    fn room_for<'a>(&'a self, hello: &'a Hello) -> RoomFuture<'a>;
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
        }
    }
}
