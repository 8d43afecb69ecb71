//! Protects what the teacher sees of the class: joins, hands and leaves arrive at once, acks and round
//! trips arrive coalesced, and students learn whether the teacher is online.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use std::time::Duration;

use common::{Raw, TestServer, device};
use serde_json::{Value, json};

/// Reads roster frames until the entry for `pid` satisfies `pred`.
async fn until_entry(t: &mut Raw, pid: &Value, pred: impl Fn(&Value) -> bool) -> Value {
    loop {
        let v = t.recv_type("roster").await;
        if let Some(e) = v["changes"].as_array().and_then(|c| c.iter().find(|e| &e["id"] == pid))
            && pred(e)
        {
            return e.clone();
        }
    }
}

#[tokio::test]
async fn the_teacher_sees_join_hand_ack_and_leave() {
    let server = TestServer::with(|_, t| t.heartbeat = Duration::from_millis(200)).await;
    let (mut t, welcome) = server.teacher().await;
    assert_eq!(welcome["roster"], json!([]));
    let (mut s, sw) = server.student("Aisha", &device(1)).await;
    let pid = sw["you"]["id"].clone();

    let joined = until_entry(&mut t, &pid, |e| e["online"] == true).await;
    assert_eq!(joined["name"], "Aisha");
    assert_eq!(joined["remote"], false);
    assert_eq!(joined["hand"], false);

    s.send(json!({"t":"hand","up":true})).await;
    until_entry(&mut t, &pid, |e| e["hand"] == true).await;

    t.send(json!({"t":"set","id":1,"patch":{"page":2}})).await;
    let seq = s.recv_type("patch").await["seq"].clone();
    s.send(json!({"t":"ack","seq":seq})).await;
    until_entry(&mut t, &pid, |e| e["acked"] == seq).await;

    s.send(json!({"t":"view","page":5})).await;
    until_entry(&mut t, &pid, |e| e["view"] == 5).await;

    // Round trips come from WebSocket pings every heartbeat, which the student's socket answers while it
    // is being read.
    let reader = tokio::spawn(async move {
        use futures_util::StreamExt;
        while let Some(Ok(_)) = s.ws.next().await {}
    });
    let rtt = until_entry(&mut t, &pid, |e| e["rtt_ms"].is_u64()).await;
    assert!(rtt["rtt_ms"].as_u64().unwrap() < 1000);

    reader.abort();
    let _ = reader.await;
    let left = until_entry(&mut t, &pid, |e| e["online"] == false).await;
    assert_eq!(left["hand"], true, "the roster remembers the student");
}

#[tokio::test]
async fn an_ack_ahead_of_the_lesson_is_refused() {
    let server = TestServer::start().await;
    let (mut s, _) = server.student("A", &device(1)).await;
    s.send(json!({"t":"ack","seq":99})).await;
    let err = s.recv_type("error").await;
    assert_eq!(err["code"], "bad_request");
}

#[tokio::test]
async fn students_know_when_the_teacher_comes_and_goes() {
    let server = TestServer::start().await;
    let (mut s, welcome) = server.student("A", &device(1)).await;
    assert_eq!(welcome["teacher_online"], false);
    let (t, _) = server.teacher().await;
    assert_eq!(s.recv_type("teacher").await, json!({"t":"teacher","online":true}));
    drop(t);
    assert_eq!(s.recv_type("teacher").await, json!({"t":"teacher","online":false}));
}

#[tokio::test]
async fn acks_are_coalesced_not_forwarded_one_by_one() {
    let server = TestServer::with(|l, t| {
        l.student_rate = 10_000;
        l.student_burst = 10_000;
        t.roster_interval = Duration::from_millis(200);
    })
    .await;
    let (mut t, _) = server.teacher().await;
    let (mut s, sw) = server.student("A", &device(1)).await;
    let pid = sw["you"]["id"].clone();
    until_entry(&mut t, &pid, |e| e["online"] == true).await;
    for i in 1..=100u64 {
        t.send(json!({"t":"set","id":i,"patch":{"pos":{"x":0.5,"y":(i as f64)/100.0}}})).await;
        t.recv_type("ok").await;
    }
    for seq in 1..=100u64 {
        s.send(json!({"t":"ack","seq":seq})).await;
    }
    let mut roster_frames = 0;
    loop {
        let v = t.recv().await;
        if v["t"] == "roster" {
            roster_frames += 1;
            if v["changes"].as_array().unwrap().iter().any(|e| e["id"] == pid && e["acked"] == 100) {
                break;
            }
        }
    }
    assert!(roster_frames < 10, "100 acks became {roster_frames} roster frames");
}

#[tokio::test]
async fn joins_hands_and_leaves_arrive_at_once_not_on_the_coalescing_timer() {
    // With the coalescing interval at an hour, only "at once" delivery can pass this test.
    let server = TestServer::with(|_, t| t.roster_interval = Duration::from_secs(3600)).await;
    let (mut t, _) = server.teacher().await;
    let (mut s, sw) = server.student("Now", &device(1)).await;
    let pid = sw["you"]["id"].clone();
    until_entry(&mut t, &pid, |e| e["online"] == true).await;
    s.send(json!({"t":"hand","up":true})).await;
    until_entry(&mut t, &pid, |e| e["hand"] == true).await;
    drop(s);
    until_entry(&mut t, &pid, |e| e["online"] == false).await;
}
