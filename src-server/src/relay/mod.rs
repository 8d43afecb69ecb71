//! Remote students through a cloud Redis (docs/RELAY.md): the teacher's server's bridge, the stateless
//! `lectern relay`, and the signatures that keep a relay honest.
//!
//! The teacher's side:
//! - [`bridge`] publishes each room (with `feed` and `publish`), and [`upstream`] reads back what
//!   remote students do into the room's roster;
//! - [`sign`] holds the teacher's Ed25519 key, and the checks clients make.
//!
//! The relay's side:
//! - [`serve`] is the `lectern relay` server; [`mirrors`] are its rooms, fed from Redis; [`upsink`]
//!   writes what their students do; [`docs`] serves the lessons' documents.
//!
//! Both: [`keys`] names a room's keys (hash-tagged, one Redis Cluster slot per room), [`connect`]
//! opens a Redis or a Redis Cluster, [`backoff`] times retries.

pub mod backoff;
pub mod bridge;
pub mod connect;
pub mod docs;
mod feed;
pub mod keys;
pub mod mirrors;
pub mod presence;
mod publish;
pub mod serve;
pub mod sign;
pub mod upsink;
pub mod upstream;
