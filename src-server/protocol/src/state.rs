//! The lesson state of PROTOCOL.md §4 and the rules for changing it (§5).
//!
//! `validate` turns a teacher's `set` into a normalized [`Patch`] (documents expanded to objects, the page
//! reset when the document changes) or a `bad_request` message; nothing changes unless every field is
//! valid. `apply` is shared by the server and every client, so both sides agree on what a patch means.

use serde::{Deserialize, Serialize};

pub use crate::fields::{Doc, Mode};
use crate::ink::{LiveInk, apply_step, check_step};
use crate::marks::Marks;
pub use crate::patch::{Patch, SetPatch};
pub use crate::shapes::{Highlight, MAX_ZOOM, MIN_ZOOM, Pos, Region};
use crate::shapes::{check_rect, check_region, unit};

/// Longest notice, in characters.
pub const MAX_NOTICE_CHARS: usize = 280;
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
    /// The stroke the teacher is drawing now (section M), or null.
    #[serde(default)]
    pub live: Option<LiveInk>,
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
            live: None,
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
        match &patch.live {
            Some(Some(step)) => self.live = Some(apply_step(self.live.take(), step)),
            Some(None) => self.live = None,
            None => {}
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
        out.live = match set.live {
            Some(Some(step)) => {
                pages.check(step.page, "live.page")?;
                check_step(if doc_changes { None } else { self.live.as_ref() }, &step)?;
                Some(Some(step))
            }
            Some(None) => Some(None),
            // A stroke on the old document's page ends with it.
            None if doc_changes && self.live.is_some() => Some(None),
            None => None,
        };
        out.mode = set.mode;
        if let Some(notice) = set.notice {
            if let Some(text) = &notice {
                check_notice(text)?;
            }
            out.notice = Some(notice);
        }
        if out.is_empty() {
            return Err(
                "empty patch: name at least one of doc, page, pos, zoom, view, highlight, marks, live, mode, notice"
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
    check_rect("highlight", h.x, h.y, h.w, h.h)?;
    Ok(h)
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
