//! The document library: the PDFs a lesson can show, stored by content hash under the data directory.
//!
//! Documents are immutable files named `<sha256>.pdf` plus an index (`index.json`) of id, title, pages and
//! hash. Adding the same bytes twice returns the existing document. Every file is checked to be a readable
//! PDF with at least one page before it is accepted.

pub mod annotate;
pub mod check;
pub mod export;
pub mod manifest;
pub mod pdf;
pub mod scan;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use sha2::{Digest, Sha256};

use crate::hex;
use tokio::sync::{Semaphore, watch};

use crate::error::{Error, Result};
use crate::protocol::Doc;
use crate::protocol::http::ScanIndex;

/// Largest document accepted, in bytes (§9).
pub const MAX_DOC_BYTES: usize = 200 * 1024 * 1024;

/// The PDFs this server holds.
#[derive(Debug)]
pub struct Library {
    dir: PathBuf,
    docs: RwLock<BTreeMap<String, Doc>>,
    /// Each document's scanned pages, found once (on first asking) by sha256.
    scans: Mutex<HashMap<String, Arc<ScanSlot>>>,
    /// Where new documents are checked.
    checker: RwLock<check::Checker>,
    /// Owns the scans running detached from the requests that asked: the server's tracker once it
    /// runs ([`Library::track_on`]), so a stopping server waits for them.
    tracker: RwLock<tokio_util::task::TaskTracker>,
}

/// Counts the pages of a PDF, or says why it is not readable.
pub fn count_pages(bytes: &[u8]) -> Result<u32> {
    pdf::count_pages(bytes).map_err(Error::Pdf)
}

/// Parses a PDF that must have at least one page.
fn parse(bytes: &[u8]) -> Result<(lopdf::Document, u32)> {
    pdf::parse(bytes).map_err(Error::Pdf)
}

fn slug(title: &str) -> String {
    let mut s = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            s.push(c);
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
        if s.len() >= 40 {
            break;
        }
    }
    let s = s.trim_end_matches('-').to_string();
    if s.is_empty() { "doc".into() } else { s }
}

impl Library {
    /// Opens (creating if needed) the library in `dir`.
    pub fn open(dir: &Path) -> Result<Library> {
        std::fs::create_dir_all(dir)?;
        let index = dir.join("index.json");
        let docs = match std::fs::read(&index) {
            Ok(bytes) => serde_json::from_slice::<Vec<Doc>>(&bytes).map_err(|e| Error::File {
                path: index.clone(),
                message: format!("unreadable document index ({e}); move it aside to rebuild the library"),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let docs = docs
            .into_iter()
            .filter(|d| dir.join(format!("{}.pdf", d.sha256)).is_file())
            .map(|d| (d.id.clone(), d))
            .collect();
        // Uploads a crash cut short are of no use to anyone.
        for entry in std::fs::read_dir(dir)?.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with("incoming-") {
                std::fs::remove_file(entry.path()).ok();
            }
        }
        Ok(Library {
            dir: dir.to_path_buf(),
            docs: RwLock::new(docs),
            scans: Mutex::default(),
            checker: RwLock::default(),
            tracker: RwLock::default(),
        })
    }

    /// Runs the library's background work (finding scanned pages) as tasks of `tracker`.
    pub fn track_on(&self, tracker: tokio_util::task::TaskTracker) {
        *self.tracker.write().unwrap_or_else(|p| p.into_inner()) = tracker;
    }

    fn tasks(&self) -> tokio_util::task::TaskTracker {
        self.tracker.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Sets where new documents are checked (`lectern serve`: a capped child process).
    pub fn set_checker(&self, checker: check::Checker) {
        *self.checker.write().unwrap_or_else(|p| p.into_inner()) = checker;
    }

    /// A fresh path in the library's folder for an upload to be written to before [`Library::take`]
    /// (removed at the next start if the server stops first).
    pub fn incoming_path(&self) -> PathBuf {
        self.dir.join(format!("incoming-{:016x}.part", rand::random::<u64>()))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Doc>> {
        self.docs.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The document with this id.
    pub fn get(&self, id: &str) -> Option<Doc> {
        self.read().get(id).cloned()
    }

    /// Every document, by id.
    pub fn list(&self) -> Vec<Doc> {
        self.read().values().cloned().collect()
    }

    /// Where a document's bytes are.
    pub fn path(&self, doc: &Doc) -> PathBuf {
        self.dir.join(format!("{}.pdf", doc.sha256))
    }

    /// The scanned pages of a document (see [`scan`]): found when it was added, or, for a document
    /// added by an older version, kept beside it once found. Finding them is one parse of the whole
    /// file, so it runs once per document, detached from the request that asked (a student who
    /// hangs up does not start another), and one document at a time. A document that cannot be
    /// searched has no scanned pages.
    pub async fn scan_index(&self, doc: &Doc) -> Arc<ScanIndex> {
        let slot = self.slot(&doc.sha256);
        let mut ready = slot.ready.subscribe();
        if !slot.started.swap(true, Ordering::SeqCst) {
            let (path, kept, pages) = (self.path(doc), self.kept_scans(&doc.sha256), doc.pages as usize);
            let slot = slot.clone();
            self.tasks().spawn(async move {
                let _one_at_a_time = SCANS_AT_ONCE.acquire().await;
                let found = tokio::task::spawn_blocking(move || find_scans(&path, &kept, pages)).await;
                let index = found.unwrap_or_else(|_| ScanIndex { pages: vec![None; pages] });
                slot.ready.send_replace(Some(Arc::new(index)));
            });
        }
        match ready.wait_for(Option::is_some).await {
            Ok(index) => index.clone().unwrap_or_default(),
            Err(_) => Arc::new(ScanIndex { pages: vec![None; doc.pages as usize] }),
        }
    }

    fn slot(&self, sha256: &str) -> Arc<ScanSlot> {
        let mut scans = self.scans.lock().unwrap_or_else(|p| p.into_inner());
        scans.entry(sha256.to_string()).or_default().clone()
    }

    fn kept_scans(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}.scan.json"))
    }

    /// Adds a PDF from memory. `id` is a preferred id (kept if free); otherwise one is made from the title.
    /// Blocking: call from a blocking thread for large files.
    pub fn add(&self, bytes: &[u8], title: &str, id: Option<&str>) -> Result<Doc> {
        if bytes.len() > MAX_DOC_BYTES {
            return Err(Error::Pdf(format!(
                "{} bytes is over the {} MiB limit",
                bytes.len(),
                MAX_DOC_BYTES >> 20
            )));
        }
        let sha256 = hex(&Sha256::digest(bytes));
        if let Some(doc) = self.read().values().find(|d| d.sha256 == sha256) {
            return Ok(doc.clone());
        }
        let tmp = self.incoming_path();
        std::fs::write(&tmp, bytes)?;
        self.take(&tmp, sha256, title, id)
    }

    /// Adds the PDF written to `incoming` (a path from [`Library::incoming_path`]; an upload is
    /// streamed there) whose SHA-256 is `sha256`: checked (see [`check`]), then moved into place; on
    /// any refusal, or when the library has it already, the file is removed. Blocking.
    pub fn take(&self, incoming: &Path, sha256: String, title: &str, id: Option<&str>) -> Result<Doc> {
        let taken = self.take_checked(incoming, sha256, title, id);
        if incoming.exists() {
            std::fs::remove_file(incoming).ok();
        }
        taken
    }

    fn take_checked(&self, incoming: &Path, sha256: String, title: &str, id: Option<&str>) -> Result<Doc> {
        if let Some(doc) = self.read().values().find(|d| d.sha256 == sha256) {
            return Ok(doc.clone());
        }
        let size = std::fs::metadata(incoming)?.len();
        if size > MAX_DOC_BYTES as u64 {
            return Err(Error::Pdf(format!("{size} bytes is over the {} MiB limit", MAX_DOC_BYTES >> 20)));
        }
        // Its scanned pages are found now, while it is parsed anyway, so the first student to open
        // it does not wait for a second parse (a 50 MB book takes seconds).
        let checker = self.checker.read().unwrap_or_else(|p| p.into_inner()).clone();
        let check::Checked { pages, scans } = checker.check(incoming)?;
        let title = title.trim();
        let title = if title.is_empty() { "Untitled" } else { title };
        let title: String = title.chars().take(200).collect();
        let path = self.dir.join(format!("{sha256}.pdf"));
        std::fs::rename(incoming, &path)?;
        keep_scans(&self.kept_scans(&sha256), &scans);
        let manifest = manifest::describe(&self.dir, &path, &sha256, &scans.pages);
        let slot = self.slot(&sha256);
        slot.started.store(true, Ordering::SeqCst);
        slot.ready.send_replace(Some(Arc::new(scans)));
        let mut docs = self.docs.write().unwrap_or_else(|p| p.into_inner());
        let base = id.map(str::to_string).unwrap_or_else(|| slug(&title));
        let mut id = base.clone();
        let mut n = 2;
        while docs.contains_key(&id) {
            id = format!("{base}-{n}");
            n += 1;
        }
        let doc = Doc { id: id.clone(), title, pages, sha256, manifest };
        docs.insert(id, doc.clone());
        self.write_index(&docs)?;
        Ok(doc)
    }

    /// Writes the document index whole.
    fn write_index(&self, docs: &BTreeMap<String, Doc>) -> Result<()> {
        let index: Vec<&Doc> = docs.values().collect();
        let json = serde_json::to_vec_pretty(&index).map_err(|e| Error::Invalid(e.to_string()))?;
        write_atomic(&self.dir.join("index.json"), &json)?;
        Ok(())
    }

    /// Adds a PDF file, titled after its file name.
    pub fn add_file(&self, path: &Path) -> Result<Doc> {
        let bytes =
            std::fs::read(path).map_err(|e| Error::File { path: path.into(), message: e.to_string() })?;
        let title =
            path.file_stem().map(|s| s.to_string_lossy().replace(['_', '-'], " ")).unwrap_or_default();
        self.add(&bytes, &title, None).map_err(|e| Error::File { path: path.into(), message: e.to_string() })
    }
}

/// Documents searched for scanned pages at once (each search parses a whole file).
static SCANS_AT_ONCE: Semaphore = Semaphore::const_new(1);

/// Bumped whenever the scanned-page rules change, so indexes kept by an older version are found
/// again.
const SCAN_VERSION: u32 = 2;

/// One document's scanned pages: whether the search began, and its result once done.
#[derive(Debug)]
struct ScanSlot {
    started: AtomicBool,
    ready: watch::Sender<Option<Arc<ScanIndex>>>,
}

impl Default for ScanSlot {
    fn default() -> ScanSlot {
        ScanSlot { started: AtomicBool::new(false), ready: watch::Sender::new(None) }
    }
}

/// An index as kept beside its document.
#[derive(serde::Serialize, serde::Deserialize)]
struct Kept {
    v: u32,
    #[serde(flatten)]
    index: ScanIndex,
}

/// The scanned pages of the document at `path` (of `pages` pages): as kept at `kept` when that was
/// written by this version and fits the document, else found again and kept.
fn find_scans(path: &Path, kept: &Path, pages: usize) -> ScanIndex {
    let none = || ScanIndex { pages: vec![None; pages] };
    let Ok(bytes) = std::fs::read(path) else { return none() };
    let fits = |index: &ScanIndex| {
        index.pages.len() == pages
            && index
                .pages
                .iter()
                .flatten()
                .all(|[o, l, _, _]| o.checked_add(*l).is_some_and(|e| e <= bytes.len() as u64))
    };
    if let Some(Kept { v: SCAN_VERSION, index }) =
        std::fs::read(kept).ok().and_then(|b| serde_json::from_slice(&b).ok())
        && fits(&index)
    {
        return index;
    }
    let index = match lopdf::Document::load_mem(&bytes) {
        Ok(parsed) => scan::index(&parsed, &bytes),
        Err(_) => none(),
    };
    let index = if fits(&index) { index } else { none() };
    keep_scans(kept, &index);
    index
}

/// Keeps a document's scanned pages beside it (losing them only costs a parse later).
fn keep_scans(path: &Path, index: &ScanIndex) {
    if let Ok(json) = serde_json::to_vec(&Kept { v: SCAN_VERSION, index: index.clone() }) {
        write_atomic(path, &json).ok();
    }
}

/// Writes a file whole or not at all (a `.part` beside it, renamed).
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".part");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

impl crate::engine::lesson::Documents for Library {
    fn get(&self, id: &str) -> Option<Doc> {
        Library::get(self, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_the_same_pdf_twice_keeps_one_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let lib = Library::open(dir.path()).unwrap();
        let pdf = crate::demo::demo_pdf().unwrap();
        let a = lib.add(&pdf, "Demo", Some("demo")).unwrap();
        let b = lib.add(&pdf, "Again", None).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.pages, crate::demo::DEMO_PAGES);
        let lib = Library::open(dir.path()).unwrap();
        assert_eq!(lib.get("demo"), Some(a));
    }

    #[test]
    fn a_file_that_is_not_a_pdf_is_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let lib = Library::open(dir.path()).unwrap();
        let err = lib.add(b"hello", "x", None).unwrap_err();
        assert!(err.to_string().contains("%PDF-"), "{err}");
        let err = lib.add(b"%PDF-1.5\ngarbage", "x", None).unwrap_err();
        assert!(err.to_string().starts_with("not a readable PDF"), "{err}");
        assert!(lib.list().is_empty());
    }

    #[tokio::test]
    async fn scanned_pages_are_kept_beside_a_document_and_found_again_when_the_rules_change() {
        let dir = tempfile::tempdir().unwrap();
        let lib = Library::open(dir.path()).unwrap();
        let doc = lib.add(&crate::demo::demo_pdf().unwrap(), "Demo", Some("demo")).unwrap();
        let kept = dir.path().join(format!("{}.scan.json", doc.sha256));
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&kept).unwrap()).unwrap();
        assert_eq!(json["v"], SCAN_VERSION);
        assert_eq!(json["pages"].as_array().unwrap().len(), doc.pages as usize);
        // An index from an older version (or a tampered one) is not believed: found again.
        std::fs::write(&kept, r#"{"v":1,"pages":[[0,99999999,595,842]]}"#).unwrap();
        let lib = Library::open(dir.path()).unwrap();
        let index = lib.scan_index(&doc).await;
        assert_eq!(index.pages, vec![None; doc.pages as usize]);
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&kept).unwrap()).unwrap();
        assert_eq!(json["v"], SCAN_VERSION);
    }

    #[test]
    fn slugs_are_ascii_and_short() {
        assert_eq!(slug("Quran, level 2"), "quran-level-2");
        assert_eq!(slug("مصحف"), "doc");
    }
}
