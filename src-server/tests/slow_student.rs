//! Protects the fan-out from a slow tablet: a student that stops reading gets one `sync` with the latest
//! state instead of a backlog, is not disconnected, and the other 29 receive every patch undisturbed.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use std::time::Duration;

use common::{CODE, TestServer, device};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_student_gets_a_snapshot_and_the_others_are_unaffected() {
    const CHANGES: u64 = 1500;
    let server = TestServer::with(|l, t| {
        l.queue_capacity = 64;
        l.teacher_rate = 100_000;
        l.teacher_burst = 100_000;
        // The stalled student sends nothing while stalled; keep it well inside the liveness window.
        t.heartbeat = Duration::from_secs(120);
    })
    .await;

    // The stalled student: a tiny receive buffer, so the server's socket fills quickly once it stops reading.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(format!("127.0.0.1:{}", server.port()).parse().unwrap()).await.unwrap();
    let ws = lectern::client::connect_over(tcp, &server.ws, &server.fingerprint).await.unwrap();
    let mut stalled = common::Raw { ws };
    stalled
        .send(json!({"t":"hello","v":1,"role":"student","code":CODE,"name":"Slow","device":device(99)}))
        .await;
    stalled.recv_type("welcome").await;

    let mut readers = Vec::new();
    for n in 0..29 {
        let (mut raw, _) = server.student(&format!("S{n}"), &device(n)).await;
        readers.push(tokio::spawn(async move {
            let mut expected = 1;
            while expected <= CHANGES {
                let v = raw.recv().await;
                match v["t"].as_str() {
                    Some("patch") => {
                        assert_eq!(v["seq"], expected);
                        expected += 1;
                    }
                    Some("sync") => panic!("a reading student was conflated"),
                    _ => {}
                }
            }
        }));
    }

    let (mut teacher, _) = server.teacher().await;
    let notice = "ن".repeat(270); // large frames fill the stalled socket sooner
    for i in 1..=CHANGES {
        teacher
            .send(json!({"t":"set","id":i,"patch":{"page": i % 12 + 1, "notice": format!("{i} {notice}")}}))
            .await;
        teacher.recv_type("ok").await;
    }
    for r in readers {
        r.await.unwrap();
    }

    // Now the stalled student reads again: it must reach the final state through a snapshot, having
    // received far fewer frames than there were changes, and still be connected.
    let mut frames = 0;
    let mut synced = false;
    let final_state = loop {
        let v = stalled.recv().await;
        frames += 1;
        match v["t"].as_str() {
            Some("sync") => {
                synced = true;
                if v["seq"] == CHANGES {
                    break v["state"].clone();
                }
            }
            Some("patch") if v["seq"] == CHANGES => break v["patch"].clone(),
            _ => {}
        }
    };
    assert!(synced, "the stalled student was sent a snapshot");
    assert!(frames < CHANGES / 2, "no backlog: {frames} frames for {CHANGES} changes");
    assert_eq!(final_state["page"], CHANGES % 12 + 1);
    stalled.send(json!({"t":"ping","id":1})).await;
    assert_eq!(stalled.recv_type("pong").await["id"], 1, "still connected");
    let metrics = server.metrics().await;
    let conflations: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("lectern_conflations_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(conflations >= 1.0, "{metrics}");
}
