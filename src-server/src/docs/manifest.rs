//! Documents' manifests (PROTOCOL-ADDITIONS.md, section J; the format is
//! [`crate::protocol::manifest`]), kept beside each document as `<sha256>.manifest.json` and named
//! by their SHA-256 in the library's index, and so in the state the teacher's server signs.

use std::path::Path;

use crate::protocol::Doc;
use crate::protocol::manifest::DocManifest;

use super::Library;

/// Where a document's manifest is kept.
fn path(dir: &Path, sha256: &str) -> std::path::PathBuf {
    dir.join(format!("{sha256}.manifest.json"))
}

/// Describes the document at `file` (of hash `sha256`, with these scanned pages): writes its
/// manifest beside it and returns the manifest's SHA-256, or `None` if it could not be kept (the
/// document is then checked whole by devices behind a relay). Blocking; the document is read a
/// piece at a time, never held whole.
pub(super) fn describe(dir: &Path, file: &Path, sha256: &str, scans: &[Option<[u64; 4]>]) -> Option<String> {
    let file = std::fs::File::open(file).ok()?;
    let size = file.metadata().ok()?.len();
    let json = DocManifest::read(std::io::BufReader::new(file), size, scans).ok()?.to_bytes();
    super::write_atomic(&path(dir, sha256), &json).ok()?;
    Some(DocManifest::sha256(&json))
}

impl Library {
    /// A document's manifest as served, if it has one and it is still the one its entry names.
    pub async fn manifest(&self, doc: &Doc) -> Option<Vec<u8>> {
        let signed = doc.manifest.clone()?;
        let file = path(&self.dir, &doc.sha256);
        let bytes = tokio::task::spawn_blocking(move || std::fs::read(file)).await.ok()?.ok()?;
        (DocManifest::sha256(&bytes) == signed).then_some(bytes)
    }

    /// Describes the documents an older version added without a manifest, one at a time, so that
    /// the next lesson showing them serves them in checked pieces. Run once at start, in the
    /// background: until a document is described it is checked whole.
    pub async fn describe_older(&self) {
        let older: Vec<Doc> = self.list().into_iter().filter(|d| d.manifest.is_none()).collect();
        for doc in older {
            let scans = self.scan_index(&doc).await;
            let (dir, file, sha) = (self.dir.clone(), self.path(&doc), doc.sha256.clone());
            let described =
                tokio::task::spawn_blocking(move || describe(&dir, &file, &sha, &scans.pages)).await;
            let Ok(Some(manifest)) = described else { continue };
            let mut docs = self.docs.write().unwrap_or_else(|p| p.into_inner());
            if let Some(entry) = docs.get_mut(&doc.id) {
                entry.manifest = Some(manifest);
            }
            if let Err(e) = self.write_index(&docs) {
                tracing::warn!(error = %e, "the document index could not be written");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::protocol::manifest::Pieces;

    use super::*;

    #[tokio::test]
    async fn a_document_is_described_when_added_and_an_older_one_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let lib = Library::open(dir.path()).unwrap();
        let pdf = crate::demo::demo_pdf().unwrap();
        let doc = lib.add(&pdf, "Demo", Some("demo")).unwrap();
        let signed = doc.manifest.clone().expect("described when added");
        let json = lib.manifest(&doc).await.unwrap();
        let pieces = Pieces::check(&json, &signed, doc.pages).unwrap();
        pieces.verify(0, &pdf).unwrap();

        // As an older version left it: no manifest in the index, none beside the file.
        let index = dir.path().join("index.json");
        let old = std::fs::read_to_string(&index)
            .unwrap()
            .replace(&format!(",\n    \"manifest\": \"{signed}\""), "");
        std::fs::write(&index, old).unwrap();
        std::fs::remove_file(path(dir.path(), &doc.sha256)).unwrap();
        let lib = Library::open(dir.path()).unwrap();
        assert_eq!(lib.get("demo").unwrap().manifest, None);
        lib.describe_older().await;
        assert_eq!(lib.get("demo").unwrap().manifest, Some(signed.clone()));
        assert_eq!(Library::open(dir.path()).unwrap().get("demo").unwrap().manifest, Some(signed));
    }
}
