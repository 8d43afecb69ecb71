//! A document's manifest (PROTOCOL-ADDITIONS.md, section J): the document cut into pieces, each
//! piece's SHA-256, and its scanned pages. The teacher's server signs the manifest's own SHA-256 in
//! the state ([`crate::state::Doc::manifest`]), so a device behind a relay, which trusts no byte the
//! relay gives it, checks every piece as it arrives and draws a page from the pieces it has, instead
//! of waiting for the whole document and its sha256.
//!
//! A scanned page's JPEG is one piece (with the few bytes after it, up to the next image), so a
//! page drawn from its image costs exactly its piece; everything else is cut into pieces of at most
//! [`PIECE`] bytes, small because pdf.js reads small objects spread through a file.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The largest piece outside a scanned page's image.
pub const PIECE: u64 = 16 * 1024;

/// The largest piece a manifest may name (a page image, as the server's limit, and its gap).
pub const MAX_PIECE: u64 = 33 * 1024 * 1024;

/// The largest document (PROTOCOL.md §9).
const MAX_SIZE: u64 = 200 * 1024 * 1024;

/// `GET /v1/docs/{id}/manifest`, as the teacher's server writes it; its SHA-256 is signed in the
/// state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct DocManifest {
    /// Format version: 1.
    pub v: u32,
    /// The document's length in bytes.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub size: u64,
    /// Each piece's length, in order; they add up to `size`.
    #[cfg_attr(feature = "ts", ts(type = "Array<number>"))]
    pub pieces: Vec<u64>,
    /// Each piece's SHA-256, 32 bytes each in the order of `pieces`, concatenated, in base64
    /// (standard alphabet, padded).
    pub hashes: String,
    /// The scanned pages, as `GET /v1/docs/{id}/scan` lists them (one entry per page).
    #[cfg_attr(feature = "ts", ts(type = "Array<[number, number, number, number] | null>"))]
    pub scans: Vec<Option<[u64; 4]>>,
}

/// Why a manifest or a piece is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestError {
    /// The manifest's bytes are not the ones the teacher signed.
    NotSigned,
    /// The manifest does not describe a document of this many pages (or is malformed).
    Malformed(String),
    /// Bytes that do not match the manifest: not whole pieces, or a piece's hash differs.
    Piece(String),
}

impl std::fmt::Display for ManifestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ManifestError::NotSigned => {
                f.write_str("the document's manifest is not the one the teacher signed")
            }
            ManifestError::Malformed(why) => write!(f, "the document's manifest is unusable: {why}"),
            ManifestError::Piece(why) => {
                write!(f, "the document's bytes are not the ones the teacher chose: {why}")
            }
        }
    }
}

impl std::error::Error for ManifestError {}

/// Hex SHA-256.
fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Where a document of `size` bytes with these scanned pages is cut: the pieces' lengths, in order,
/// adding up to `size`. A scanned page's image is one piece (with the few bytes after it, up to the
/// next image); other bytes are cut every [`PIECE`] bytes and at each image.
fn cut(size: u64, scans: &[Option<[u64; 4]>]) -> Vec<u64> {
    let mut images: Vec<(u64, u64)> = scans
        .iter()
        .flatten()
        .filter_map(|[o, l, _, _]| Some((*o, o.checked_add(*l)?)))
        .filter(|(o, e)| o < e && *e <= size)
        .collect();
    images.sort_unstable();
    images.dedup();
    let mut pieces = Vec::new();
    let (mut pos, mut next) = (0u64, 0usize);
    while pos < size {
        while next < images.len() && images[next].0 < pos {
            next += 1; // an image overlapping the last piece is cut as plain bytes
        }
        let end = match images.get(next) {
            Some(&(start, end)) if start == pos => {
                next += 1;
                // The bytes up to the next image go with this one when they are few.
                let after = images.get(next).map_or(size, |i| i.0).max(end);
                if after - end < PIECE { after } else { end }
            }
            Some(&(start, _)) => (pos + PIECE).min(start),
            None => (pos + PIECE).min(size),
        };
        pieces.push(end - pos);
        pos = end;
    }
    pieces
}

impl DocManifest {
    /// The manifest of `bytes`, whose scanned pages are `scans` (entries outside the document are
    /// left out of the cutting, and kept as given).
    pub fn build(bytes: &[u8], scans: &[Option<[u64; 4]>]) -> DocManifest {
        let size = bytes.len() as u64;
        let pieces = cut(size, scans);
        let mut hashes = Vec::with_capacity(pieces.len() * 32);
        let mut pos = 0usize;
        for len in &pieces {
            let end = pos + *len as usize; // the pieces add up to `size`
            hashes.extend_from_slice(&Sha256::digest(&bytes[pos..end]));
            pos = end;
        }
        DocManifest { v: 1, size, pieces, hashes: STANDARD.encode(hashes), scans: scans.to_vec() }
    }

    /// The same manifest as [`DocManifest::build`], of the `size` bytes `reader` gives, read a piece
    /// at a time: a document on disk is described without holding it in memory. An error if the
    /// reader fails or ends early.
    pub fn read(
        mut reader: impl std::io::Read,
        size: u64,
        scans: &[Option<[u64; 4]>],
    ) -> std::io::Result<DocManifest> {
        let pieces = cut(size, scans);
        let mut hashes = Vec::with_capacity(pieces.len() * 32);
        let mut buf = vec![0u8; 64 * 1024];
        for len in &pieces {
            let (mut hasher, mut left) = (Sha256::new(), *len);
            while left > 0 {
                let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
                let got = reader.read(&mut buf[..want])?;
                if got == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                hasher.update(&buf[..got]);
                left -= got as u64;
            }
            hashes.extend_from_slice(&hasher.finalize());
        }
        Ok(DocManifest { v: 1, size, pieces, hashes: STANDARD.encode(hashes), scans: scans.to_vec() })
    }

    /// The manifest as served: the bytes whose SHA-256 the state carries.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Hex SHA-256 of [`DocManifest::to_bytes`], for [`crate::state::Doc::manifest`].
    pub fn sha256(bytes: &[u8]) -> String {
        hex_sha256(bytes)
    }
}

/// A manifest checked against the state: its pieces, ready to check bytes against.
#[derive(Debug, Clone)]
pub struct Pieces {
    /// Where each piece starts, and the document's end last.
    offsets: Vec<u64>,
    hashes: Vec<[u8; 32]>,
    /// The manifest's scanned-page list.
    pub scans: Vec<Option<[u64; 4]>>,
}

impl Pieces {
    /// Reads manifest `bytes` fetched from anyone: taken only if their SHA-256 is `signed` (the
    /// state's [`crate::state::Doc::manifest`]) and they describe a document of `pages` pages.
    pub fn check(bytes: &[u8], signed: &str, pages: u32) -> Result<Pieces, ManifestError> {
        if hex_sha256(bytes) != signed {
            return Err(ManifestError::NotSigned);
        }
        let bad = |why: &str| ManifestError::Malformed(why.to_string());
        let m: DocManifest = serde_json::from_slice(bytes).map_err(|e| bad(&e.to_string()))?;
        let raw = STANDARD.decode(&m.hashes).map_err(|_| bad("hashes are not base64"))?;
        if m.v != 1
            || m.size > MAX_SIZE
            || raw.len() != m.pieces.len() * 32
            || m.scans.len() != pages as usize
        {
            return Err(bad("it does not fit the document"));
        }
        let mut offsets = Vec::with_capacity(m.pieces.len() + 1);
        let mut at = 0u64;
        for &len in &m.pieces {
            if len == 0 || len > MAX_PIECE {
                return Err(bad("a piece is empty or too long"));
            }
            offsets.push(at);
            at += len;
        }
        offsets.push(at);
        if at != m.size {
            return Err(bad("its pieces do not add up to the document"));
        }
        let hashes = raw.chunks_exact(32).map(|c| <[u8; 32]>::try_from(c).unwrap_or([0; 32])).collect();
        // As section D's clients judge the list: one entry outside the document (or of no size)
        // and pdf.js draws every page.
        let fits = |[o, l, w, h]: &[u64; 4]| {
            *l > 0
                && o.checked_add(*l).is_some_and(|e| e <= at)
                && (1..=14_400).contains(w)
                && (1..=14_400).contains(h)
        };
        let scans = if m.scans.iter().flatten().all(fits) { m.scans } else { vec![None; pages as usize] };
        Ok(Pieces { offsets, hashes, scans })
    }

    /// The document's length.
    pub fn size(&self) -> u64 {
        self.offsets.last().copied().unwrap_or(0)
    }

    /// The pieces that hold bytes `[begin, end)`, as the byte range they cover together: what to ask
    /// for so that every byte of it can be checked.
    pub fn cover(&self, begin: u64, end: u64) -> (u64, u64) {
        let end = end.min(self.size()).max(begin.min(self.size()));
        let first = self.offsets.partition_point(|&o| o <= begin).saturating_sub(1);
        let last = self.offsets.partition_point(|&o| o < end);
        (self.offsets[first.min(self.offsets.len() - 1)], self.offsets[last.min(self.offsets.len() - 1)])
    }

    /// Checks `bytes` that start at `begin`: whole pieces, each with its hash.
    pub fn verify(&self, begin: u64, bytes: &[u8]) -> Result<(), ManifestError> {
        let Some(end) = begin.checked_add(bytes.len() as u64) else {
            return Err(ManifestError::Piece("bytes past the end".into()));
        };
        let Ok(mut i) = self.offsets.binary_search(&begin) else {
            return Err(ManifestError::Piece(format!("byte {begin} is not where a piece starts")));
        };
        if self.offsets.binary_search(&end).is_err() {
            return Err(ManifestError::Piece(format!("byte {end} is not where a piece ends")));
        }
        while self.offsets[i] < end {
            let (a, b) = ((self.offsets[i] - begin) as usize, (self.offsets[i + 1] - begin) as usize);
            if Sha256::digest(&bytes[a..b]).as_slice() != self.hashes[i] {
                return Err(ManifestError::Piece(format!("piece {i} (bytes {}…) differs", self.offsets[i])));
            }
            i += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn a_scanned_page_is_one_piece_with_the_few_bytes_after_it() {
        let bytes = doc(200_000);
        let scans = vec![Some([40_000, 50_000, 600, 800]), None, Some([91_000, 60_000, 600, 800])];
        let m = DocManifest::build(&bytes, &scans);
        let json = m.to_bytes();
        let pieces = Pieces::check(&json, &DocManifest::sha256(&json), 3).unwrap();
        assert_eq!(pieces.size(), 200_000);
        // The first image with the 1,000 bytes before the second; the second alone (the rest is
        // long enough to be cut in plain pieces).
        assert!(m.pieces.contains(&51_000) && m.pieces.contains(&60_000), "{:?}", m.pieces);
        assert_eq!(pieces.cover(40_000, 90_000), (40_000, 91_000));
        assert_eq!(pieces.cover(91_000, 151_000), (91_000, 151_000));
        assert!(m.pieces.iter().all(|&l| l <= PIECE || l == 51_000 || l == 60_000));
        assert_eq!(m.pieces.iter().sum::<u64>(), 200_000);
        pieces.verify(40_000, &bytes[40_000..91_000]).unwrap();
        pieces.verify(0, &bytes).unwrap();
    }

    #[test]
    fn changed_bytes_misplaced_bytes_and_an_unsigned_manifest_are_refused() {
        let bytes = doc(100_000);
        let m = DocManifest::build(&bytes, &[None]);
        let json = m.to_bytes();
        let signed = DocManifest::sha256(&json);
        let pieces = Pieces::check(&json, &signed, 1).unwrap();
        let mut changed = bytes[..PIECE as usize].to_vec();
        changed[100] ^= 1;
        assert!(matches!(pieces.verify(0, &changed), Err(ManifestError::Piece(_))));
        assert!(matches!(pieces.verify(1, &bytes[1..=PIECE as usize]), Err(ManifestError::Piece(_))));
        assert!(matches!(pieces.verify(0, &bytes[..100]), Err(ManifestError::Piece(_))));
        let mut forged = m.clone();
        forged.scans = vec![Some([0, 10, 1, 1])];
        assert_eq!(Pieces::check(&forged.to_bytes(), &signed, 1).unwrap_err(), ManifestError::NotSigned);
        assert!(matches!(Pieces::check(&json, &signed, 2), Err(ManifestError::Malformed(_))));
    }

    #[test]
    fn overlapping_or_outlying_images_still_cut_the_whole_document() {
        let bytes = doc(70_000);
        let scans = vec![Some([10, 30_000, 1, 1]), Some([20, 30_000, 1, 1]), Some([69_000, 5_000, 1, 1])];
        let m = DocManifest::build(&bytes, &scans);
        assert_eq!(m.pieces.iter().sum::<u64>(), 70_000);
        let json = m.to_bytes();
        let pieces = Pieces::check(&json, &DocManifest::sha256(&json), 3).unwrap();
        pieces.verify(0, &bytes).unwrap();
    }

    #[test]
    fn a_document_read_a_piece_at_a_time_has_the_manifest_of_its_bytes() {
        let bytes = doc(200_000);
        let scans = vec![Some([1_000, 90_000, 1, 1]), None, Some([120_000, 30_000, 1, 1])];
        // A reader that gives a few bytes at a time, as a file or a pipe may.
        struct Dribble<'a>(&'a [u8]);
        impl std::io::Read for Dribble<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(7_001);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let read = DocManifest::read(Dribble(&bytes), 200_000, &scans).unwrap();
        assert_eq!(read, DocManifest::build(&bytes, &scans));
        let short = DocManifest::read(Dribble(&bytes[..150_000]), 200_000, &scans).unwrap_err();
        assert_eq!(short.kind(), std::io::ErrorKind::UnexpectedEof, "a file that shrank is not described");
    }
}
