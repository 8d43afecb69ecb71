//! Command errors: typed where the app reacts, and serialized as text the UI can show as it is.

use serde::{Serialize, Serializer};

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The lesson's connection refused the request.
    #[error(transparent)]
    Bridge(#[from] crate::bridge::BridgeError),
    /// A document could not be had.
    #[error(transparent)]
    Doc(#[from] crate::docs::DocError),
    /// A request to the classroom failed.
    #[error(transparent)]
    Fetch(#[from] lectern::client::fetch::FetchError),
    /// The classroom server could not start on this device.
    #[error("cannot start the classroom: {0}")]
    Serve(#[from] lectern::Error),
    /// A file on this device could not be read or written.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The request made no sense here (teaching when in student mode, say).
    #[error("{0}")]
    Invalid(String),
}

impl Serialize for CommandError {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}
