//! The library's error types: one enum for setup and I/O failures, kept apart from protocol errors (which
//! close a socket) and validation errors (which answer `bad_request` and keep it).

use std::path::PathBuf;

/// A failure to set up or run a server, client or command.
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
    /// A configuration value is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// A client could not reach or talk to a server.
    #[error("{0}")]
    Client(String),
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
