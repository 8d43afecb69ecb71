//! The library's error type for starting and running a server, reading the session log, and discovery.
//! Kept apart from the errors callers react to differently: protocol refusals close a socket
//! ([`JoinError`](crate::engine::room::join::JoinError)), validation errors answer `bad_request`,
//! connecting errors tell a pin mismatch from an unreachable server
//! ([`ConnectError`](crate::client::ConnectError)), and configuration errors name the key
//! ([`ConfigError`](crate::config::ConfigError)).

use std::path::PathBuf;

/// A failure to set up or run a server, read the log, or find a classroom.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or socket operation failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A file under the data directory could not be used.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// The TLS identity or configuration is unusable.
    #[error("TLS: {0}")]
    Tls(String),
    /// A document could not be read as a PDF.
    #[error("not a readable PDF: {0}")]
    Pdf(String),
    /// A setting is invalid.
    #[error("configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    /// A value given to the server is invalid (a join code of the wrong form, say).
    #[error("{0}")]
    Invalid(String),
    /// The session log could not be read or written.
    #[error("session log: {0}")]
    Log(String),
    /// mDNS could not start or answer.
    #[error("mDNS: {0}")]
    Mdns(String),
    /// Discovery found no classroom, or not the one asked for; the message says what was found.
    #[error("{0}")]
    NotFound(String),
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
