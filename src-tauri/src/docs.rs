//! Documents for the view, fetched by Rust over the pinned TLS and kept on disk by SHA-256, so a
//! 604-page Mushaf crosses the classroom's Wi-Fi once per device, not once per lesson. A cached file
//! is checked against its hash before it is used; a download that does not match is refused.

use std::path::PathBuf;

use lectern::client::fetch::{FetchError, get_range, request};
use lectern_protocol::Doc;
use sha2::{Digest, Sha256};

/// Why a document could not be had.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    /// The server could not be reached, or refused (its status and message).
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The server answered with an error status.
    #[error("the classroom answered {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The body, as text.
        message: String,
    },
    /// The bytes are not the document the lesson names.
    #[error("the document's bytes do not match its SHA-256; not shown")]
    Mismatch,
    /// The cache folder could not be used (the document is still shown, just not kept).
    #[error("the document cache: {0}")]
    Cache(#[from] std::io::Error),
}

/// The on-disk cache, one file per SHA-256.
#[derive(Debug, Clone)]
pub struct DocCache {
    dir: PathBuf,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn doc_url(base: &str, doc: &Doc) -> String {
    format!("{base}/v1/docs/{}", url::form_urlencoded::byte_serialize(doc.id.as_bytes()).collect::<String>())
}

fn valid_sha(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl DocCache {
    /// A cache in `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> DocCache {
        DocCache { dir: dir.into() }
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{}.pdf", sha256.to_ascii_lowercase()))
    }

    /// The cached bytes of a document, if they are there and whole.
    pub fn cached(&self, doc: &Doc) -> Option<Vec<u8>> {
        if !valid_sha(&doc.sha256) {
            return None;
        }
        let bytes = std::fs::read(self.path(&doc.sha256)).ok()?;
        (hex(&Sha256::digest(&bytes)) == doc.sha256.to_ascii_lowercase()).then_some(bytes)
    }

    /// The document's bytes: from the cache, else fetched from `base` (`https://HOST:PORT`) with the
    /// pin and the participant's bearer token, checked and kept.
    pub async fn get(
        &self,
        base: &str,
        fingerprint: &str,
        bearer: &str,
        doc: &Doc,
    ) -> Result<Vec<u8>, DocError> {
        if let Some(bytes) = self.cached(doc) {
            return Ok(bytes);
        }
        let answer = request("GET", &doc_url(base, doc), fingerprint, Some(bearer), None).await?;
        if answer.status != 200 {
            let message = String::from_utf8_lossy(&answer.body).chars().take(300).collect();
            return Err(DocError::Status { status: answer.status, message });
        }
        if !valid_sha(&doc.sha256) || hex(&Sha256::digest(&answer.body)) != doc.sha256.to_ascii_lowercase() {
            return Err(DocError::Mismatch);
        }
        if let Err(e) = self.keep(&doc.sha256, &answer.body) {
            tracing::warn!(error = %e, "could not cache a document");
        }
        Ok(answer.body.to_vec())
    }

    /// Bytes `[begin, end)` of a document and its whole length, for a view that loads a document in
    /// chunks (the first page after only the bytes it needs): from the cache when it is there, else one
    /// pinned range request with the participant's bearer.
    pub async fn range(
        &self,
        base: &str,
        fingerprint: &str,
        bearer: &str,
        doc: &Doc,
        begin: u64,
        end: u64,
    ) -> Result<(Vec<u8>, u64), DocError> {
        if let Some(bytes) = self.cached(doc) {
            let total = bytes.len() as u64;
            let (b, e) = (begin.min(total) as usize, end.min(total) as usize);
            return Ok((bytes[b..e.max(b)].to_vec(), total));
        }
        let answer = get_range(&doc_url(base, doc), fingerprint, Some(bearer), begin, end).await?;
        match (answer.status, answer.total) {
            (206, Some(total)) if answer.body.len() as u64 <= end.saturating_sub(begin) => {
                Ok((answer.body.to_vec(), total))
            }
            (206, _) => {
                Err(DocError::Status { status: 206, message: "a range answer of the wrong size".into() })
            }
            (200, _) => Ok((answer.body.to_vec(), answer.body.len() as u64)),
            (status, _) => {
                let message = String::from_utf8_lossy(&answer.body).chars().take(300).collect();
                Err(DocError::Status { status, message })
            }
        }
    }

    /// Keeps a document the view put together from ranges, once its bytes match its SHA-256.
    pub fn keep_checked(&self, sha256: &str, bytes: &[u8]) -> Result<(), DocError> {
        if !valid_sha(sha256) || hex(&Sha256::digest(bytes)) != sha256.to_ascii_lowercase() {
            return Err(DocError::Mismatch);
        }
        Ok(self.keep(sha256, bytes)?)
    }

    fn keep(&self, sha256: &str, bytes: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.path(sha256);
        let tmp = path.with_extension("part");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &path)
    }
}
