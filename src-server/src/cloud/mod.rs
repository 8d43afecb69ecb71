//! The Redis plumbing both sides of a relayed lesson share (docs/RELAY.md): [`keys`] names a room's
//! keys (hash-tagged, one Redis Cluster slot per room), [`connect`] opens a Redis or a Redis Cluster,
//! [`backoff`] times retries, and [`guesses`] keeps each room's budget of wrong codes for all of them. The teacher's server ([`crate::bridge`]) and the relay
//! ([`crate::relay`]) each build on it, and never on each other.

pub mod backoff;
pub mod connect;
pub mod guesses;
pub mod keys;
