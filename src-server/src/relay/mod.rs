//! `lectern relay`: a stateless server for remote students (docs/RELAY.md), standing on the same
//! transport as the teacher's server ([`crate::transport`]).
//!
//! - [`serve`] is the server; [`mirrors`] are its rooms, each a copy of a room on a teacher's
//!   server fed from Redis ([`follow`]) and checked against the teacher's signatures;
//! - [`upsink`] writes what their students do back to Redis, and [`entries`] remembers the ids of
//!   its own entries (a refusal must answer one);
//! - [`docs`] serves the lessons' documents to remote students;
//! - [`whereabouts`] finds a second path's student on the room's other relays.
//!
//! It depends on [`crate::cloud`] for Redis and never on the teacher's server.

pub mod acme;
pub mod blocks;
pub mod docs;
pub mod entries;
pub mod follow;
pub mod mirrors;
pub mod serve;
pub mod upsink;
pub mod whereabouts;
