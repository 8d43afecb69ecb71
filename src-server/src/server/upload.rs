//! Receiving a document upload: the body is written to a file as it arrives and hashed on the way,
//! so memory stays at one frame whatever the size, and the upload is refused the moment it passes
//! the limit (a body that declares too much is refused before this, by its `Content-Length`).

use std::path::{Path, PathBuf};

use axum::body::Body;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// An upload's file while it is received: removed when dropped (an upload refused, or cut short when
/// the client went or the server stopped), unless it is kept for the library.
pub(super) struct Incoming(Option<PathBuf>);

impl Incoming {
    /// Owns the file at `path` (not created yet).
    pub(super) fn new(path: PathBuf) -> Incoming {
        Incoming(Some(path))
    }

    /// Where the upload is written.
    pub(super) fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    /// Hands the file over (the library moves or removes it).
    pub(super) fn keep(mut self) -> PathBuf {
        self.0.take().unwrap_or_default()
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            std::fs::remove_file(path).ok();
        }
    }
}

/// Why an upload was not received.
#[derive(Debug)]
pub(super) enum Refused {
    /// It ran over the limit.
    TooLarge,
    /// The body broke off or could not be read.
    Body(String),
    /// The file could not be written (a full disk, say).
    Disk(String),
}

/// Writes `body` to a new file at `path`, at most `limit` bytes; the SHA-256 of what was written, in
/// lower-case hex. The caller removes the file on a refusal.
pub(super) async fn receive(body: Body, path: &Path, limit: usize) -> Result<String, Refused> {
    let disk = |e: std::io::Error| Refused::Disk(e.to_string());
    let mut file = tokio::fs::File::create(path).await.map_err(disk)?;
    let mut hasher = Sha256::new();
    let mut written = 0usize;
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Refused::Body(e.to_string()))?;
        let Ok(data) = frame.into_data() else { continue }; // trailers
        written = written.saturating_add(data.len());
        if written > limit {
            return Err(Refused::TooLarge);
        }
        hasher.update(&data);
        file.write_all(&data).await.map_err(disk)?;
    }
    file.flush().await.map_err(disk)?;
    file.sync_all().await.map_err(disk)?;
    Ok(crate::hex(&hasher.finalize()))
}
