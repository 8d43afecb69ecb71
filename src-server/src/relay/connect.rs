//! Opening Redis: `redis://` or `rediss://` (TLS, through the process's rustls provider), with a user
//! and password in the URL when the server needs them, and a CA file for a server whose certificate
//! is not in the system's trust store (a school's own Redis, or a test's).

use std::path::Path;

use crate::config::redact_url as redact;
use crate::error::{Error, Result};

/// A client for this URL; nothing is connected yet. `ca` is a PEM file of the certificates a
/// `rediss://` server's is checked against, instead of the system's. A URL that is not Redis's is
/// refused with the reason.
pub fn client(url: &str, ca: Option<&Path>) -> Result<redis::Client> {
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        return Err(Error::Invalid(format!(
            "redis must be a redis:// or rediss:// URL, not {:?}",
            redact(url)
        )));
    }
    let invalid = |e: redis::RedisError| Error::Invalid(format!("redis URL {}: {e}", redact(url)));
    match ca {
        None => redis::Client::open(url).map_err(invalid),
        Some(path) => {
            let pem =
                std::fs::read(path).map_err(|e| Error::File { path: path.into(), message: e.to_string() })?;
            let certs = redis::TlsCertificates { client_tls: None, root_cert: Some(pem) };
            redis::Client::build_with_tls(url, certs).map_err(invalid)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_never_reaches_a_message() {
        let err = client("http://:s3cret@x", None).unwrap_err().to_string();
        assert!(!err.contains("s3cret"), "{err}");
    }
}
