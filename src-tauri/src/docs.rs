//! Documents for the view, fetched by Rust over the pinned TLS and kept on disk by SHA-256, so a
//! 604-page Mushaf crosses the classroom's Wi-Fi once per device, not once per lesson. A cached file
//! is checked against its hash before it is used; a download that does not match is refused.
//!
//! Behind a relay (which students do not trust), a document comes in pieces checked here against the
//! manifest the teacher's server signed within the state (PROTOCOL-ADDITIONS.md, section J): the view
//! asks for such ranges with [`DocCache::range_checked`], which widens each to whole pieces and checks
//! each piece's SHA-256 before the view gets a byte, and never answers unchecked.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use lectern::client::fetch::{Answer, FetchError, get_range, get_range_within, get_within, request};
use lectern_protocol::Doc;
use lectern_protocol::manifest::{ManifestError, Pieces};
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
    /// A manifest that is not the one the teacher signed, or a piece that differs from it.
    #[error("{0}; not shown")]
    Unchecked(#[from] ManifestError),
    /// The lesson names no manifest for the document, so its pieces cannot be checked (it is then
    /// taken whole and checked against its SHA-256).
    #[error("the document has no manifest to check its pieces against")]
    NoManifest,
}

/// The on-disk cache, one file per SHA-256, and the checked manifests of the documents this device
/// takes in pieces.
#[derive(Debug, Clone)]
pub struct DocCache {
    dir: PathBuf,
    /// Checked manifests by the signed hash that names them (a few: one lesson shows one document
    /// at a time).
    pieces: Arc<Mutex<HashMap<String, Arc<Pieces>>>>,
}

/// How many documents' manifests are kept in memory (a 600-page scanned book's is about 30 kB; the
/// largest, a 200 MiB document cut into 16 KiB pieces, about 1 MB).
const MANIFESTS_KEPT: usize = 8;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn doc_url(base: &str, doc: &Doc) -> String {
    format!("{base}/v1/docs/{}", url::form_urlencoded::byte_serialize(doc.id.as_bytes()).collect::<String>())
}

/// The server's refusal, with the start of what it said.
fn refused(answer: &Answer) -> DocError {
    let message = String::from_utf8_lossy(&answer.body).chars().take(300).collect();
    DocError::Status { status: answer.status, message }
}

fn valid_sha(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl DocCache {
    /// A cache in `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> DocCache {
        DocCache { dir: dir.into(), pieces: Arc::default() }
    }

    /// The document's manifest from `base`, as it came, for the view to judge (as a browser does).
    /// If it is the one the teacher's server signed (`doc.manifest`) for a document of `doc.pages`
    /// pages, it is also kept here, for [`DocCache::range_checked`].
    pub async fn manifest(
        &self,
        base: &str,
        fingerprint: &str,
        bearer: &str,
        doc: &Doc,
    ) -> Result<Vec<u8>, DocError> {
        let body = fetch_manifest(base, fingerprint, bearer, doc).await?;
        if let Some(signed) = doc.manifest.as_deref()
            && let Ok(pieces) = Pieces::check(&body, signed, doc.pages)
        {
            self.keep_pieces(signed, pieces);
        }
        Ok(body.to_vec())
    }

    /// The checked manifest of `doc`: the one kept, else fetched from `base` and kept only if it is
    /// the signed one.
    async fn pieces_of(
        &self,
        base: &str,
        fingerprint: &str,
        bearer: &str,
        doc: &Doc,
    ) -> Result<Arc<Pieces>, DocError> {
        let Some(signed) = doc.manifest.as_deref() else {
            return Err(DocError::NoManifest);
        };
        if let Some(p) = self.pieces.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(signed) {
            return Ok(p.clone());
        }
        let body = fetch_manifest(base, fingerprint, bearer, doc).await?;
        Ok(self.keep_pieces(signed, Pieces::check(&body, signed, doc.pages)?))
    }

    fn keep_pieces(&self, signed: &str, pieces: Pieces) -> Arc<Pieces> {
        let pieces = Arc::new(pieces);
        let mut kept = self.pieces.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.len() >= MANIFESTS_KEPT && !kept.contains_key(signed) {
            // One lesson shows one document at a time: a document dropped here is fetched again.
            kept.clear();
        }
        kept.insert(signed.to_string(), pieces.clone());
        pieces
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
            return Err(refused(&answer));
        }
        if !valid_sha(&doc.sha256) || hex(&Sha256::digest(&answer.body)) != doc.sha256.to_ascii_lowercase() {
            return Err(DocError::Mismatch);
        }
        if let Err(e) = self.keep(&doc.sha256, &answer.body) {
            tracing::warn!(error = %e, "could not cache a document");
        }
        Ok(answer.body.to_vec())
    }

    /// Bytes `[begin, end)` of a document this device keeps, and its whole length.
    fn cached_range(&self, doc: &Doc, begin: u64, end: u64) -> Option<(Vec<u8>, u64)> {
        let bytes = self.cached(doc)?;
        let total = bytes.len() as u64;
        let (b, e) = (begin.min(total) as usize, end.min(total) as usize);
        Some((bytes[b..e.max(b)].to_vec(), total))
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
        if let Some(kept) = self.cached_range(doc, begin, end) {
            return Ok(kept);
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
            _ => Err(refused(&answer)),
        }
    }

    /// Bytes `[begin, end)` of a document behind a relay and its whole length: from the cache when it
    /// is there, else fetched as the whole pieces that hold them, each checked against the manifest
    /// the teacher's server signed (fetched first if this device does not hold it). Never unchecked:
    /// without the signed manifest, nothing.
    pub async fn range_checked(
        &self,
        base: &str,
        fingerprint: &str,
        bearer: &str,
        doc: &Doc,
        begin: u64,
        end: u64,
    ) -> Result<(Vec<u8>, u64), DocError> {
        if let Some(kept) = self.cached_range(doc, begin, end) {
            return Ok(kept);
        }
        let pieces = self.pieces_of(base, fingerprint, bearer, doc).await?;
        checked_range(&pieces, &doc_url(base, doc), fingerprint, bearer, begin, end).await
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

/// Bytes `[begin, end)` of the document at `url` and its length, fetched as the whole pieces that hold
/// them and each piece checked against `pieces`: what a relay serves is shown only if it is what the
/// teacher's server signed.
async fn checked_range(
    pieces: &Pieces,
    url: &str,
    fingerprint: &str,
    bearer: &str,
    begin: u64,
    end: u64,
) -> Result<(Vec<u8>, u64), DocError> {
    let total = pieces.size();
    let (from, to) = pieces.cover(begin, end);
    if begin >= end || from >= to {
        return Ok((Vec::new(), total));
    }
    // No more than the pieces asked for: a relay cannot make this device hold a whole book for them.
    let limit = usize::try_from(to - from).unwrap_or(usize::MAX);
    let answer = get_range_within(url, fingerprint, Some(bearer), (from, to), limit).await?;
    let body = match (answer.status, answer.total) {
        (206, Some(t)) if t == total && answer.body.len() as u64 == to - from => answer.body,
        // The whole document, when the whole was asked for, from a server that ignores ranges.
        (200, _) if from == 0 && to == total && answer.body.len() as u64 == total => answer.body,
        (206 | 200, _) => {
            return Err(DocError::Status {
                status: answer.status,
                message: "an answer of the wrong size".into(),
            });
        }
        _ => return Err(refused(&answer)),
    };
    pieces.verify(from, &body)?;
    let (a, b) = ((begin.clamp(from, to) - from) as usize, (end.clamp(from, to) - from) as usize);
    Ok((body[a..b.max(a)].to_vec(), total))
}

/// The longest manifest taken (a relay's own bound on what it reads for one: 4 MiB).
const MANIFEST_MAX: usize = 4 << 20;

/// A document's manifest as `base` serves it (judged by the caller).
async fn fetch_manifest(base: &str, fingerprint: &str, bearer: &str, doc: &Doc) -> Result<Bytes, DocError> {
    let url = format!("{}/manifest", doc_url(base, doc));
    let answer = get_within(&url, fingerprint, Some(bearer), MANIFEST_MAX).await?;
    if answer.status != 200 {
        return Err(refused(&answer));
    }
    Ok(answer.body)
}
