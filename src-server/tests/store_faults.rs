//! Protects the lesson from its disk: a session log that cannot be written (locked, full) never stops
//! the lesson; `/healthz` says "degraded" with the reason, `ok` says the change is not durable yet, and
//! everything kept in memory is written once the disk is back. A corrupt database, or one from a newer
//! Lectern, gets a clear message at start instead of a panic. Old lessons are pruned at start.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use std::process::Command;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use common::{TestServer, device};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn health(server: &TestServer) -> Value {
    let req = Request::get("/healthz").body(Body::empty()).unwrap();
    let res = lectern::server::http::router(server.app().clone()).oneshot(req).await.unwrap();
    serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap()
}

fn logged_patches(db: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("SELECT (SELECT count(*) FROM patches) + (SELECT count(*) FROM pointer)", [], |r| r.get(0))
        .unwrap()
}

/// Sends changes until one is answered `ok` with `durable: false`; checks students got each at once.
async fn until_not_durable(t: &mut common::Raw, s: &mut common::Raw) -> u64 {
    for i in 1..=200u64 {
        t.send(json!({"t":"set","id":i,"patch":{"page": i % 12 + 1, "notice": "x".repeat(250)}})).await;
        let patch = s.recv_type("patch").await;
        assert_eq!(patch["seq"], i, "the student is not held back by the disk");
        let ok = t.recv_type("ok").await;
        if ok["durable"] == false {
            return i;
        }
    }
    panic!("the log never failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_degrades_the_log_not_the_lesson() {
    let server = TestServer::start().await;
    let db = server.dir.path().join("lectern.db");
    let (mut t, _) = server.teacher().await;
    let (mut s, _) = server.student("A", &device(1)).await;
    assert_eq!(health(&server).await["status"], "ok");

    // Another program holds the write lock.
    let locker = rusqlite::Connection::open(&db).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let sent = until_not_durable(&mut t, &mut s).await;
    let h = health(&server).await;
    assert_eq!(h["status"], "degraded");
    assert!(h["reason"].as_str().unwrap().contains("locked"), "{h}");
    // More changes while degraded still reach students at once.
    for i in sent + 1..=sent + 5 {
        t.send(json!({"t":"set","id":i,"patch":{"zoom": 1.5}})).await;
        assert_eq!(s.recv_type("patch").await["seq"], i);
    }

    locker.execute_batch("ROLLBACK").unwrap();
    drop(locker);
    assert!(server.app().store.flush(Duration::from_secs(10)), "the kept records are written");
    assert_eq!(health(&server).await["status"], "ok");
    assert_eq!(logged_patches(&db), (sent + 5) as i64, "nothing was lost");
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: the store's writer thread may still hold the database open.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_degrades_the_log_and_nothing_is_lost_when_space_returns() {
    if !is_root() {
        eprintln!("SKIPPED: mounting a small tmpfs needs root (CI runs as root)");
        return;
    }
    let mount = tempfile::tempdir().unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(mount.path())
        .status()
        .unwrap();
    assert!(ok.success(), "mount tmpfs");
    let _guard = Tmpfs(mount.path().to_path_buf());
    let data = tempfile::tempdir_in(mount.path()).unwrap();
    let server = TestServer::in_dir(data, |_, _| {}, "127.0.0.1:0").await;
    let db = server.dir.path().join("lectern.db");
    let (mut t, _) = server.teacher().await;
    let (mut s, _) = server.student("A", &device(1)).await;

    // Fill the disk.
    let filler = mount.path().join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 4 << 20]);
    assert!(std::fs::metadata(&filler).is_ok());
    let sent = until_not_durable(&mut t, &mut s).await;
    let h = health(&server).await;
    assert_eq!(h["status"], "degraded");
    assert!(h["reason"].as_str().unwrap().contains(" full"), "{h}");

    std::fs::remove_file(&filler).unwrap();
    assert!(server.app().store.flush(Duration::from_secs(10)));
    assert_eq!(health(&server).await["status"], "ok");
    assert_eq!(logged_patches(&db), sent as i64, "every change was written once space returned");
}

fn serve_fails(dir: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lectern"))
        .args(["serve", "--json", "--no-mdns", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn a_corrupt_database_gets_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lectern.db"), b"this is not a database, it was overwritten".repeat(200))
        .unwrap();
    let stderr = serve_fails(dir.path());
    assert!(stderr.contains("move it aside"), "{stderr}");
}

#[test]
fn a_database_from_a_newer_lectern_gets_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("lectern.db")).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let stderr = serve_fails(dir.path());
    assert!(stderr.contains("newer Lectern"), "{stderr}");
}

#[tokio::test]
async fn lessons_older_than_keep_days_are_pruned_at_start() {
    let server = TestServer::start().await;
    let (mut t, _) = server.teacher().await;
    t.send(json!({"t":"end","id":1})).await;
    t.until_end().await;
    let dir = server.stop().await;
    let db = dir.path().join("lectern.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute("UPDATE lessons SET ended_ms = 1000, started_ms = 500", []).unwrap();
    drop(conn);
    let config = lectern::config::Config { data_dir: Some(dir.path().to_path_buf()), ..Default::default() };
    let _ = lectern::server::setup::prepare(&config).unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let old: i64 =
        conn.query_row("SELECT count(*) FROM lessons WHERE ended_ms = 1000", [], |r| r.get(0)).unwrap();
    assert_eq!(old, 0, "the 1970 lesson was pruned");
}
