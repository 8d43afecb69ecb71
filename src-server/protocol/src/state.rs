//! The lesson state of PROTOCOL.md §4 and the rules for changing it (§5).
//!
//! `validate` turns a teacher's `set` into a normalized [`Patch`] (documents expanded to objects, the page
//! reset when the document changes) or a `bad_request` message; nothing changes unless every field is
//! valid. `apply` is shared by the server and every client, so both sides agree on what a patch means.

use serde::{Deserialize, Serialize};

use crate::marks::{MarkOp, Marks};

/// Longest notice, in characters.
pub const MAX_NOTICE_CHARS: usize = 280;
/// Smallest zoom factor.
pub const MIN_ZOOM: f64 = 0.25;
/// Largest zoom factor.
pub const MAX_ZOOM: f64 = 8.0;

/// A document the lesson can show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct Doc {
    /// Server-side id, used in `set` and in `/v1/docs/{id}`.
    pub id: String,
    /// Human title.
    pub title: String,
    /// Number of pages.
    pub pages: u32,
    /// Hex SHA-256 of the bytes, for caching.
    pub sha256: String,
    /// Hex SHA-256 of the document's manifest (`GET /v1/docs/{id}/manifest`, PROTOCOL-ADDITIONS.md
    /// section J): the list of its pieces' hashes and of its scanned pages, so that a device behind
    /// a relay checks each piece it is given, not only the whole. Absent for a document the server
    /// has not described yet (it is then checked whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub manifest: Option<String>,
}

/// The teacher's pointer, normalized to the page.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct Pos {
    /// 0 (left) to 1 (right).
    pub x: f64,
    /// 0 (top) to 1 (bottom).
    pub y: f64,
}

/// A highlighted rectangle on a page, normalized to the page.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct Highlight {
    /// 1-based page.
    pub page: u32,
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
}

/// The part of the page the teacher's screen shows (PROTOCOL-ADDITIONS.md section K), normalized to
/// the page: students in follow mode fit it to their own screen, centred, so they read what the
/// teacher reads whatever their screen's shape.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct Region {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
}

impl Region {
    /// How much the region magnifies the whole page: the zoom it stands for.
    pub fn zoom(&self) -> f64 {
        (1.0 / self.w.max(self.h)).clamp(1.0, MAX_ZOOM)
    }
}

/// Whether students are locked to the teacher's page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Students' views follow the teacher.
    #[default]
    Follow,
    /// Students browse freely.
    Free,
}

/// The whole lesson state (§4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct LessonState {
    /// The document on screen.
    pub doc: Option<Doc>,
    /// 1-based page.
    pub page: u32,
    /// The teacher's pointer.
    pub pos: Option<Pos>,
    /// Zoom factor.
    pub zoom: f64,
    /// The region of the page the teacher shows, or null for the whole page.
    #[serde(default)]
    pub view: Option<Region>,
    /// Highlighted rectangle.
    pub highlight: Option<Highlight>,
    /// Follow or free.
    pub mode: Mode,
    /// Short text shown to everyone.
    pub notice: Option<String>,
    /// The lesson is over.
    pub ended: bool,
    /// Every page's marks, kept for the whole lesson (PROTOCOL-ADDITIONS.md section L), by page.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(as = "std::collections::BTreeMap<String, Vec<crate::marks::Mark>>"))]
    pub marks: Marks,
}

impl LessonState {
    /// A fresh lesson showing `doc` (if any) at page 1.
    pub fn new(doc: Option<Doc>) -> LessonState {
        LessonState {
            doc,
            page: 1,
            pos: None,
            zoom: 1.0,
            view: None,
            highlight: None,
            mode: Mode::Follow,
            notice: None,
            ended: false,
            marks: Marks::default(),
        }
    }

    /// Applies an accepted patch.
    pub fn apply(&mut self, patch: &Patch) {
        if let Some(doc) = &patch.doc {
            self.doc = doc.clone();
            // Marks belong to the old document's pages.
            self.marks = Marks::default();
        }
        if let Some(ops) = &patch.marks {
            self.marks.apply(ops);
        }
        if let Some(page) = patch.page {
            self.page = page;
        }
        if let Some(pos) = patch.pos {
            self.pos = pos;
        }
        if let Some(zoom) = patch.zoom {
            self.zoom = zoom;
        }
        if let Some(view) = patch.view {
            self.view = view;
        }
        if let Some(h) = patch.highlight {
            self.highlight = h;
        }
        if let Some(mode) = patch.mode {
            self.mode = mode;
        }
        if let Some(notice) = &patch.notice {
            self.notice = notice.clone();
        }
        if let Some(ended) = patch.ended {
            self.ended = ended;
        }
    }

    /// Checks a teacher's `set` against this state and turns it into the patch to broadcast.
    /// `lookup` resolves a document id to the document the server holds. Nothing is changed here: a
    /// bad field rejects the whole patch with a message that says what to fix.
    pub fn validate(&self, set: SetPatch, lookup: impl Fn(&str) -> Option<Doc>) -> Result<Patch, String> {
        if self.ended {
            return Err("the lesson has ended".into());
        }
        if set.ended.is_some() {
            return Err("\"ended\" cannot be set; send {\"t\":\"end\"} to end the lesson".into());
        }
        let mut out = Patch::default();
        let doc_changes = set.doc.is_some();
        let doc = match set.doc {
            Some(Some(id)) => {
                let doc = lookup(&id).ok_or_else(|| format!("unknown document \"{id}\""))?;
                out.doc = Some(Some(doc.clone()));
                Some(doc)
            }
            Some(None) => {
                out.doc = Some(None);
                None
            }
            None => self.doc.clone(),
        };
        let pages = Pages(doc.as_ref().map(|d| d.pages));
        match set.page {
            Some(page) => out.page = Some(pages.check(page, "page")?),
            None if doc_changes => out.page = Some(1),
            None => {}
        }
        if let Some(pos) = set.pos {
            if let Some(p) = pos {
                unit("pos.x", p.x)?;
                unit("pos.y", p.y)?;
            }
            out.pos = Some(pos);
        }
        if let Some(zoom) = set.zoom {
            if !(MIN_ZOOM..=MAX_ZOOM).contains(&zoom) {
                return Err(format!("zoom {zoom} is outside {MIN_ZOOM} to {MAX_ZOOM}"));
            }
            out.zoom = Some(zoom);
        }
        match set.view {
            Some(view) => {
                if let Some(r) = view {
                    check_region(r)?;
                }
                out.view = Some(view);
                // The zoom a region stands for, unless the teacher named one.
                out.zoom = out.zoom.or(Some(view.map_or(1.0, |r| r.zoom())));
            }
            // A region of the old document's page: a new document shows its first page whole.
            None if doc_changes && self.view.is_some() => {
                out.view = Some(None);
                out.zoom = out.zoom.or(Some(1.0));
            }
            None => {}
        }
        out.highlight = match set.highlight {
            Some(Some(h)) => Some(Some(check_highlight(h, pages)?)),
            Some(None) => Some(None),
            // A highlight belongs to a page of the old document: a new document clears it.
            None if doc_changes && self.highlight.is_some() => Some(None),
            None => None,
        };
        if let Some(ops) = set.marks {
            let fresh = Marks::default();
            let marks = if doc_changes { &fresh } else { &self.marks };
            marks.check(&ops, pages.0.unwrap_or(0))?;
            out.marks = Some(ops);
        }
        out.mode = set.mode;
        if let Some(notice) = set.notice {
            if let Some(text) = &notice {
                check_notice(text)?;
            }
            out.notice = Some(notice);
        }
        if out.is_empty() {
            return Err(
                "empty patch: name at least one of doc, page, pos, zoom, view, highlight, marks, mode, notice"
                    .into(),
            );
        }
        Ok(out)
    }
}

/// The page count of the document a patch leaves open (none when no document is).
#[derive(Clone, Copy)]
struct Pages(Option<u32>);

impl Pages {
    fn check(self, page: u32, what: &str) -> Result<u32, String> {
        match self.0 {
            _ if page == 0 => Err(format!("{what} 0 is invalid: pages start at 1")),
            None if page > 1 => Err(format!("{what} {page} is invalid: no document is open")),
            Some(pages) if page > pages => Err(format!("{what} {page} is past the last page ({pages})")),
            _ => Ok(page),
        }
    }
}

fn check_highlight(h: Highlight, pages: Pages) -> Result<Highlight, String> {
    pages.check(h.page, "highlight.page")?;
    unit("highlight.x", h.x)?;
    unit("highlight.y", h.y)?;
    unit("highlight.w", h.w)?;
    unit("highlight.h", h.h)?;
    if h.x + h.w > 1.0 + 1e-9 || h.y + h.h > 1.0 + 1e-9 {
        return Err("highlight reaches past the edge of the page".into());
    }
    Ok(h)
}

fn check_region(r: Region) -> Result<(), String> {
    unit("view.x", r.x)?;
    unit("view.y", r.y)?;
    unit("view.w", r.w)?;
    unit("view.h", r.h)?;
    if r.x + r.w > 1.0 + 1e-9 || r.y + r.h > 1.0 + 1e-9 {
        return Err("view reaches past the edge of the page".into());
    }
    if r.w <= 0.0 || r.h <= 0.0 || r.w.max(r.h) < 1.0 / MAX_ZOOM - 1e-9 {
        return Err(format!("view is smaller than the page zoomed {MAX_ZOOM} times"));
    }
    Ok(())
}

fn check_notice(text: &str) -> Result<(), String> {
    let chars = text.chars().count();
    if chars > MAX_NOTICE_CHARS {
        return Err(format!("notice has {chars} characters; at most {MAX_NOTICE_CHARS}"));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err("notice may not contain control characters".into());
    }
    Ok(())
}

fn unit(what: &str, v: f64) -> Result<(), String> {
    if v.is_finite() && (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(format!("{what} {v} is outside 0 to 1"))
    }
}

/// The teacher's `set` request (§5). `doc` is a document id here, not the document object.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct SetPatch {
    /// The id of a document the server holds, or null to close the document.
    #[serde(default, deserialize_with = "double", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub doc: Option<Option<String>>,
    /// 1-based page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    /// The teacher's pointer, or null.
    #[serde(default, deserialize_with = "double", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub pos: Option<Option<Pos>>,
    /// Zoom factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zoom: Option<f64>,
    /// The region of the page shown, or null for the whole page.
    #[serde(default, deserialize_with = "double", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub view: Option<Option<Region>>,
    /// Highlighted rectangle, or null.
    #[serde(default, deserialize_with = "double", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub highlight: Option<Option<Highlight>>,
    /// Follow or free.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Notice text, or null.
    #[serde(default, deserialize_with = "double", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub notice: Option<Option<String>>,
    /// Changes to the marks that stay on the pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub marks: Option<Vec<MarkOp>>,
    /// Present only to be refused: `ended` is set by `end`, never by `set`.
    #[serde(default, skip_serializing)]
    #[cfg_attr(feature = "ts", ts(skip))]
    pub ended: Option<serde_json::Value>,
}

/// Deserializes a present field (even `null`) as `Some(..)`, so that "absent" and "null" differ.
pub(crate) fn double<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

/// A change to the lesson state as the server broadcasts it: absent fields are unchanged, `null` clears.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct Patch {
    /// New document (whole object), or null.
    #[serde(default, deserialize_with = "double", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub doc: Option<Option<Doc>>,
    /// New page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub page: Option<u32>,
    /// New pointer, or null.
    #[serde(default, deserialize_with = "double", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub pos: Option<Option<Pos>>,
    /// New zoom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub zoom: Option<f64>,
    /// New region shown, or null for the whole page.
    #[serde(default, deserialize_with = "double", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub view: Option<Option<Region>>,
    /// New highlight, or null.
    #[serde(default, deserialize_with = "double", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub highlight: Option<Option<Highlight>>,
    /// New mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub mode: Option<Mode>,
    /// New notice, or null.
    #[serde(default, deserialize_with = "double", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub notice: Option<Option<String>>,
    /// Set to true by `end`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub ended: Option<bool>,
    /// Changes to the marks that stay on the pages (applied after a new `doc` clears them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub marks: Option<Vec<MarkOp>>,
}

impl Patch {
    /// True when the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self == &Patch::default()
    }

    /// True when the patch only moves the pointer or the teacher's region (and the zoom it stands
    /// for): what streams at the display's rate while the teacher points, pinches or pans. Students do
    /// not acknowledge it, and its `ok` does not wait for the disk.
    pub fn is_motion(&self) -> bool {
        (self.pos.is_some() || self.view.is_some())
            && self.doc.is_none()
            && self.page.is_none()
            && self.highlight.is_none()
            && self.mode.is_none()
            && self.notice.is_none()
            && self.ended.is_none()
            && self.marks.is_none()
    }

    /// True when the patch only moves (or hides) the pointer: the bulk of a lesson, logged compactly
    /// and not a change students are expected to follow.
    pub fn is_pointer_only(&self) -> bool {
        self.pos.is_some()
            && self.doc.is_none()
            && self.page.is_none()
            && self.zoom.is_none()
            && self.view.is_none()
            && self.highlight.is_none()
            && self.mode.is_none()
            && self.notice.is_none()
            && self.ended.is_none()
            && self.marks.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mushaf() -> Doc {
        Doc { id: "mushaf".into(), title: "Mushaf".into(), pages: 604, sha256: "00".into(), manifest: None }
    }
    fn lookup(id: &str) -> Option<Doc> {
        match id {
            "mushaf" => Some(mushaf()),
            "short" => Some(Doc {
                id: "short".into(),
                title: "Short".into(),
                pages: 3,
                sha256: "11".into(),
                manifest: None,
            }),
            _ => None,
        }
    }
    fn set(json: &str) -> SetPatch {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn page_past_the_end_is_refused_with_the_protocol_message() {
        let s = LessonState::new(Some(mushaf()));
        assert_eq!(
            s.validate(set(r#"{"page":700}"#), lookup).unwrap_err(),
            "page 700 is past the last page (604)"
        );
    }

    #[test]
    fn a_bad_field_rejects_the_whole_patch() {
        let s = LessonState::new(Some(mushaf()));
        assert!(s.validate(set(r#"{"page":3,"zoom":9}"#), lookup).is_err());
        assert!(s.validate(set(r#"{"page":3,"pos":{"x":1.5,"y":0}}"#), lookup).is_err());
        assert!(s.validate(set(r#"{"page":3,"ended":true}"#), lookup).is_err());
    }

    #[test]
    fn setting_doc_resets_page_and_clears_highlight() {
        let mut s = LessonState::new(Some(mushaf()));
        let p = s
            .validate(set(r#"{"page":12,"highlight":{"page":12,"x":0.1,"y":0.2,"w":0.8,"h":0.05}}"#), lookup);
        s.apply(&p.unwrap());
        let p = s.validate(set(r#"{"doc":"short"}"#), lookup).unwrap();
        assert_eq!(p.page, Some(1));
        assert_eq!(p.highlight, Some(None));
        s.apply(&p);
        assert_eq!((s.page, s.highlight, s.doc.unwrap().pages), (1, None, 3));
    }

    #[test]
    fn doc_and_page_in_one_patch_keeps_the_page() {
        let s = LessonState::new(None);
        let p = s.validate(set(r#"{"doc":"short","page":3}"#), lookup).unwrap();
        assert_eq!(p.page, Some(3));
        assert!(s.validate(set(r#"{"doc":"short","page":4}"#), lookup).is_err());
    }

    #[test]
    fn a_region_is_checked_stands_for_its_zoom_and_goes_with_the_document() {
        let mut s = LessonState::new(Some(mushaf()));
        let p = s.validate(set(r#"{"view":{"x":0.05,"y":0.3,"w":0.9,"h":0.25}}"#), lookup).unwrap();
        assert!((p.zoom.unwrap() - 1.0 / 0.9).abs() < 1e-9);
        s.apply(&p);
        s.apply(&s.validate(set(r#"{"page":3}"#), lookup).unwrap());
        assert!(s.view.is_some(), "a page turn keeps the region: the teacher reads the next page as zoomed");
        for bad in [
            r#"{"view":{"x":0.5,"y":0,"w":0.6,"h":0.5}}"#,
            r#"{"view":{"x":0,"y":0,"w":0.1,"h":0.1}}"#,
            r#"{"view":{"x":0,"y":0,"w":0,"h":1}}"#,
            r#"{"view":{"x":-0.1,"y":0,"w":0.5,"h":0.5}}"#,
        ] {
            assert!(s.validate(set(bad), lookup).is_err(), "{bad}");
        }
        let p = s.validate(set(r#"{"doc":"short"}"#), lookup).unwrap();
        assert_eq!((p.view, p.zoom), (Some(None), Some(1.0)));
        let p = s.validate(set(r#"{"view":null}"#), lookup).unwrap();
        assert_eq!((p.view, p.zoom), (Some(None), Some(1.0)));
    }

    #[test]
    fn notice_length_counts_characters_not_bytes() {
        let s = LessonState::new(None);
        let arabic = "ب".repeat(280);
        assert!(s.validate(set(&format!(r#"{{"notice":"{arabic}"}}"#)), lookup).is_ok());
        let long = "ب".repeat(281);
        assert!(s.validate(set(&format!(r#"{{"notice":"{long}"}}"#)), lookup).is_err());
    }

    #[test]
    fn only_a_lone_pointer_move_is_pointer_only() {
        let pos = Some(Some(Pos { x: 0.5, y: 0.5 }));
        assert!(Patch { pos, ..Patch::default() }.is_pointer_only());
        assert!(Patch { pos: Some(None), ..Patch::default() }.is_pointer_only());
        assert!(!Patch { pos, page: Some(2), ..Patch::default() }.is_pointer_only());
        assert!(!Patch::default().is_pointer_only());
    }

    #[test]
    fn empty_patch_and_unknown_doc_are_refused() {
        let s = LessonState::new(None);
        assert!(s.validate(set("{}"), lookup).is_err());
        assert_eq!(s.validate(set(r#"{"doc":"nope"}"#), lookup).unwrap_err(), "unknown document \"nope\"");
    }
}
