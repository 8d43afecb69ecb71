//! Lectern keeps a class on the same page: the engine that fans a teacher's page turns, pointer and
//! highlights out to every student, the TLS server around it, the session log, discovery on the LAN,
//! and the Rust client that follows a lesson.
//!
//! Two hosts stand on one [`transport`]: the teacher's [`server::Server`] (with its Redis [`bridge`])
//! and the `lectern relay` ([`relay`]); both use [`cloud`] for Redis, and neither imports the other.
//! The `lectern` CLI and the Tauri app start them on a bound listener with a [`config::Config`] and
//! stop them through the handle, which owns every task it started. The library never prints; errors are typed ([`error`]). The wire
//! contract is the `lectern-protocol` crate, re-exported as [`protocol`]. docs/ARCHITECTURE.md draws
//! the modules and how a patch travels.

pub mod bridge;
pub mod client;
pub mod cloud;
pub mod config;
pub mod demo;
pub mod discovery;
pub mod docs;
pub mod doctor;
pub mod engine;
pub mod error;
pub mod files;
pub mod logfilter;
pub mod metrics;
pub mod net;
pub mod relay;
pub mod server;
pub mod store;
pub mod tcp;
pub mod tls;
pub mod transport;

pub use error::{Error, Result};
pub use lectern_protocol as protocol;

/// Lowercase hexadecimal (document ids, sha256 sums, token MACs).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The server's clock as Unix milliseconds (the `time` of frames and of the session log).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
