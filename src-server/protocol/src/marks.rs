//! The marks that stay on the lesson's pages (PROTOCOL-ADDITIONS.md section L): every page keeps its
//! highlights for the whole lesson, turning back shows them, and a late joiner gets them with the
//! state. Only changes cross the wire ([`MarkOp`]); the state holds the whole layer.
//!
//! The signature over a state must not grow with the layer (section E): it covers the marks through
//! one digest of every page's digest, kept here and recomputed only when the marks change (and then
//! only the touched pages' own), so a pointer move costs the same whatever the pages hold.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// The most marks one page keeps.
pub const MAX_MARKS_PER_PAGE: usize = 100;
/// The most marks a lesson keeps, over all its pages.
pub const MAX_MARKS: usize = 2_000;
/// The most changes one `set` may carry.
pub const MAX_MARK_OPS: usize = 32;

/// One mark on a page: a highlighted rectangle, normalized to the page.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct Mark {
    /// Chosen by the teacher's console, unique on its page: what a removal (an undo) names.
    pub id: u32,
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
}

/// A change to the marks, as a `set` and a `patch` carry it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum MarkOp {
    /// Puts a mark on a page.
    Add {
        /// 1-based page.
        page: u32,
        /// The mark.
        mark: Mark,
    },
    /// Takes one mark off a page.
    Remove {
        /// 1-based page.
        page: u32,
        /// The mark's id.
        id: u32,
    },
    /// Takes every mark off a page.
    Clear {
        /// 1-based page.
        page: u32,
    },
}

/// Every page's marks, and each page's digest for the signature.
#[derive(Debug, Clone)]
pub struct Marks {
    pages: BTreeMap<u32, Vec<Mark>>,
    /// Each page's digest, hex.
    digests: BTreeMap<u32, String>,
    /// The digest of `digests` as canonical JSON, hex: what a signature covers.
    layer: String,
    count: usize,
}

impl Default for Marks {
    fn default() -> Marks {
        let mut marks =
            Marks { pages: BTreeMap::new(), digests: BTreeMap::new(), layer: String::new(), count: 0 };
        marks.seal();
        marks
    }
}

impl PartialEq for Marks {
    fn eq(&self, other: &Marks) -> bool {
        self.pages == other.pages
    }
}

impl Serialize for Marks {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.pages.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Marks {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Marks, D::Error> {
        let pages = BTreeMap::<u32, Vec<Mark>>::deserialize(d)?;
        let mut marks = Marks::default();
        for (page, list) in pages.into_iter().filter(|(_, l)| !l.is_empty()) {
            marks.count += list.len();
            marks.digests.insert(page, page_digest(&list));
            marks.pages.insert(page, list);
        }
        marks.seal();
        Ok(marks)
    }
}

/// Hex SHA-256 of a value's canonical JSON (RFC 8785).
fn digest_of<T: Serialize + ?Sized>(value: &T) -> String {
    Sha256::digest(serde_jcs::to_vec(value).unwrap_or_default()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A page's digest: of its marks as canonical JSON.
fn page_digest(list: &[Mark]) -> String {
    digest_of(list)
}

impl Marks {
    /// The marks on `page`, oldest first.
    pub fn page(&self, page: u32) -> &[Mark] {
        self.pages.get(&page).map_or(&[], Vec::as_slice)
    }

    /// How many marks the lesson holds.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no page holds a mark.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Each page with marks, and the hex digest of its marks.
    pub fn digests(&self) -> &BTreeMap<u32, String> {
        &self.digests
    }

    /// The hex digest of [`Marks::digests`] as canonical JSON (`{"3":"<hex>",…}`): what a signature
    /// covers in place of the marks.
    pub fn layer_digest(&self) -> &str {
        &self.layer
    }

    /// Computes the layer's digest again from the pages' digests.
    fn seal(&mut self) {
        self.layer = digest_of(&self.digests);
    }

    /// Checks changes as the teacher sent them, for a document of `pages` pages (none open: 0).
    /// Nothing changes here; a bad change refuses them all with a message that says which.
    pub fn check(&self, ops: &[MarkOp], pages: u32) -> Result<(), String> {
        if ops.len() > MAX_MARK_OPS {
            return Err(format!("{} mark changes in one set; at most {MAX_MARK_OPS}", ops.len()));
        }
        let mut next = self.clone();
        for op in ops {
            let page = match op {
                MarkOp::Add { page, .. } | MarkOp::Remove { page, .. } | MarkOp::Clear { page } => *page,
            };
            if page == 0 || page > pages {
                return Err(format!("marks.page {page} is not a page of the document ({pages} pages)"));
            }
            match op {
                MarkOp::Add { mark, .. } => {
                    crate::shapes::check_rect("mark", mark.x, mark.y, mark.w, mark.h)?;
                    if next.page(page).iter().any(|m| m.id == mark.id) {
                        return Err(format!("page {page} already has mark {}", mark.id));
                    }
                    if next.page(page).len() >= MAX_MARKS_PER_PAGE {
                        return Err(format!(
                            "page {page} has {MAX_MARKS_PER_PAGE} marks, the most a page keeps: clear some first"
                        ));
                    }
                    if next.count >= MAX_MARKS {
                        return Err(format!(
                            "the lesson has {MAX_MARKS} marks, the most it keeps: clear a page first"
                        ));
                    }
                }
                MarkOp::Remove { id, .. } if !next.page(page).iter().any(|m| m.id == *id) => {
                    return Err(format!("page {page} has no mark {id}"));
                }
                _ => {}
            }
            next.apply_one(op);
        }
        Ok(())
    }

    /// Applies checked changes, keeping the touched pages' digests.
    pub fn apply(&mut self, ops: &[MarkOp]) {
        let mut touched = Vec::new();
        for op in ops {
            touched.push(self.apply_one(op));
        }
        touched.sort_unstable();
        touched.dedup();
        for page in touched {
            match self.pages.get(&page) {
                Some(list) => {
                    self.digests.insert(page, page_digest(list));
                }
                None => {
                    self.digests.remove(&page);
                }
            }
        }
        self.seal();
    }

    /// Applies one change without the digest; returns the page it touched.
    fn apply_one(&mut self, op: &MarkOp) -> u32 {
        let page = match *op {
            MarkOp::Add { page, mark } => {
                self.pages.entry(page).or_default().push(mark);
                self.count += 1;
                page
            }
            MarkOp::Remove { page, id } => {
                if let Some(list) = self.pages.get_mut(&page) {
                    let before = list.len();
                    list.retain(|m| m.id != id);
                    self.count -= before - list.len();
                }
                page
            }
            MarkOp::Clear { page } => {
                self.count -= self.pages.remove(&page).map_or(0, |l| l.len());
                page
            }
        };
        if self.pages.get(&page).is_some_and(Vec::is_empty) {
            self.pages.remove(&page);
        }
        page
    }

    /// Whether marks a peer sent (a relay's state or patch, not yet checked) are within what a
    /// teacher's server ever makes: so many changes in one patch, so many marks on a page and in all.
    pub fn within_caps(&self, ops: Option<&[MarkOp]>) -> bool {
        ops.is_none_or(|o| o.len() <= MAX_MARK_OPS)
            && self.count <= MAX_MARKS
            && self.pages.values().all(|l| l.len() <= MAX_MARKS_PER_PAGE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(page: u32, id: u32) -> MarkOp {
        MarkOp::Add { page, mark: Mark { id, x: 0.1, y: 0.2, w: 0.5, h: 0.05 } }
    }

    #[test]
    fn marks_stay_per_page_and_a_change_touches_only_its_pages_digest() {
        let mut m = Marks::default();
        m.apply(&[add(3, 1), add(3, 2), add(7, 3)]);
        let before = m.digests().clone();
        m.apply(&[MarkOp::Remove { page: 3, id: 1 }]);
        let after = m.digests();
        assert_eq!(before[&7], after[&7], "page 7 was not touched");
        assert_ne!(before[&3], after[&3]);
        let layer = m.layer_digest().to_string();
        assert_eq!((m.page(3).len(), m.len()), (1, 2));
        m.apply(&[MarkOp::Clear { page: 3 }]);
        assert!(!m.digests().contains_key(&3), "a page cleared has no digest");
        // Read back from JSON, the same marks give the same digests.
        assert_ne!(m.layer_digest(), layer);
        let back: Marks = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!((back.digests(), back.layer_digest(), back.len()), (m.digests(), m.layer_digest(), 1));
    }

    #[test]
    fn bad_changes_are_refused_whole_with_the_reason() {
        let mut m = Marks::default();
        m.apply(&[add(1, 1)]);
        let refused = |ops: &[MarkOp]| m.check(ops, 12).unwrap_err();
        assert!(refused(&[add(13, 9)]).contains("not a page"));
        assert!(refused(&[add(2, 9), add(1, 1)]).contains("already has mark 1"));
        assert!(refused(&[MarkOp::Remove { page: 1, id: 5 }]).contains("no mark 5"));
        let wide = MarkOp::Add { page: 1, mark: Mark { id: 4, x: 0.6, y: 0.0, w: 0.5, h: 0.1 } };
        assert!(refused(&[wide]).contains("past the edge"));
        let nan = MarkOp::Add { page: 1, mark: Mark { id: 4, x: f64::NAN, y: 0.0, w: 0.5, h: 0.1 } };
        assert!(refused(&[nan]).contains("outside 0 to 1"));
        assert!(m.check(&[MarkOp::Clear { page: 1 }, add(1, 1)], 12).is_ok(), "cleared, the id is free");
    }

    #[test]
    fn the_caps_hold_per_page_and_per_lesson() {
        let mut m = Marks::default();
        for id in 0..MAX_MARKS_PER_PAGE as u32 {
            m.apply(&[add(1, id)]);
        }
        assert!(m.check(&[add(1, 999)], 100).unwrap_err().contains("the most a page keeps"));
        let mut page = 2;
        while m.len() < MAX_MARKS {
            let room = (MAX_MARKS - m.len()).min(MAX_MARKS_PER_PAGE);
            let ops: Vec<_> = (0..room as u32).map(|id| add(page, id)).collect();
            for chunk in ops.chunks(MAX_MARK_OPS) {
                m.apply(chunk);
            }
            page += 1;
        }
        assert!(m.check(&[add(99, 1)], 100).unwrap_err().contains("the most it keeps"));
        assert!(m.check(&vec![MarkOp::Clear { page: 1 }; MAX_MARK_OPS + 1], 100).is_err());
    }
}
