//! `lectern-store-bench`: writes one simulated hour of a 30-student lesson with a 60 Hz pointer through
//! the real SQLite store, as fast as it will go, and reports write throughput and the database's size.
//!
//! The records are what the room would send for such a lesson: 30 joins and leaves, 216,000 pointer
//! moves, a page turn every 30 s, each student's ack of each page turn (the room logs only acks that
//! cross a significant change), and a few hands.

use std::time::{Duration, Instant};

use anyhow::Context;
use lectern::engine::report::{Event as Record, LessonRecord, Report, ReportSink};
use lectern::protocol::Role;
use lectern::protocol::{LessonState, Patch, Pos};
use lectern::store::SqliteStore;

fn main() -> anyhow::Result<()> {
    let dir = std::env::args().nth(1).map(std::path::PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let path = dir.join(format!("store-hour-{}.db", std::process::id()));
    let store = SqliteStore::open(&path, true, None)?;
    let room = "r-bench";
    let t0: u64 = 1_763_750_000_000;
    let lesson = LessonRecord {
        room: room.into(),
        title: "Simulated hour".into(),
        code: "123456".into(),
        started_ms: t0,
        ended_ms: None,
        doc: None,
        revoked: vec![],
        waiting_room: false,
    };
    store.save_lesson(&lesson, Some((0, &LessonState::new(None))));
    let students = 30u64;
    let start = Instant::now();
    let mut records = 0u64;
    let mut patches = 0u64;
    let push = |r: Record, records: &mut u64| {
        if store.offer(Report { room: std::sync::Arc::from(room), event: r }).is_err() {
            panic!("the store refused a record");
        }
        *records += 1;
        if (*records).is_multiple_of(20_000) {
            // Stay under the queue's bound: this measures the writer, not the queue.
            assert!(store.flush(Duration::from_secs(60)), "flush");
        }
    };
    for s in 0..students {
        push(
            Record::Joined {
                conn: s,
                pid: format!("p{s}"),
                role: Role::Student,
                name: format!("Student {s}"),
                device: format!("device-{s:04}"),
                remote: false,
                token_hash: "0".repeat(64),
                addr: Some(std::net::IpAddr::from([10, 0, 0, s as u8 + 2])),
                time: t0,
            },
            &mut records,
        );
    }
    for tick in 0..(3600 * 60u64) {
        let time = t0 + tick * 1000 / 60;
        let seq = tick + 1;
        patches += 1;
        if tick % (30 * 60) == 0 {
            push(
                Record::Patch {
                    seq,
                    time,
                    patch: Patch { page: Some((tick / 1800 % 600 + 1) as u32), ..Default::default() },
                    done: None,
                },
                &mut records,
            );
            for s in 0..students {
                push(Record::Ack { pid: format!("p{s}"), seq, time: time + 40 + s * 3 }, &mut records);
            }
        } else {
            let x = (tick % 600) as f64 / 600.0;
            push(
                Record::Patch {
                    seq,
                    time,
                    patch: Patch { pos: Some(Some(Pos { x, y: 1.0 - x })), ..Default::default() },
                    done: None,
                },
                &mut records,
            );
        }
        if tick % (60 * 60) == 0 {
            push(Record::Hand { pid: format!("p{}", tick % students), up: true, time }, &mut records);
        }
    }
    for s in 0..students {
        push(Record::Left { conn: s, time: t0 + 3_600_000 }, &mut records);
    }
    anyhow::ensure!(store.flush(Duration::from_secs(60)), "final flush");
    let elapsed = start.elapsed().as_secs_f64();
    drop(store);
    let conn = rusqlite::Connection::open(&path)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    let logged: i64 =
        conn.query_row("SELECT (SELECT count(*) FROM patches) + (SELECT count(*) FROM pointer)", [], |r| {
            r.get(0)
        })?;
    drop(conn);
    let size = std::fs::metadata(&path).context("db size")?.len();
    anyhow::ensure!(logged as u64 == patches, "{logged} of {patches} patches logged");
    println!(
        "{{\"records\":{records},\"patches\":{patches},\"seconds\":{elapsed:.2},\"records_per_s\":{:.0},\"patches_per_s\":{:.0},\"db_bytes\":{size},\"db_mib_per_hour\":{:.2}}}",
        records as f64 / elapsed,
        patches as f64 / elapsed,
        size as f64 / (1024.0 * 1024.0)
    );
    let _ = std::fs::remove_file(&path);
    Ok(())
}
