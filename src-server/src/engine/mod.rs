//! The engine: rooms and their fan-out, with nothing about sockets, files or processes. The server,
//! the app and the relay are shells around it.
//!
//! A [`room::Room`] holds a lesson's state and participants; the [`registry::Registry`] finds rooms by
//! id; each connection has an [`outbox::Outbox`] the room pushes encoded frames into; the room tells
//! the session log (and later the Redis bridge) what happens through [`report`]; [`token`] signs resume
//! tokens and [`rate`] limits frames and failed joins.

pub mod lesson;
pub mod names;
pub mod outbox;
pub mod rate;
pub mod registry;
pub mod report;
pub mod room;
pub mod token;
