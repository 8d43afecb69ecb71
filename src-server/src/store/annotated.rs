//! What an annotated PDF of a lesson holds, from the session log: for each document the lesson
//! showed, the pages it showed and the marks they held when the lesson left them (a new document
//! clears the marks, so each time a document is left its marks are taken as they were).

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{Connection, OptionalExtension};

use super::schema::sql;
use crate::error::Result;
use crate::protocol::http::LessonSummary;
use crate::protocol::marks::MAX_MARKS;
use crate::protocol::{Doc, Mark, MarkOp, Patch};

/// One document of a lesson, as its annotated PDF shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Annotated {
    /// The document (its `sha256` names its bytes in the library).
    pub doc: Doc,
    /// The pages the lesson showed.
    pub pages: BTreeSet<u32>,
    /// Each page's marks, oldest first.
    pub marks: BTreeMap<u32, Vec<Mark>>,
    /// When the document was last on screen (Unix ms): the latest is the lesson's own.
    pub last_shown_ms: u64,
    /// How many marks were taken in (at most a lesson's cap).
    count: usize,
}

/// Every document the lesson showed, in the order first shown, replayed from the logged changes:
/// rows are read one at a time, and marks are kept as plain lists (no digests), so a long lesson full
/// of ink costs one pass over its log.
pub fn annotations(conn: &Connection, lesson: &LessonSummary) -> Result<Vec<Annotated>> {
    let mut docs: Vec<Annotated> = Vec::new();
    let mut now = Shown { doc: opening_doc(conn, lesson)?, page: 1, marks: BTreeMap::new() };
    now.note(&mut docs, lesson.started_ms);
    let mut stmt =
        conn.prepare("SELECT time_ms, patch FROM patches WHERE lesson = ?1 ORDER BY seq").map_err(sql)?;
    let rows = stmt
        .query_map([lesson.id], |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?)))
        .map_err(sql)?;
    for row in rows {
        let (time, patch) = row.map_err(sql)?;
        let Ok(patch) = serde_json::from_str::<Patch>(&patch) else { continue };
        if let Some(doc) = patch.doc {
            now.keep_marks(&mut docs);
            now = Shown { doc, page: 1, marks: BTreeMap::new() };
        }
        for op in patch.marks.iter().flatten() {
            now.apply(op);
        }
        if let Some(page) = patch.page {
            now.page = page;
        }
        now.note(&mut docs, time);
    }
    now.keep_marks(&mut docs);
    Ok(docs)
}

/// What the replay has on screen: the document, its page, and its marks.
struct Shown {
    doc: Option<Doc>,
    page: u32,
    marks: BTreeMap<u32, Vec<Mark>>,
}

impl Shown {
    fn apply(&mut self, op: &MarkOp) {
        match op {
            MarkOp::Add { page, mark } => self.marks.entry(*page).or_default().push(mark.clone()),
            MarkOp::Remove { page, id } => {
                if let Some(list) = self.marks.get_mut(page) {
                    list.retain(|m| m.id != *id);
                }
            }
            MarkOp::Clear { page } => {
                self.marks.remove(page);
            }
        }
    }

    /// Notes the page on screen.
    fn note(&self, docs: &mut Vec<Annotated>, time: u64) {
        if let Some(doc) = &self.doc {
            let a = entry(docs, doc);
            a.pages.insert(self.page);
            a.last_shown_ms = time;
        }
    }

    /// Takes the document's marks as they are (before it is left, or at the end). A document shown
    /// again keeps what it had, with a mark of the same id replaced, up to a lesson's cap.
    fn keep_marks(&mut self, docs: &mut Vec<Annotated>) {
        let Some(doc) = &self.doc else { return };
        let a = entry(docs, doc);
        for (page, list) in std::mem::take(&mut self.marks) {
            let kept = a.marks.entry(page).or_default();
            for mark in list {
                kept.retain(|m| m.id != mark.id);
                if a.count < MAX_MARKS {
                    kept.push(mark);
                    a.count += 1;
                }
            }
        }
    }
}

/// The document the lesson opened with, if any.
fn opening_doc(conn: &Connection, lesson: &LessonSummary) -> Result<Option<Doc>> {
    conn.query_row(
        "SELECT d.doc_id, d.title, d.pages, d.sha256 FROM lessons l JOIN lesson_docs d
         ON d.lesson = l.id AND d.doc_id = l.opening_doc WHERE l.id = ?1",
        [lesson.id],
        super::timeline::doc_row,
    )
    .optional()
    .map_err(sql)
}

/// The entry for the state's document (made when first shown).
fn entry<'a>(docs: &'a mut Vec<Annotated>, doc: &Doc) -> &'a mut Annotated {
    let at = match docs.iter().position(|a| a.doc.sha256 == doc.sha256 && a.doc.id == doc.id) {
        Some(at) => at,
        None => {
            let doc = Doc { manifest: None, ..doc.clone() };
            docs.push(Annotated {
                doc,
                pages: BTreeSet::new(),
                marks: BTreeMap::new(),
                last_shown_ms: 0,
                count: 0,
            });
            docs.len() - 1
        }
    };
    &mut docs[at]
}

/// The document of a lesson to export: the one with this id, or the one on screen last.
pub fn pick(docs: Vec<Annotated>, id: Option<&str>) -> std::result::Result<Annotated, String> {
    match id {
        Some(id) => docs
            .into_iter()
            .rev()
            .find(|a| a.doc.id == id)
            .ok_or(format!("the lesson did not show document \"{id}\"")),
        None => docs
            .into_iter()
            .max_by_key(|a| a.last_shown_ms)
            .ok_or("the lesson showed no document".to_string()),
    }
}
