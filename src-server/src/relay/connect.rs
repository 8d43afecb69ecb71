//! Opening Redis: `redis://` or `rediss://` (TLS, through the process's rustls provider), with a user
//! and password in the URL when the server needs them.

use crate::error::{Error, Result};

/// A client for this URL; nothing is connected yet. A URL that is not Redis's is refused with the
/// reason.
pub fn client(url: &str) -> Result<redis::Client> {
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        return Err(Error::Invalid(format!("redis must be a redis:// or rediss:// URL, not {url:?}")));
    }
    redis::Client::open(url).map_err(|e| Error::Invalid(format!("redis URL: {e}")))
}
