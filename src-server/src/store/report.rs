//! Reading the session log back: lessons, attendance and the timeline, for the CLI and the HTTPS API.
//!
//! Attendance counts a teacher change as "followed" by a student at the first ack whose seq reaches it.
//! Only significant changes count (page, document, highlight, marks, mode, notice; not pointer or
//! region moves), and only those made while the student was connected.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use super::schema::sql;
use crate::error::Result;
pub use crate::protocol::http::LessonSummary;
use crate::protocol::http::TimelineEvent;

/// Every lesson, newest first.
pub fn lessons(conn: &Connection) -> Result<Vec<LessonSummary>> {
    let mut stmt = conn
        .prepare(
            "SELECT l.id, l.room, l.title, l.started_ms, l.ended_ms,
               (SELECT count(*) FROM participants p WHERE p.lesson = l.id AND p.role = 'student'),
               (SELECT count(*) FROM patches c WHERE c.lesson = l.id AND c.patch != '{\"ended\":true}'),
               (SELECT count(*) FROM pointer q WHERE q.lesson = l.id)
             FROM lessons l ORDER BY l.id DESC",
        )
        .map_err(sql)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(LessonSummary {
                id: r.get(0)?,
                room: r.get(1)?,
                title: r.get(2)?,
                started_ms: r.get::<_, i64>(3)? as u64,
                ended_ms: r.get::<_, Option<i64>>(4)?.map(|v| v as u64),
                students: r.get::<_, i64>(5)? as u64,
                changes: r.get::<_, i64>(6)? as u64,
                pointer_moves: r.get::<_, i64>(7)? as u64,
            })
        })
        .map_err(sql)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
}

/// Finds a lesson by log id or room id.
pub fn find(conn: &Connection, key: &str) -> Result<Option<LessonSummary>> {
    let id: Option<i64> = match key.parse::<i64>() {
        Ok(id) => Some(id),
        Err(_) => conn
            .query_row("SELECT id FROM lessons WHERE room = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(sql)?,
    };
    Ok(id.and_then(|id| lessons(conn).ok()?.into_iter().find(|l| l.id == id)))
}

/// One student's attendance.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Attendance {
    /// Participant id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Device id.
    pub device: String,
    /// First join, Unix ms.
    pub first_join_ms: u64,
    /// Last leave, Unix ms (None while still connected).
    pub last_leave_ms: Option<u64>,
    /// Minutes connected.
    pub minutes_present: f64,
    /// Connections that ended before the lesson did.
    pub disconnects: u64,
    /// Significant changes made while the student was connected.
    pub changes: u64,
    /// Share of those followed within 1 s (None when there were none).
    pub followed_within_1s: Option<f64>,
    /// Median follow time, ms.
    pub median_follow_ms: Option<u64>,
    /// 95th percentile follow time, ms.
    pub p95_follow_ms: Option<u64>,
    /// Followed through a relay, from outside the room.
    pub remote: bool,
}

fn percentile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted.get(rank - 1).copied()
}

/// Attendance of every student of a lesson, by name.
pub fn attendance(conn: &Connection, lesson: &LessonSummary) -> Result<Vec<Attendance>> {
    let changes = significant_changes(conn, lesson.id)?;
    let mut spans = by_participant(
        conn,
        lesson.id,
        "SELECT participant, joined_ms, left_ms FROM connections WHERE lesson = ?1 ORDER BY joined_ms",
        |r| Ok((r.get::<_, i64>(1)? as u64, r.get::<_, Option<i64>>(2)?.map(|l| l as u64))),
    )?;
    let mut acks = by_participant(
        conn,
        lesson.id,
        "SELECT participant, seq, time_ms FROM acks WHERE lesson = ?1 ORDER BY participant, seq",
        |r| Ok((r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64)),
    )?;
    let mut stmt = conn
        .prepare(
            "SELECT id, name, device, remote FROM participants WHERE lesson = ?1 AND role = 'student' ORDER BY name, id",
        )
        .map_err(sql)?;
    let students: Vec<(String, String, String, bool)> = stmt
        .query_map([lesson.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .map_err(sql)?
        .collect::<rusqlite::Result<_>>()
        .map_err(sql)?;
    Ok(students
        .into_iter()
        .map(|(id, name, device, remote)| {
            let (spans, acked) =
                (spans.remove(&id).unwrap_or_default(), acks.remove(&id).unwrap_or_default());
            let mut a = attendance_of(lesson, &spans, &acked, &changes);
            (a.id, a.name, a.device, a.remote) = (id, name, device, remote);
            a
        })
        .collect())
}

/// The (seq, time) of every significant change (ending the lesson is not one, nor a move of the
/// teacher's region, which students do not acknowledge).
fn significant_changes(conn: &Connection, lesson: i64) -> Result<Vec<(u64, u64)>> {
    let all = super::timeline::patches(conn, lesson)?;
    let significant = |p: &str| {
        p != r#"{"ended":true}"#
            && serde_json::from_str::<crate::protocol::Patch>(p).map_or(true, |patch| !patch.is_motion())
    };
    Ok(all.into_iter().filter(|(_, _, p)| significant(p)).map(|(s, t, _)| (s, t)).collect())
}

/// Rows of a per-participant query (participant id first), grouped by participant.
fn by_participant<T>(
    conn: &Connection,
    lesson: i64,
    query: &str,
    row: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<HashMap<String, Vec<T>>> {
    let mut out: HashMap<String, Vec<T>> = HashMap::new();
    let mut stmt = conn.prepare(query).map_err(sql)?;
    let rows = stmt.query_map([lesson], |r| Ok((r.get::<_, String>(0)?, row(r)?))).map_err(sql)?;
    for r in rows {
        let (pid, value) = r.map_err(sql)?;
        out.entry(pid).or_default().push(value);
    }
    Ok(out)
}

/// One student's attendance from their connections (joined, left) and acks (seq, time).
fn attendance_of(
    lesson: &LessonSummary,
    spans: &[(u64, Option<u64>)],
    acked: &[(u64, u64)],
    changes: &[(u64, u64)],
) -> Attendance {
    let end = lesson.ended_ms.unwrap_or_else(crate::now_ms);
    let still_here = spans.iter().any(|s| s.1.is_none());
    let present_ms: u64 =
        spans.iter().map(|&(j, l)| l.unwrap_or(end).min(end).saturating_sub(j.max(lesson.started_ms))).sum();
    // Closing at the end of the lesson is not a disconnect; leaving before it is.
    let disconnects =
        spans.iter().filter(|s| s.1.is_some_and(|l| lesson.ended_ms.is_none_or(|e| l < e))).count() as u64;
    let online = |t: u64| spans.iter().any(|&(j, l)| j <= t && l.is_none_or(|l| t < l));
    let mut follow: Vec<u64> = Vec::new();
    let mut seen = 0u64;
    for &(seq, time) in changes.iter().filter(|(_, time)| online(*time)) {
        seen += 1;
        if let Some(&(_, at)) = acked.get(acked.partition_point(|a| a.0 < seq)) {
            follow.push(at.saturating_sub(time));
        }
    }
    let within = follow.iter().filter(|f| **f <= 1_000).count();
    follow.sort_unstable();
    Attendance {
        id: String::new(),
        name: String::new(),
        device: String::new(),
        first_join_ms: spans.iter().map(|s| s.0).min().unwrap_or(lesson.started_ms),
        last_leave_ms: if still_here { None } else { spans.iter().filter_map(|s| s.1).max() },
        minutes_present: (present_ms as f64 / 60_000.0 * 10.0).round() / 10.0,
        disconnects,
        changes: seen,
        followed_within_1s: (seen > 0).then(|| within as f64 / seen as f64),
        median_follow_ms: percentile(&follow, 0.5),
        p95_follow_ms: percentile(&follow, 0.95),
        remote: false,
    }
}

/// RFC 3339 UTC time of a Unix-ms instant.
pub fn iso(ms: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(['=', '+', '-', '@']) {
        // Quote, and defuse spreadsheet formulas in names a student typed.
        let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_string() };
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Attendance as CSV, one row per student.
pub fn attendance_csv(rows: &[Attendance]) -> String {
    let mut out = String::from(
        "name,device,first_join,last_leave,minutes_present,disconnects,changes,followed_within_1s,median_follow_ms,p95_follow_ms,remote\n",
    );
    for r in rows {
        let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        out.push_str(&format!(
            "{},{},{},{},{:.1},{},{},{},{},{},{}\n",
            csv_field(&r.name),
            csv_field(&r.device),
            iso(r.first_join_ms),
            r.last_leave_ms.map(iso).unwrap_or_default(),
            r.minutes_present,
            r.disconnects,
            r.changes,
            r.followed_within_1s.map(|f| format!("{f:.3}")).unwrap_or_default(),
            opt(r.median_follow_ms),
            opt(r.p95_follow_ms),
            if r.remote { "yes" } else { "no" },
        ));
    }
    out
}

fn minutes(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}", s / 60, s % 60)
}

/// The lesson list as a terminal table.
pub fn list_table(lessons: &[LessonSummary]) -> String {
    let mut out = format!(
        "{:>4}  {:<20}  {:<9}  {:>8}  {:>7}  {}\n",
        "id", "started (UTC)", "length", "students", "changes", "title"
    );
    for l in lessons {
        let length = match l.ended_ms {
            Some(end) => minutes(end.saturating_sub(l.started_ms)),
            None => "open".into(),
        };
        out.push_str(&format!(
            "{:>4}  {:<20}  {:<9}  {:>8}  {:>7}  {}\n",
            l.id,
            iso(l.started_ms),
            length,
            l.students,
            l.changes,
            l.title
        ));
    }
    if lessons.is_empty() {
        out.push_str("(no lessons yet)\n");
    }
    out
}

/// A lesson's timeline and attendance for the terminal.
pub fn show(conn: &Connection, lesson: &LessonSummary) -> Result<String> {
    let mut out = format!(
        "Lesson {} \"{}\" (room {})\nStarted {}{}\n\nTimeline (minutes:seconds from the start)\n",
        lesson.id,
        lesson.title,
        lesson.room,
        iso(lesson.started_ms),
        lesson
            .ended_ms
            .map(|e| format!(", ended {} ({} long)", iso(e), minutes(e.saturating_sub(lesson.started_ms))))
            .unwrap_or_else(|| ", still open".into()),
    );
    let mut pointer_moves = 0;
    for e in super::timeline::timeline(conn, lesson)?.events {
        let at = minutes(e.time().saturating_sub(lesson.started_ms));
        let line = match e {
            TimelineEvent::Join { name, .. } => format!("{name} joined"),
            TimelineEvent::Leave { name, .. } => format!("{name} left"),
            TimelineEvent::Hand { name, up, .. } => {
                format!("{name} {} a hand", if up { "raised" } else { "lowered" })
            }
            TimelineEvent::Change { seq, patch, .. } => {
                format!("change {seq}: {}", serde_json::to_string(&patch).unwrap_or_default())
            }
            TimelineEvent::Pointer { moves, .. } => {
                pointer_moves += moves;
                continue;
            }
        };
        out.push_str(&format!("  {at}  {line}\n"));
    }
    out.push_str(&format!("  ({pointer_moves} pointer moves not listed)\n\nAttendance\n"));
    out.push_str(&format!(
        "  {:<24} {:>7} {:>11} {:>8} {:>9} {:>9}\n",
        "name", "minutes", "disconnects", "≤1s", "median ms", "p95 ms"
    ));
    for a in attendance(conn, lesson)? {
        let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "  {:<24} {:>7.1} {:>11} {:>8} {:>9} {:>9}\n",
            a.name,
            a.minutes_present,
            a.disconnects,
            a.followed_within_1s.map(|f| format!("{:.0}%", f * 100.0)).unwrap_or_else(|| "-".into()),
            opt(a.median_follow_ms),
            opt(a.p95_follow_ms),
        ));
    }
    Ok(out)
}
