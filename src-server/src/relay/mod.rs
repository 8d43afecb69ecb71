//! Remote students through a cloud Redis (docs/RELAY.md): the teacher's server's bridge, the stateless
//! `lectern relay`, and the signatures that keep a relay honest.
//!
//! - [`sign`]: the teacher's Ed25519 key and the checks clients make.
//! - [`keys`]: the Redis keys of a room, hash-tagged so a room lives on one Redis Cluster slot.
//! - [`bridge`]: the teacher's side, publishing the room and reading back what remote students do.
//! - [`mirror`]: the relay's side, a room fed from Redis that its students join like any other.

pub mod backoff;
pub mod bridge;
pub mod connect;
pub mod docs;
pub mod keys;
pub mod mirrors;
pub mod serve;
pub mod sign;
pub mod upsink;
pub mod upstream;
