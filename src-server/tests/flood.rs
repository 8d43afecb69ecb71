//! Protects the class from one misbehaving device: a student flooding frames is told `rate_limited` and,
//! if it keeps on, closed with 4029, while every other student keeps receiving the teacher's changes.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use common::{End, TestServer, device};
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_student_is_limited_and_the_others_keep_receiving() {
    let server = TestServer::start().await;
    let (mut flooder, _) = server.student("Flood", &device(0)).await;
    let mut others = Vec::new();
    for n in 1..=5 {
        others.push(server.student(&format!("S{n}"), &device(n)).await.0);
    }
    let (mut teacher, _) = server.teacher().await;

    let flood = tokio::spawn(async move {
        for i in 0..5000u32 {
            let frame = json!({"t":"ping","id":i}).to_string();
            if flooder.ws.feed(Message::text(frame)).await.is_err() {
                break;
            }
        }
        let _ = flooder.ws.flush().await;
        flooder.until_end().await
    });
    for i in 1..=50u64 {
        teacher.send(json!({"t":"set","id":i,"patch":{"page": i % 12 + 1}})).await;
        teacher.recv_type("ok").await;
    }
    for s in &mut others {
        for seq in 1..=50u64 {
            assert_eq!(s.recv_type("patch").await["seq"], seq);
        }
    }
    let (end, frames) = flood.await.unwrap();
    let limited = frames.iter().any(|f| f["t"] == "error" && f["code"] == "rate_limited");
    assert!(limited, "the flooder was told it is rate limited");
    assert!(matches!(end, End::Close(4029, _)), "{end:?}");
    let pongs = frames.iter().filter(|f| f["t"] == "pong").count();
    assert!(pongs <= 150, "at most the burst and the rate were served: {pongs}");
    let refused =
        common::metric(&server.metrics().await, "lectern_rejected_frames_total{reason=\"rate_limited\"}");
    assert!(refused >= 100.0, "the limiter refused frames before the close: {refused}");
}

#[tokio::test]
async fn a_flood_of_websocket_pings_is_rate_limited_too() {
    let server = TestServer::start().await;
    let (mut flooder, _) = server.student("Pinger", &device(0)).await;
    for _ in 0..3000 {
        if flooder.ws.feed(Message::Ping(vec![1, 2, 3].into())).await.is_err() {
            break;
        }
    }
    let _ = flooder.ws.flush().await;
    let (end, _) = flooder.until_end().await;
    assert!(matches!(end, End::Close(4029, _)), "{end:?}");
    let refused =
        common::metric(&server.metrics().await, "lectern_rejected_frames_total{reason=\"rate_limited\"}");
    assert!(refused >= 100.0, "the Pings were counted against the rate: {refused}");
}
