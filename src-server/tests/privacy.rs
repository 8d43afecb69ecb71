//! The data directory is private (issue 15, finding 5): it holds the join code, device ids, names and
//! IP addresses, so the directory is 0700 and the session database with its -wal and -shm files 0600,
//! for an existing install made before this rule too.
#![cfg(unix)]
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{TestServer, device};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[tokio::test]
async fn the_data_directory_and_the_session_database_are_readable_by_their_owner_only() {
    // An install from before: a world-readable directory and database.
    let server = TestServer::start().await;
    let _ = server.student("Amina", &device(1)).await; // something personal in the log
    let dir = server.stop().await;
    let db = dir.path().join("lectern.db");
    set_mode(dir.path(), 0o755);
    set_mode(&db, 0o644);

    let server = TestServer::in_dir(dir, |_, _| {}, "127.0.0.1:0").await;
    let _ = server.student("Yusuf", &device(2)).await;
    let path = server.dir.path().to_path_buf();
    assert_eq!(mode(&path), 0o700, "the data directory");
    for name in ["lectern.db", "lectern.db-wal", "lectern.db-shm"] {
        let file = path.join(name);
        if file.exists() {
            assert_eq!(mode(&file), 0o600, "{name}");
        } else {
            assert_ne!(name, "lectern.db", "the session database exists");
        }
    }
    server.stop().await;
}

/// Every hex rendering of `secret`'s bytes, as a frame dump would show them.
fn hex(secret: &str) -> String {
    secret.bytes().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_log_even_at_trace_level() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("trace.log");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lectern"));
    cmd.args(["serve", "--json", "--no-mdns", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("LECTERN_LOG", "trace,tungstenite::protocol=trace")
        .stderr(std::fs::File::create(&log_path).unwrap());
    let (process, ready) = common::ServeProcess::spawn(cmd);

    // A teacher (its key), a student (the code), and the student back with its resume token.
    let say = |v: serde_json::Value| Message::text(v.to_string());
    let mut teacher = lectern::client::connect(&ready.ws, &ready.fingerprint).await.unwrap();
    let hello = serde_json::json!({"t":"hello","v":1,"role":"teacher","key":ready.teacher_key,"device":"log-teacher-01"});
    teacher.send(say(hello)).await.unwrap();
    let mut student = lectern::client::connect(&ready.ws, &ready.fingerprint).await.unwrap();
    let hello = serde_json::json!({"t":"hello","v":1,"role":"student","code":ready.code,"name":"Maryam","device":"log-student-01"});
    student.send(say(hello)).await.unwrap();
    let token = loop {
        let Some(Ok(Message::Text(t))) = student.next().await else { panic!("no welcome") };
        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
        if v["t"] == "welcome" {
            break v["token"].as_str().unwrap().to_string();
        }
    };
    drop(student);
    let mut again = lectern::client::connect(&ready.ws, &ready.fingerprint).await.unwrap();
    let hello =
        serde_json::json!({"t":"hello","v":1,"role":"student","resume":token,"device":"log-student-01"});
    again.send(say(hello)).await.unwrap();
    loop {
        let Some(Ok(Message::Text(t))) = again.next().await else { panic!("no welcome on resume") };
        if t.contains("\"welcome\"") {
            break;
        }
    }
    teacher.close(None).await.unwrap();
    process.signal("-TERM");
    let _ = process.wait_exit(std::time::Duration::from_secs(10));

    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("TRACE"), "the log was at trace level");
    for (what, secret) in
        [("teacher key", &ready.teacher_key), ("join code", &ready.code), ("resume token", &token)]
    {
        assert!(!log.contains(secret.as_str()), "the {what} is in the log");
        assert!(!log.contains(&hex(secret)), "the {what} is in the log, in hex");
    }
}
