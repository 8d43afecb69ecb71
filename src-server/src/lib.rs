//! Lectern keeps a class on the same page: a TLS WebSocket server that fans out a teacher's page turns,
//! pointer and highlights to every student, and the Rust client that follows it.
//!
//! The server is started with [`server::start`] on a bound listener; the wire contract is PROTOCOL.md,
//! typed in [`protocol`] and [`state`]; the student side is [`client`].

pub mod client;
pub mod config;
pub mod connection;
pub mod demo;
pub mod docs;
pub mod doctor;
pub mod error;
pub mod http;
pub mod limits;
pub mod mdns;
pub mod metrics;
pub mod net;
pub mod outbox;
pub mod protocol;
pub mod room;
pub mod serve;
pub mod server;
pub mod setup;
pub mod state;
pub mod store;
pub mod tls;
pub mod token;
pub mod ui;

pub use error::{Error, Result};
