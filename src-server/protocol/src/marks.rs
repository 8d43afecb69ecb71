//! The marks that stay on the lesson's pages (PROTOCOL-ADDITIONS.md sections L and M): every page keeps
//! its highlights and its ink for the whole lesson, turning back shows them, and a late joiner gets them with the
//! state. Only changes cross the wire ([`MarkOp`]); the state holds the whole layer.
//!
//! The signature over a state must not grow with the layer (section E): it covers the marks through
//! one digest of every page's digest, kept here and recomputed only when the marks change (and then
//! only the touched pages' own), so a pointer move costs the same whatever the pages hold.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::ink::{Ink, MAX_STROKE_POINTS, check_ink};

/// The most marks (highlights and strokes) one page keeps.
pub const MAX_MARKS_PER_PAGE: usize = 2_000;
/// The most marks a lesson keeps, over all its pages.
pub const MAX_MARKS: usize = 10_000;
/// The most ink points one page keeps.
pub const MAX_POINTS_PER_PAGE: usize = 60_000;
/// The most ink points a lesson keeps, over all its pages (about 3 MB of state for a late joiner).
pub const MAX_POINTS: usize = 200_000;
/// The most changes one `set` may carry.
pub const MAX_MARK_OPS: usize = 32;

/// One mark on a page, normalized to the page: a highlighted rectangle, or a pen stroke and the box
/// its points span.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// The stroke, when the mark is ink rather than a highlight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub ink: Option<Ink>,
}

impl Mark {
    /// How many ink points the mark holds (none for a highlight).
    pub fn points(&self) -> usize {
        self.ink.as_ref().map_or(0, |i| i.points.len())
    }
}

/// A change to the marks, as a `set` and a `patch` carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

impl MarkOp {
    /// The page the change is on.
    pub fn page(&self) -> u32 {
        match self {
            MarkOp::Add { page, .. } | MarkOp::Remove { page, .. } | MarkOp::Clear { page } => *page,
        }
    }
}

/// One page's marks, with what is kept of them: their digest and their ink points.
#[derive(Debug, Clone, Default)]
struct Page {
    marks: Vec<Mark>,
    /// Hex digest of the marks as canonical JSON.
    digest: String,
    points: usize,
}

impl Page {
    /// Counts and digests the marks again (after a change).
    fn seal(&mut self) {
        self.points = self.marks.iter().map(Mark::points).sum();
        self.digest = digest_of(&self.marks);
    }
}

/// Every page's marks, and each page's digest for the signature. A copy shares the pages (the state is
/// copied for every change a relay checks, sixty a second while the teacher writes); a change copies
/// only the pages it touches.
#[derive(Debug, Clone)]
pub struct Marks {
    pages: Arc<BTreeMap<u32, Arc<Page>>>,
    /// The digest of every page's digest as canonical JSON, hex: what a signature covers.
    layer: String,
    count: usize,
    points: usize,
}

impl Default for Marks {
    fn default() -> Marks {
        let mut marks = Marks { pages: Arc::default(), layer: String::new(), count: 0, points: 0 };
        marks.seal();
        marks
    }
}

impl PartialEq for Marks {
    fn eq(&self, other: &Marks) -> bool {
        self.pages.len() == other.pages.len()
            && self.pages.iter().zip(other.pages.iter()).all(|((a, p), (b, q))| a == b && p.marks == q.marks)
    }
}

impl Serialize for Marks {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.pages.iter().map(|(page, p)| (page, &p.marks)))
    }
}

/// A page number as a key of `marks`: the number's own decimal form ("3", never "0", "03" nor "+3"). Read
/// from the string itself, so that a state inside a frame (which serde buffers to find its `t`, and
/// whose keys then stay strings) reads as it does alone.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct PageKey(u32);

impl<'de> Deserialize<'de> for PageKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PageKey, D::Error> {
        struct Key;
        impl serde::de::Visitor<'_> for Key {
            type Value = PageKey;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a page number as a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PageKey, E> {
                v.parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0 && n.to_string() == v)
                    .map(PageKey)
                    .ok_or_else(|| E::custom(format!("{v:?} is not a page number")))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<PageKey, E> {
                u32::try_from(v)
                    .ok()
                    .filter(|n| *n > 0)
                    .map(PageKey)
                    .ok_or_else(|| E::custom(format!("{v} is not a page number")))
            }
        }
        d.deserialize_any(Key)
    }
}

impl<'de> Deserialize<'de> for Marks {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Marks, D::Error> {
        let pages = BTreeMap::<PageKey, Vec<Mark>>::deserialize(d)?;
        let mut marks = Marks::default();
        let map = Arc::make_mut(&mut marks.pages);
        for (PageKey(page), list) in pages.into_iter().filter(|(_, l)| !l.is_empty()) {
            let mut p = Page { marks: list, ..Page::default() };
            p.seal();
            marks.count += p.marks.len();
            marks.points += p.points;
            map.insert(page, Arc::new(p));
        }
        marks.seal();
        Ok(marks)
    }
}

/// Hex SHA-256 of a value's canonical JSON (RFC 8785).
fn digest_of<T: Serialize + ?Sized>(value: &T) -> String {
    Sha256::digest(serde_jcs::to_vec(value).unwrap_or_default()).iter().map(|b| format!("{b:02x}")).collect()
}

impl Marks {
    /// The marks on `page`, oldest first.
    pub fn page(&self, page: u32) -> &[Mark] {
        self.pages.get(&page).map_or(&[], |p| p.marks.as_slice())
    }

    /// How many marks the lesson holds.
    pub fn len(&self) -> usize {
        self.count
    }

    /// How many ink points the lesson holds.
    pub fn points(&self) -> usize {
        self.points
    }

    /// Whether no page holds a mark.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Each page with marks, and the hex digest of its marks.
    pub fn digests(&self) -> BTreeMap<u32, &str> {
        self.pages.iter().map(|(page, p)| (*page, p.digest.as_str())).collect()
    }

    /// The hex digest of [`Marks::digests`] as canonical JSON (`{"3":"<hex>",…}`): what a signature
    /// covers in place of the marks.
    pub fn layer_digest(&self) -> &str {
        &self.layer
    }

    /// Computes the layer's digest again from the pages' digests.
    fn seal(&mut self) {
        self.layer = digest_of(&self.digests());
    }

    /// Checks changes as the teacher sent them, for a document of `pages` pages (none open: 0).
    /// Nothing changes here; a bad change refuses them all with a message that says which. Only the
    /// pages the changes touch are looked at, so a change costs the same whatever the layer holds.
    pub fn check(&self, ops: &[MarkOp], pages: u32) -> Result<(), String> {
        if ops.len() > MAX_MARK_OPS {
            return Err(format!("{} mark changes in one set; at most {MAX_MARK_OPS}", ops.len()));
        }
        // The touched pages as the changes leave them: each mark's id and points.
        let mut touched: BTreeMap<u32, Vec<(u32, usize)>> = BTreeMap::new();
        let (mut count, mut points) = (self.count, self.points);
        for op in ops {
            let page = op.page();
            if page == 0 || page > pages {
                return Err(format!("marks.page {page} is not a page of the document ({pages} pages)"));
            }
            let list = touched
                .entry(page)
                .or_insert_with(|| self.page(page).iter().map(|m| (m.id, m.points())).collect());
            match op {
                MarkOp::Add { mark, .. } => {
                    crate::shapes::check_rect("mark", mark.x, mark.y, mark.w, mark.h)?;
                    if let Some(ink) = &mark.ink {
                        check_ink(ink, [mark.x, mark.y, mark.w, mark.h])?;
                    }
                    if list.iter().any(|(id, _)| *id == mark.id) {
                        return Err(format!("page {page} already has mark {}", mark.id));
                    }
                    let page_points = list.iter().map(|(_, n)| n).sum::<usize>() + mark.points();
                    if list.len() >= MAX_MARKS_PER_PAGE || page_points > MAX_POINTS_PER_PAGE {
                        return Err(format!(
                            "page {page} has {} marks and {} ink points; a page keeps at most \
                             {MAX_MARKS_PER_PAGE} and {MAX_POINTS_PER_PAGE}: clear some first",
                            list.len(),
                            page_points - mark.points()
                        ));
                    }
                    if count >= MAX_MARKS || points + mark.points() > MAX_POINTS {
                        return Err(format!(
                            "the lesson has {count} marks and {points} ink points; it keeps at most \
                             {MAX_MARKS} and {MAX_POINTS}: clear a page first"
                        ));
                    }
                    list.push((mark.id, mark.points()));
                    (count, points) = (count + 1, points + mark.points());
                }
                MarkOp::Remove { id, .. } => {
                    let at = list
                        .iter()
                        .position(|(m, _)| m == id)
                        .ok_or(format!("page {page} has no mark {id}"))?;
                    let (_, n) = list.remove(at);
                    (count, points) = (count - 1, points - n);
                }
                MarkOp::Clear { .. } => {
                    count -= list.len();
                    points -= list.iter().map(|(_, n)| n).sum::<usize>();
                    list.clear();
                }
            }
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
        let pages = Arc::make_mut(&mut self.pages);
        for page in touched {
            if let Some(p) = pages.get_mut(&page) {
                Arc::make_mut(p).seal();
            }
        }
        self.seal();
    }

    /// Applies one change without the digest; returns the page it touched.
    fn apply_one(&mut self, op: &MarkOp) -> u32 {
        let page = op.page();
        let pages = Arc::make_mut(&mut self.pages);
        match op {
            MarkOp::Add { mark, .. } => {
                self.count += 1;
                self.points += mark.points();
                Arc::make_mut(pages.entry(page).or_default()).marks.push(mark.clone());
            }
            MarkOp::Remove { id, .. } => {
                if let Some(p) = pages.get_mut(&page)
                    && let Some(at) = p.marks.iter().position(|m| m.id == *id)
                {
                    let gone = Arc::make_mut(p).marks.remove(at);
                    self.count -= 1;
                    self.points -= gone.points();
                }
            }
            MarkOp::Clear { .. } => {
                let gone = pages.remove(&page).map(|p| p.marks.clone()).unwrap_or_default();
                self.count -= gone.len();
                self.points -= gone.iter().map(Mark::points).sum::<usize>();
            }
        }
        if pages.get(&page).is_some_and(|p| p.marks.is_empty()) {
            pages.remove(&page);
        }
        page
    }

    /// These marks with each page of `pages` as `from` has it (a page `from` holds no marks on is left
    /// without): a partial sync (section O) is made from an empty layer this way, and read over the
    /// client's own. Only the named pages are copied; the layer's digest is computed again from the
    /// pages' digests.
    pub fn replaced(&self, pages: &[u32], from: &Marks) -> Marks {
        let mut out = self.clone();
        let map = Arc::make_mut(&mut out.pages);
        for page in pages {
            match from.pages.get(page) {
                Some(p) => map.insert(*page, p.clone()),
                None => map.remove(page),
            };
        }
        out.count = map.values().map(|p| p.marks.len()).sum();
        out.points = map.values().map(|p| p.points).sum();
        out.seal();
        out
    }

    /// Whether marks a peer sent (a relay's state or patch, not yet checked) are within what a
    /// teacher's server ever makes: so many changes in one patch, strokes of so many points, so many
    /// marks and points on a page and in all. It looks at the changes and the pages' counts, not at
    /// every mark, so a relay checks each frame at the same cost whatever the layer holds.
    pub fn within_caps(&self, ops: Option<&[MarkOp]>) -> bool {
        let op_ok = |op: &MarkOp| match op {
            MarkOp::Add { mark, .. } => mark.ink.as_ref().is_none_or(|i| i.points.len() <= MAX_STROKE_POINTS),
            _ => true,
        };
        ops.is_none_or(|o| o.len() <= MAX_MARK_OPS && o.iter().all(op_ok))
            && self.count <= MAX_MARKS
            && self.points <= MAX_POINTS
            && self
                .pages
                .values()
                .all(|p| p.marks.len() <= MAX_MARKS_PER_PAGE && p.points <= MAX_POINTS_PER_PAGE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(page: u32, id: u32) -> MarkOp {
        MarkOp::Add { page, mark: Mark { id, x: 0.1, y: 0.2, w: 0.5, h: 0.05, ink: None } }
    }

    #[test]
    fn marks_stay_per_page_and_a_change_touches_only_its_pages_digest() {
        let mut m = Marks::default();
        m.apply(&[add(3, 1), add(3, 2), add(7, 3)]);
        let owned =
            |m: &Marks| m.digests().into_iter().map(|(k, v)| (k, v.to_string())).collect::<BTreeMap<_, _>>();
        let before = owned(&m);
        m.apply(&[MarkOp::Remove { page: 3, id: 1 }]);
        let after = owned(&m);
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
        let wide = MarkOp::Add { page: 1, mark: Mark { id: 4, x: 0.6, y: 0.0, w: 0.5, h: 0.1, ink: None } };
        assert!(refused(&[wide]).contains("past the edge"));
        let nan =
            MarkOp::Add { page: 1, mark: Mark { id: 4, x: f64::NAN, y: 0.0, w: 0.5, h: 0.1, ink: None } };
        assert!(refused(&[nan]).contains("outside 0 to 1"));
        assert!(m.check(&[MarkOp::Clear { page: 1 }, add(1, 1)], 12).is_ok(), "cleared, the id is free");
    }

    #[test]
    fn the_caps_hold_per_page_and_per_lesson() {
        let mut m = Marks::default();
        let first: Vec<_> = (0..MAX_MARKS_PER_PAGE as u32).map(|id| add(1, id)).collect();
        for chunk in first.chunks(MAX_MARK_OPS) {
            m.apply(chunk);
        }
        assert!(m.check(&[add(1, 99_999)], 100).unwrap_err().contains("a page keeps at most"));
        let mut page = 2;
        while m.len() < MAX_MARKS {
            let room = (MAX_MARKS - m.len()).min(MAX_MARKS_PER_PAGE);
            let ops: Vec<_> = (0..room as u32).map(|id| add(page, id)).collect();
            for chunk in ops.chunks(MAX_MARK_OPS) {
                m.apply(chunk);
            }
            page += 1;
        }
        assert!(m.check(&[add(99, 1)], 100).unwrap_err().contains("it keeps at most"));
        assert!(m.check(&vec![MarkOp::Clear { page: 1 }; MAX_MARK_OPS + 1], 100).is_err());
    }

    fn stroke(page: u32, id: u32, n: usize) -> MarkOp {
        let points = (0..n).map(|i| [(i % 100) as u16 * 10, 5000, 50]).collect::<Vec<_>>();
        let [x, y, w, h] = crate::ink::span(&points);
        let ink = Some(Ink { color: crate::ink::InkColor::Red, width: 4, points });
        MarkOp::Add { page, mark: Mark { id, x, y, w, h, ink } }
    }

    #[test]
    fn ink_points_are_counted_per_page_and_per_lesson_and_freed_by_a_removal() {
        let mut m = Marks::default();
        let per = crate::ink::MAX_STROKE_POINTS;
        for id in 0..(MAX_POINTS_PER_PAGE / per) as u32 {
            m.apply(&[stroke(1, id, per)]);
        }
        assert_eq!(m.points(), MAX_POINTS_PER_PAGE);
        assert!(m.check(&[stroke(1, 9_999, 1)], 10).unwrap_err().contains("ink points"));
        assert!(m.check(&[add(1, 9_999)], 10).is_ok(), "a highlight holds no points");
        m.apply(&[MarkOp::Remove { page: 1, id: 0 }]);
        assert_eq!(m.points(), MAX_POINTS_PER_PAGE - per);
        assert!(m.check(&[stroke(1, 9_999, per)], 10).is_ok(), "a removal frees its points");
        let back: Marks = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!((back.points(), back.layer_digest()), (m.points(), m.layer_digest()));
        assert!(m.within_caps(None));
        let mut shifted = stroke(2, 1, 3);
        if let MarkOp::Add { mark, .. } = &mut shifted {
            mark.x += 0.1;
        }
        assert!(m.check(&[shifted], 10).unwrap_err().contains("box its points span"));
    }
}
