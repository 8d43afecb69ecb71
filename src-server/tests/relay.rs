//! Remote students through a real `redis-server` (docs/RELAY.md): the teacher's server bridges its
//! lesson, a relay serves it, and a Rust client behind the relay follows it, checking every
//! signature. Hands go the other way and reach the teacher's roster as remote.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use std::net::IpAddr;

use common::redis::RedisServer;
use common::{CODE, PATIENCE, TestServer, test_config};
use lectern::client::{Client, ClientOptions, Credentials, Event, RelayTrust};
use lectern::config::{Limits, Timing};
use lectern::protocol::LessonState;
use lectern::relay::serve::{Relay, RelayConfig};
use lectern::relay::sign::Signer;
use lectern::tls::Identity;
use serde_json::{Value, json};

/// A teacher's server bridged to `redis`.
async fn bridged(redis: &RedisServer) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), Limits::default(), Timing::default());
    config.redis = Some(redis.url());
    TestServer::from_config(dir, config, "127.0.0.1:0").await
}

/// A relay on loopback with a self-signed certificate: its address and fingerprint.
async fn relay(redis: &RedisServer) -> (Relay, String, String) {
    let identity = Identity::generate(&["localhost".into()], &[IpAddr::from([127, 0, 0, 1])]).unwrap();
    let fingerprint = identity.fingerprint();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config =
        RelayConfig { redis: redis.url(), identity, limits: Limits::default(), timing: Timing::default() };
    let relay = Relay::start(config, listener).unwrap();
    let ws = format!("wss://127.0.0.1:{}/v1/ws", relay.addr().port());
    (relay, ws, fingerprint)
}

/// A remote student's client: behind the relay at `ws`, checking against the teacher's key.
fn remote_student(server: &TestServer, ws: &str, fingerprint: &str, name: &str) -> Client {
    let pk = Signer::load_or_create(server.dir.path()).unwrap().public();
    let room = server.handle.as_ref().unwrap().ready().room.clone();
    let credentials = Credentials::Student { code: CODE.into(), name: name.into() };
    let mut options = ClientOptions::new(ws, fingerprint, credentials, format!("remote-{name}-device"));
    options.relay = Some(RelayTrust { room, pk });
    Client::start(options)
}

/// Waits for the client's state to satisfy `want`.
async fn state_where(client: &mut Client, want: impl Fn(&LessonState) -> bool) -> (u64, LessonState) {
    tokio::time::timeout(PATIENCE, async {
        loop {
            match client.next_event().await {
                Some(Event::State { seq, state, .. }) if want(&state) => return (seq, state),
                Some(Event::Stopped { code, reason }) => panic!("stopped: {code:?} {reason}"),
                Some(_) => {}
                None => panic!("the client ended"),
            }
        }
    })
    .await
    .expect("the state in time")
}

/// The teacher's newest roster entry for a remote student whose entry satisfies `want`.
async fn roster_where(teacher: &mut common::Raw, want: impl Fn(&Value) -> bool) -> Value {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let roster = teacher.recv_type("roster").await;
            if let Some(e) = roster["changes"].as_array().unwrap().iter().find(|e| want(e)) {
                return e.clone();
            }
        }
    })
    .await
    .expect("the roster in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_student_follows_signed_changes_and_its_hand_reaches_the_teacher() {
    let redis = RedisServer::start().await;
    let server = bridged(&redis).await;
    let (relay, ws, fingerprint) = relay(&redis).await;
    let (mut teacher, _) = server.teacher().await;

    let mut student = remote_student(&server, &ws, &fingerprint, "Yusuf");
    state_where(&mut student, |_| true).await;
    let entry = roster_where(&mut teacher, |e| e["remote"] == true && e["online"] == true).await;
    assert_eq!(entry["name"], "Yusuf");
    assert!(entry["id"].as_str().unwrap().starts_with("r-"), "{entry}");

    // Page turns and the pointer reach the remote student, signed, in order.
    teacher.send(json!({"t":"set","id":1,"patch":{"page":3,"pos":{"x":0.25,"y":0.5}}})).await;
    let (_, state) = state_where(&mut student, |s| s.page == 3).await;
    assert_eq!(state.pos.map(|p| (p.x, p.y)), Some((0.25, 0.5)));
    for page in 4..=6 {
        teacher.send(json!({"t":"set","patch":{"page":page}})).await;
    }
    state_where(&mut student, |s| s.page == 6).await;

    // A hand goes the other way.
    student.hand(true);
    let entry = roster_where(&mut teacher, |e| e["remote"] == true && e["hand"] == true).await;
    assert_eq!(entry["name"], "Yusuf");

    student.close().await;
    roster_where(&mut teacher, |e| e["remote"] == true && e["online"] == false).await;
    relay.stop().await;
}
