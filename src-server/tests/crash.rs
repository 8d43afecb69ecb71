//! Protects a lesson from a crash or power loss of the teacher's device: `kill -9` the real server, start
//! it again on the same data directory, and the lesson continues with the same room, code, certificate,
//! key, state and seq; resume tokens still work; every change the teacher got `ok` for is in the log.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use std::process::Command;

use common::{Raw, connected, port_of, serve_binary};
use lectern::client::{Client, ClientOptions, Credentials};
use lectern::protocol::{Pos, SetPatch};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_nothing_the_teacher_saw_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (server, ready) = serve_binary(dir.path(), "127.0.0.1:0", &["--code", "482913"]);
    let port = port_of(&ready);

    let mut student = Client::start(ClientOptions::new(
        ready.ws.clone(),
        ready.fingerprint.clone(),
        Credentials::Student { code: ready.code.clone(), name: "Hafsa".into() },
        "crash-student-0001",
    ));
    let you = connected(&mut student).await;
    let mut teacher = Client::start(ClientOptions::new(
        ready.ws.clone(),
        ready.fingerprint.clone(),
        Credentials::Teacher { key: ready.teacher_key.clone() },
        "crash-teacher-0001",
    ));
    connected(&mut teacher).await;
    let mut last_ok = 0;
    for i in 1..=60u32 {
        let patch = if i % 3 == 0 {
            SetPatch {
                page: Some(i / 3 % 12 + 1),
                notice: Some(Some(format!("change {i}"))),
                ..SetPatch::default()
            }
        } else {
            SetPatch { pos: Some(Some(Pos { x: f64::from(i) / 100.0, y: 0.5 })), ..SetPatch::default() }
        };
        last_ok = teacher.set(patch).await.unwrap();
    }
    assert_eq!(last_ok, 60);

    // Power cut: no shutdown, no flush.
    server.signal("-KILL");
    assert!(!server.wait_exit(std::time::Duration::from_secs(5)).success());

    let (_server, again) = serve_binary(dir.path(), &format!("127.0.0.1:{port}"), &["--code", "482913"]);
    assert_eq!(again.room, ready.room);
    assert_eq!(again.code, ready.code);
    assert_eq!(again.fingerprint, ready.fingerprint);
    assert_eq!(again.teacher_key, ready.teacher_key);

    // The state and seq continue where the last ok left them.
    let ws = lectern::client::connect(&again.ws, &again.fingerprint).await.unwrap();
    let mut raw = Raw { ws };
    raw.send(
        json!({"t":"hello","v":1,"role":"teacher","key":again.teacher_key,"device":"crash-teacher-0002"}),
    )
    .await;
    let welcome = raw.recv_type("welcome").await;
    assert!(welcome["seq"].as_u64().unwrap() >= last_ok, "seq went back past an ok: {welcome}");
    assert_eq!(welcome["state"]["page"], 60 / 3 % 12 + 1);
    assert_eq!(welcome["state"]["notice"], "change 60");
    assert_eq!(welcome["state"]["pos"]["x"], 0.59);

    // The student's client resumes on its own with its token: same participant.
    let back = connected(&mut student).await;
    assert_eq!(back.id, you.id);
    raw.send(json!({"t":"set","id":1,"patch":{"page":5}})).await;
    assert_eq!(raw.recv_type("ok").await["seq"], 61, "seq continues");

    // Every acknowledged change is in the log.
    let out = Command::new(env!("CARGO_BIN_EXE_lectern"))
        .args(["sessions", "export", &again.room, "--format", "json", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let log: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut seqs: Vec<u64> = Vec::new();
    let mut pointer_moves = 0;
    for e in log["events"].as_array().unwrap() {
        match e["type"].as_str() {
            Some("change") => seqs.push(e["seq"].as_u64().unwrap()),
            Some("pointer") => {
                pointer_moves += e["moves"].as_u64().unwrap();
                seqs.extend(e["from_seq"].as_u64().unwrap()..=e["to_seq"].as_u64().unwrap());
            }
            _ => {}
        }
    }
    assert_eq!(pointer_moves, 40, "every pointer move the teacher got ok for is logged");
    seqs.sort_unstable();
    seqs.dedup();
    let wanted: Vec<u64> = (1..=60).collect();
    assert!(
        wanted.iter().all(|s| seqs.contains(s)),
        "missing from the log: {:?}",
        wanted.iter().filter(|s| !seqs.contains(s)).collect::<Vec<_>>()
    );
    student.close().await;
    teacher.close().await;
}

/// The marks (highlights and ink) are kept in a table of their own, written when they change, while the
/// rest of the state is rewritten as pages turn: through a crash, then a clean restart, the page's
/// ink is all there, and so is what came after the last snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ink_survives_a_crash_and_a_restart_after_page_turns() {
    let dir = tempfile::tempdir().unwrap();
    let (server, ready) = serve_binary(dir.path(), "127.0.0.1:0", &["--code", "482913"]);
    let port = port_of(&ready);
    let hello = |ready: &lectern::protocol::http::Ready, device: &str| json!({"t":"hello","v":1,"role":"teacher","key":ready.teacher_key,"device":device});
    let ws = lectern::client::connect(&ready.ws, &ready.fingerprint).await.unwrap();
    let mut raw = Raw { ws };
    raw.send(hello(&ready, "ink-teacher-0001")).await;
    raw.recv_type("welcome").await;
    let stroke = |id: u32, y: u16| {
        let points = vec![[1000, y, 50], [9000, y, 60]];
        let yn = f64::from(y) / 10_000.0;
        json!({"op":"add","page":2,"mark":{"id":id,"x":0.1,"y":yn,"w":0.8,"h":0.0,"ink":{"color":"red","width":4,"points":points}}})
    };
    raw.send(json!({"t":"set","id":1,"patch":{"page":2,"marks":[stroke(1, 2000), stroke(2, 4000)]}})).await;
    raw.recv_type("ok").await;
    // Page turns after the marks: the state is written again; the marks' column is not.
    for (i, page) in [3, 4, 2].into_iter().enumerate() {
        raw.send(json!({"t":"set","id":2 + i,"patch":{"page":page}})).await;
        raw.recv_type("ok").await;
    }
    raw.send(json!({"t":"set","id":9,"patch":{"marks":[stroke(3, 6000)]}})).await;
    raw.recv_type("ok").await;
    server.signal("-KILL");
    assert!(!server.wait_exit(std::time::Duration::from_secs(5)).success());

    let (server, again) = serve_binary(dir.path(), &format!("127.0.0.1:{port}"), &["--code", "482913"]);
    let ws = lectern::client::connect(&again.ws, &again.fingerprint).await.unwrap();
    let mut raw = Raw { ws };
    raw.send(hello(&again, "ink-teacher-0002")).await;
    let welcome = raw.recv_type("welcome").await;
    let ids = |w: &Value| {
        w["state"]["marks"]["2"]
            .as_array()
            .map(|l| l.iter().map(|m| m["id"].as_u64().unwrap()).collect::<Vec<_>>())
    };
    assert_eq!(ids(&welcome), Some(vec![1, 2, 3]), "after the crash: {}", welcome["state"]);
    assert_eq!(welcome["state"]["page"], 2);
    drop(raw);
    server.signal("-TERM");
    assert!(server.wait_exit(std::time::Duration::from_secs(5)).success());

    let (_server, third) = serve_binary(dir.path(), &format!("127.0.0.1:{port}"), &["--code", "482913"]);
    let ws = lectern::client::connect(&third.ws, &third.fingerprint).await.unwrap();
    let mut raw = Raw { ws };
    raw.send(hello(&third, "ink-teacher-0003")).await;
    let welcome = raw.recv_type("welcome").await;
    assert_eq!(ids(&welcome), Some(vec![1, 2, 3]), "after a clean restart: {}", welcome["state"]);
}
