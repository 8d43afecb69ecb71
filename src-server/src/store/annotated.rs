//! What an annotated PDF of a lesson holds, from the session log: for each document the lesson
//! showed, the pages it showed and the marks they held when the lesson left them (a new document
//! clears the marks, so each time a document is left its marks are taken as they were).

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{Connection, OptionalExtension};

use super::schema::sql;
use crate::error::Result;
use crate::protocol::http::LessonSummary;
use crate::protocol::{Doc, LessonState, Mark, Patch};

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
}

/// Every document the lesson showed, in the order first shown, replayed from the logged changes.
pub fn annotations(conn: &Connection, lesson: &LessonSummary) -> Result<Vec<Annotated>> {
    let mut state = LessonState::new(opening_doc(conn, lesson)?);
    let mut docs: Vec<Annotated> = Vec::new();
    note(&mut docs, &state, lesson.started_ms);
    for (_, time, patch) in super::timeline::patches(conn, lesson.id)? {
        let Ok(patch) = serde_json::from_str::<Patch>(&patch) else { continue };
        if patch.doc.is_some() {
            keep_marks(&mut docs, &state);
        }
        state.apply(&patch);
        note(&mut docs, &state, time);
    }
    keep_marks(&mut docs, &state);
    Ok(docs)
}

/// The document the lesson opened with, if any.
fn opening_doc(conn: &Connection, lesson: &LessonSummary) -> Result<Option<Doc>> {
    conn.query_row(
        "SELECT d.doc_id, d.title, d.pages, d.sha256 FROM lessons l JOIN lesson_docs d
         ON d.lesson = l.id AND d.doc_id = l.opening_doc WHERE l.id = ?1",
        [lesson.id],
        |r| {
            Ok(Doc {
                id: r.get(0)?,
                title: r.get(1)?,
                pages: r.get::<_, i64>(2)? as u32,
                sha256: r.get(3)?,
                manifest: None,
            })
        },
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
            docs.push(Annotated { doc, pages: BTreeSet::new(), marks: BTreeMap::new(), last_shown_ms: 0 });
            docs.len() - 1
        }
    };
    &mut docs[at]
}

/// Notes the page the state shows.
fn note(docs: &mut Vec<Annotated>, state: &LessonState, time: u64) {
    if let Some(doc) = &state.doc {
        let a = entry(docs, doc);
        a.pages.insert(state.page);
        a.last_shown_ms = time;
    }
}

/// Takes the marks of the state's document as they are (before it is left, or at the end).
fn keep_marks(docs: &mut Vec<Annotated>, state: &LessonState) {
    let Some(doc) = &state.doc else { return };
    let a = entry(docs, doc);
    for page in state.marks.digests().keys() {
        a.marks.entry(*page).or_default().extend_from_slice(state.marks.page(*page));
    }
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
