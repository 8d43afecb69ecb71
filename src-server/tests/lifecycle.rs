//! Protects embedding: the app starts and stops the server inside its own process, on whatever tokio
//! runtime it has. Twenty starts and stops on one data directory, each on a fresh current-thread
//! runtime, must leave no thread and no file descriptor behind, and each start must continue the
//! lesson the last stop flushed (so no two session-log writers ever overlapped).
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use futures_util::{SinkExt, StreamExt};
use lectern::config::{Limits, Timing};
use lectern::server::Server;
use tokio_tungstenite::tungstenite::Message;

fn fd_targets() -> Vec<String> {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .map(|p| p.display().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// One start, one teacher change, one stop; returns the seq the change got.
async fn one_lesson(dir: &std::path::Path) -> u64 {
    let config = common::test_config(dir, Limits::default(), Timing::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::start(&config, listener).unwrap();
    let ready = server.ready().clone();
    let mut ws = lectern::client::connect(&ready.ws, &ready.fingerprint).await.unwrap();
    let hello = lectern::protocol::ClientMsg::Hello(lectern::protocol::Hello {
        v: Some(1.into()),
        role: Some("teacher".into()),
        key: Some(ready.teacher_key.clone()),
        device: Some("lifecycle-teacher".into()),
        ..Default::default()
    });
    ws.send(Message::text(serde_json::to_string(&hello).unwrap())).await.unwrap();
    let set = r#"{"t":"set","id":1,"patch":{"notice":"again"}}"#;
    ws.send(Message::text(set)).await.unwrap();
    let seq = loop {
        let Some(Ok(msg)) = ws.next().await else { panic!("connection ended before the ok") };
        let Message::Text(t) = msg else { continue }; // pings and tail probes
        if let Ok(lectern::protocol::ServerMsg::Ok { seq: Some(seq), .. }) = serde_json::from_str(&t) {
            break seq;
        }
    };
    server.wait_stopped().await;
    // The server closed the socket with 4503; read it to the end so the client's descriptor goes too.
    while let Some(Ok(_)) = ws.next().await {}
    seq
}

#[test]
fn twenty_starts_and_stops_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let run = |dir: &std::path::Path| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let seq = rt.block_on(one_lesson(dir));
        drop(rt);
        seq
    };
    // The first start creates the certificate, key and database; count from after it. A thread of
    // the runtime's blocking pool may still be on its way out when a count is taken (one at most);
    // anything a server leaves behind would pile up over twenty starts instead.
    let mut last = run(dir.path());
    let threads = count("/proc/self/task");
    let fds = count("/proc/self/fd");
    for i in 0..20 {
        let seq = run(dir.path());
        assert_eq!(seq, last + 1, "each start continues the lesson the last one flushed");
        last = seq;
        let (t, f) = (count("/proc/self/task"), count("/proc/self/fd"));
        assert!(
            t <= threads + 1,
            "after {} stops, {t} threads (from {threads}): a thread outlived its server",
            i + 1
        );
        assert!(
            f <= fds + 1,
            "after {} stops, {f} descriptors (from {fds}): one outlived its server: {:?}",
            i + 1,
            fd_targets()
        );
    }
}
