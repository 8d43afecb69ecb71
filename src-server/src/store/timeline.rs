//! A lesson's timeline from the session log: joins and leaves, every change, pointer moves summarized
//! per 10 seconds, and hands, in time order, with the documents shown.

use std::collections::HashMap;

use rusqlite::Connection;

use super::schema::sql;
use crate::error::Result;
use crate::protocol::http::{LessonSummary, Timeline, TimelineEvent};
use crate::protocol::{Doc, Patch};

/// What was shown when, who came and went, and hands; pointer moves are summarized per 10 seconds.
pub fn timeline(conn: &Connection, lesson: &LessonSummary) -> Result<Timeline> {
    let names = names(conn, lesson.id)?;
    let mut events = Vec::new();
    connections(conn, lesson.id, &names, &mut events)?;
    changes(conn, lesson.id, &mut events)?;
    pointer(conn, lesson.id, &mut events)?;
    hands(conn, lesson.id, &names, &mut events)?;
    events.sort_by_key(TimelineEvent::time);
    Ok(Timeline { lesson: lesson.clone(), documents: documents(conn, lesson.id)?, events })
}

type Names = HashMap<String, String>;

fn name(names: &Names, pid: &str) -> String {
    names.get(pid).cloned().unwrap_or_default()
}

fn names(conn: &Connection, lesson: i64) -> Result<Names> {
    let mut stmt = conn.prepare("SELECT id, name FROM participants WHERE lesson = ?1").map_err(sql)?;
    let rows =
        stmt.query_map([lesson], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).map_err(sql)?;
    rows.collect::<rusqlite::Result<Names>>().map_err(sql)
}

fn connections(conn: &Connection, lesson: i64, names: &Names, events: &mut Vec<TimelineEvent>) -> Result<()> {
    let mut stmt = conn
        .prepare("SELECT participant, joined_ms, left_ms, addr FROM connections WHERE lesson = ?1")
        .map_err(sql)?;
    let rows = stmt
        .query_map([lesson], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)? as u64,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })
        .map_err(sql)?;
    for row in rows {
        let (pid, joined, left, addr) = row.map_err(sql)?;
        let name = name(names, &pid);
        if let Some(left) = left {
            let (participant, name) = (pid.clone(), name.clone());
            events.push(TimelineEvent::Leave { time: left as u64, participant, name });
        }
        events.push(TimelineEvent::Join { time: joined, participant: pid, name, addr });
    }
    Ok(())
}

/// Every logged patch of a lesson as (seq, time, patch JSON), in seq order.
pub(crate) fn patches(conn: &Connection, lesson: i64) -> Result<Vec<(u64, u64, String)>> {
    let mut stmt = conn
        .prepare("SELECT seq, time_ms, patch FROM patches WHERE lesson = ?1 ORDER BY seq")
        .map_err(sql)?;
    let rows = stmt
        .query_map([lesson], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64, r.get::<_, String>(2)?))
        })
        .map_err(sql)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
}

fn changes(conn: &Connection, lesson: i64, events: &mut Vec<TimelineEvent>) -> Result<()> {
    for (seq, time, patch) in patches(conn, lesson)? {
        let patch = serde_json::from_str::<Patch>(&patch).unwrap_or_default();
        events.push(TimelineEvent::Change { time, seq, patch: Box::new(patch) });
    }
    Ok(())
}

fn pointer(conn: &Connection, lesson: i64, events: &mut Vec<TimelineEvent>) -> Result<()> {
    let mut stmt = conn
        .prepare(
            "SELECT time_ms / 10000, min(time_ms), min(seq), max(seq), count(*) FROM pointer WHERE lesson = ?1
             GROUP BY time_ms / 10000 ORDER BY 1",
        )
        .map_err(sql)?;
    let rows = stmt
        .query_map([lesson], |r| {
            Ok(TimelineEvent::Pointer {
                time: r.get::<_, i64>(1)? as u64,
                from_seq: r.get::<_, i64>(2)? as u64,
                to_seq: r.get::<_, i64>(3)? as u64,
                moves: r.get::<_, i64>(4)? as u64,
            })
        })
        .map_err(sql)?;
    for row in rows {
        events.push(row.map_err(sql)?);
    }
    Ok(())
}

fn hands(conn: &Connection, lesson: i64, names: &Names, events: &mut Vec<TimelineEvent>) -> Result<()> {
    let mut stmt =
        conn.prepare("SELECT participant, time_ms, up FROM hands WHERE lesson = ?1").map_err(sql)?;
    let rows = stmt
        .query_map([lesson], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64, r.get::<_, bool>(2)?))
        })
        .map_err(sql)?;
    for row in rows {
        let (pid, time, up) = row.map_err(sql)?;
        events.push(TimelineEvent::Hand { time, name: name(names, &pid), participant: pid, up });
    }
    Ok(())
}

fn documents(conn: &Connection, lesson: i64) -> Result<Vec<Doc>> {
    let mut stmt = conn
        .prepare(
            "SELECT doc_id, title, pages, sha256 FROM lesson_docs WHERE lesson = ?1 ORDER BY first_shown_ms",
        )
        .map_err(sql)?;
    let rows = stmt.query_map([lesson], doc_row).map_err(sql)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
}

/// A document from a row of `lesson_docs` selected as `doc_id, title, pages, sha256`.
pub(super) fn doc_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Doc> {
    Ok(Doc {
        id: r.get(0)?,
        title: r.get(1)?,
        pages: r.get::<_, i64>(2)? as u32,
        sha256: r.get(3)?,
        manifest: None,
    })
}
