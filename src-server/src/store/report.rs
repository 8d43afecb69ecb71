//! Reading the session log back: lessons, attendance and the timeline, for the CLI and the HTTPS API.
//!
//! Attendance counts a teacher change as "followed" by a student at the first ack whose seq reaches it.
//! Only significant changes count (page, document, highlight, zoom, mode, notice; not pointer moves), and
//! only those made while the student was connected.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{Error, Result};
pub use crate::protocol::http::LessonSummary;

fn sql(e: rusqlite::Error) -> Error {
    Error::Log(format!("reading the session log: {e}"))
}

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
    let now = crate::now_ms();
    let end = lesson.ended_ms.unwrap_or(now);
    let mut stmt = conn
        .prepare("SELECT seq, time_ms, patch FROM patches WHERE lesson = ?1 ORDER BY seq")
        .map_err(sql)?;
    let changes: Vec<(u64, u64)> = stmt
        .query_map([lesson.id], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64, r.get::<_, String>(2)?))
        })
        .map_err(sql)?
        .filter_map(|r| r.ok())
        .filter(|(_, _, p)| p != r#"{"ended":true}"#)
        .map(|(s, t, _)| (s, t))
        .collect();

    let mut conns: HashMap<String, Vec<(u64, Option<u64>)>> = HashMap::new();
    let mut stmt = conn
        .prepare(
            "SELECT participant, joined_ms, left_ms FROM connections WHERE lesson = ?1 ORDER BY joined_ms",
        )
        .map_err(sql)?;
    for row in stmt
        .query_map([lesson.id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64, r.get::<_, Option<i64>>(2)?))
        })
        .map_err(sql)?
    {
        let (pid, joined, left) = row.map_err(sql)?;
        conns.entry(pid).or_default().push((joined, left.map(|l| l as u64)));
    }
    let mut acks: HashMap<String, Vec<(u64, u64)>> = HashMap::new();
    let mut stmt = conn
        .prepare("SELECT participant, seq, time_ms FROM acks WHERE lesson = ?1 ORDER BY participant, seq")
        .map_err(sql)?;
    for row in stmt
        .query_map([lesson.id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64))
        })
        .map_err(sql)?
    {
        let (pid, seq, time) = row.map_err(sql)?;
        acks.entry(pid).or_default().push((seq, time));
    }

    let mut stmt = conn
        .prepare("SELECT id, name, device FROM participants WHERE lesson = ?1 AND role = 'student' ORDER BY name, id")
        .map_err(sql)?;
    let students: Vec<(String, String, String)> = stmt
        .query_map([lesson.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(sql)?
        .collect::<rusqlite::Result<_>>()
        .map_err(sql)?;

    let mut out = Vec::with_capacity(students.len());
    for (pid, name, device) in students {
        let spans = conns.remove(&pid).unwrap_or_default();
        let acked = acks.remove(&pid).unwrap_or_default();
        let first_join = spans.iter().map(|s| s.0).min().unwrap_or(lesson.started_ms);
        let still_here = spans.iter().any(|s| s.1.is_none());
        let last_leave = if still_here { None } else { spans.iter().filter_map(|s| s.1).max() };
        let present_ms: u64 = spans
            .iter()
            .map(|&(j, l)| l.unwrap_or(end).min(end).saturating_sub(j.max(lesson.started_ms)))
            .sum();
        // Closing at the end of the lesson is not a disconnect; leaving before it is.
        let disconnects =
            spans.iter().filter(|s| s.1.is_some_and(|l| lesson.ended_ms.is_none_or(|e| l < e))).count()
                as u64;
        let online = |t: u64| spans.iter().any(|&(j, l)| j <= t && l.is_none_or(|l| t < l));
        let mut follow: Vec<u64> = Vec::new();
        let mut seen = 0u64;
        for &(seq, time) in &changes {
            if !online(time) {
                continue;
            }
            seen += 1;
            let i = acked.partition_point(|a| a.0 < seq);
            if let Some(&(_, at)) = acked.get(i) {
                follow.push(at.saturating_sub(time));
            }
        }
        let within = follow.iter().filter(|f| **f <= 1_000).count();
        follow.sort_unstable();
        out.push(Attendance {
            id: pid,
            name,
            device,
            first_join_ms: first_join,
            last_leave_ms: last_leave,
            minutes_present: (present_ms as f64 / 60_000.0 * 10.0).round() / 10.0,
            disconnects,
            changes: seen,
            followed_within_1s: (seen > 0).then(|| within as f64 / seen as f64),
            median_follow_ms: percentile(&follow, 0.5),
            p95_follow_ms: percentile(&follow, 0.95),
        });
    }
    Ok(out)
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
        "name,device,first_join,last_leave,minutes_present,disconnects,changes,followed_within_1s,median_follow_ms,p95_follow_ms\n",
    );
    for r in rows {
        let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        out.push_str(&format!(
            "{},{},{},{},{:.1},{},{},{},{},{}\n",
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
        ));
    }
    out
}

/// What was shown when, who came and went, and hands; pointer moves are summarized per 10 seconds.
pub fn timeline(conn: &Connection, lesson: &LessonSummary) -> Result<Value> {
    let mut events: Vec<(u64, Value)> = Vec::new();
    let mut names: HashMap<String, String> = HashMap::new();
    let mut stmt = conn.prepare("SELECT id, name, role FROM participants WHERE lesson = ?1").map_err(sql)?;
    for row in stmt
        .query_map([lesson.id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
        })
        .map_err(sql)?
    {
        let (id, name, _role) = row.map_err(sql)?;
        names.insert(id, name);
    }
    let name = |pid: &str| names.get(pid).cloned().unwrap_or_default();
    let mut stmt = conn
        .prepare("SELECT participant, joined_ms, left_ms, addr FROM connections WHERE lesson = ?1")
        .map_err(sql)?;
    for row in stmt
        .query_map([lesson.id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)? as u64,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })
        .map_err(sql)?
    {
        let (pid, joined, left, addr) = row.map_err(sql)?;
        events.push((
            joined,
            json!({"time": joined, "type": "join", "participant": pid, "name": name(&pid), "addr": addr}),
        ));
        if let Some(left) = left {
            events.push((
                left as u64,
                json!({"time": left, "type": "leave", "participant": pid, "name": name(&pid)}),
            ));
        }
    }
    let mut stmt = conn
        .prepare("SELECT seq, time_ms, patch FROM patches WHERE lesson = ?1 ORDER BY seq")
        .map_err(sql)?;
    for row in stmt
        .query_map([lesson.id], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)? as u64, r.get::<_, String>(2)?))
        })
        .map_err(sql)?
    {
        let (seq, time, patch) = row.map_err(sql)?;
        let patch: Value = serde_json::from_str(&patch).unwrap_or(Value::Null);
        events.push((time, json!({"time": time, "type": "change", "seq": seq, "patch": patch})));
    }
    let mut stmt = conn
        .prepare(
            "SELECT time_ms / 10000, min(time_ms), min(seq), max(seq), count(*) FROM pointer WHERE lesson = ?1
             GROUP BY time_ms / 10000 ORDER BY 1",
        )
        .map_err(sql)?;
    for row in stmt
        .query_map([lesson.id], |r| {
            Ok((r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?, r.get::<_, i64>(4)?))
        })
        .map_err(sql)?
    {
        let (time, from, to, n) = row.map_err(sql)?;
        events.push((
            time,
            json!({"time": time, "type": "pointer", "from_seq": from, "to_seq": to, "moves": n}),
        ));
    }
    let mut stmt =
        conn.prepare("SELECT participant, time_ms, up FROM hands WHERE lesson = ?1").map_err(sql)?;
    for row in stmt
        .query_map([lesson.id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64, r.get::<_, bool>(2)?))
        })
        .map_err(sql)?
    {
        let (pid, time, up) = row.map_err(sql)?;
        events.push((
            time,
            json!({"time": time, "type": "hand", "participant": pid, "name": name(&pid), "up": up}),
        ));
    }
    events.sort_by_key(|(t, _)| *t);
    let mut docs = Vec::new();
    let mut stmt = conn
        .prepare(
            "SELECT doc_id, title, pages, sha256 FROM lesson_docs WHERE lesson = ?1 ORDER BY first_shown_ms",
        )
        .map_err(sql)?;
    for row in stmt
        .query_map([lesson.id], |r| {
            Ok(json!({"id": r.get::<_, String>(0)?, "title": r.get::<_, String>(1)?, "pages": r.get::<_, i64>(2)?,
                "sha256": r.get::<_, String>(3)?}))
        })
        .map_err(sql)?
    {
        docs.push(row.map_err(sql)?);
    }
    Ok(json!({
        "lesson": lesson,
        "documents": docs,
        "events": events.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
    }))
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
    let timeline = timeline(conn, lesson)?;
    let mut pointer_moves = 0;
    for e in timeline["events"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let at = minutes(e["time"].as_u64().unwrap_or(0).saturating_sub(lesson.started_ms));
        let line = match e["type"].as_str().unwrap_or_default() {
            "join" => format!("{} joined", e["name"].as_str().unwrap_or("?")),
            "leave" => format!("{} left", e["name"].as_str().unwrap_or("?")),
            "hand" => format!(
                "{} {} a hand",
                e["name"].as_str().unwrap_or("?"),
                if e["up"] == true { "raised" } else { "lowered" }
            ),
            "change" => format!("change {}: {}", e["seq"], e["patch"]),
            "pointer" => {
                pointer_moves += e["moves"].as_u64().unwrap_or(0);
                continue;
            }
            _ => continue,
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
