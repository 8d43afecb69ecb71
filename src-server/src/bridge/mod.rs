//! The teacher's server's side of the relay (docs/RELAY.md): it publishes each room to Redis, signed,
//! and reads back what remote students do.
//!
//! - [`sink`] takes the rooms' reports and runs the bridge (one task under the server's tracker);
//! - `feed` and `publish` write a room's join details, signed snapshot and frames;
//! - [`docs`] puts a lesson's documents into Redis for the relays;
//! - [`upstream`] reads the relays' `up` stream into the room's roster, and [`presence`] keeps which
//!   remote students are there.
//!
//! It depends on [`crate::cloud`] for Redis and on the engine's rooms; nothing here knows the relay.

pub mod docs;
mod feed;
pub mod presence;
mod publish;
pub mod sink;
pub mod upstream;

pub use feed::BridgeParts;
pub use sink::{BridgeSink, Queue, channel, run};
