//! A lesson's snapshot in the session log: its state in `lessons.state` without the marks, and the
//! marks (up to a few MB of ink) in `lesson_marks`, written only when they changed. SQLite rewrites
//! a whole row when one of its columns changes, so the marks have a table of their own.

use std::time::{Duration, Instant};

use rusqlite::{Connection, params};

use crate::protocol::{LessonState, Marks};

/// How often the lesson's state snapshot is rewritten after a change that counts; a restart replays
/// the patches logged after it.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);
/// How often it is rewritten when only motion came (the pointer, the region, a stroke's points): a
/// restart replays at most this much motion.
const MOTION_SNAPSHOT_EVERY: Duration = Duration::from_secs(30);

/// Whether a lesson's snapshot, last written at `last`, is due again now (`significant`: a change that
/// counts came since).
pub(super) fn due(last: Option<Instant>, significant: bool, now: Instant) -> bool {
    let every = if significant { SNAPSHOT_EVERY } else { MOTION_SNAPSHOT_EVERY };
    last.is_none_or(|at| now.duration_since(at) >= every)
}

/// Lesson `id`'s snapshot as the log holds it: its seq and state.
pub(super) fn load(conn: &Connection, id: i64) -> rusqlite::Result<Option<(u64, LessonState)>> {
    let sql = "SELECT seq, state, (SELECT marks FROM lesson_marks WHERE lesson = lessons.id) FROM lessons WHERE id = ?1";
    let (seq, state, marks): (i64, Option<String>, Option<String>) =
        conn.query_row(sql, [id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(read(state, marks).map(|s| (seq as u64, s)))
}

/// Writes lesson `id`'s snapshot at `seq`; the marks too when `marks_changed`.
pub(super) fn write(
    conn: &Connection,
    id: i64,
    seq: u64,
    state: &LessonState,
    marks_changed: bool,
) -> rusqlite::Result<()> {
    let bare = LessonState { marks: Marks::default(), ..state.clone() };
    let json = serde_json::to_string(&bare).unwrap_or_default();
    conn.prepare_cached("UPDATE lessons SET seq = ?1, state = ?2 WHERE id = ?3")?
        .execute(params![seq as i64, json, id])?;
    if marks_changed {
        let marks = serde_json::to_string(&state.marks).unwrap_or_default();
        conn.prepare_cached("INSERT OR REPLACE INTO lesson_marks (lesson, marks) VALUES (?1, ?2)")?
            .execute(params![id, marks])?;
    }
    Ok(())
}

/// A lesson's snapshot from its rows: the state, with its marks from `lesson_marks` when it has
/// them (a snapshot written before that table holds them in the state).
pub(super) fn read(state: Option<String>, marks: Option<String>) -> Option<LessonState> {
    let mut state = serde_json::from_str::<LessonState>(&state?).ok()?;
    if let Some(marks) = marks.and_then(|m| serde_json::from_str(&m).ok()) {
        state.marks = marks;
    }
    Some(state)
}
