//! Protects recovery: a student whose link drops comes back as the same participant and is brought to
//! the current state (snapshot, then newer patches), both frame by frame and with the Rust client, which
//! also keeps a raised hand given while offline.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use common::{TestServer, device, wait_for};
use lectern::client::{Cause, Client, ClientOptions, Credentials, Event};
use serde_json::json;

#[tokio::test]
async fn resume_after_a_drop_restores_the_participant_and_the_current_state() {
    let server = TestServer::start().await;
    let (s, welcome) = server.student("Aisha", &device(1)).await;
    let pid = welcome["you"]["id"].clone();
    let token = welcome["token"].as_str().unwrap().to_string();
    drop(s); // the link drops without a close

    let (mut t, _) = server.teacher().await;
    for (i, page) in [3, 4, 5].iter().enumerate() {
        t.send(json!({"t":"set","id":i,"patch":{"page":page}})).await;
        t.recv_type("ok").await;
    }
    let mut raw = server.raw().await;
    raw.send(json!({"t":"hello","v":1,"role":"student","resume":token,"device":device(1)})).await;
    let welcome = raw.recv_type("welcome").await;
    assert_eq!(welcome["you"]["id"], pid);
    assert_eq!(welcome["you"]["name"], "Aisha");
    assert_eq!(welcome["seq"], 3);
    assert_eq!(welcome["state"]["page"], 5);
    t.send(json!({"t":"set","id":9,"patch":{"page":6}})).await;
    let patch = raw.recv_type("patch").await;
    assert_eq!(patch["seq"], 4, "the first patch after the snapshot follows it directly");
}

#[tokio::test]
async fn a_resync_answers_with_a_snapshot() {
    let server = TestServer::start().await;
    let (mut t, _) = server.teacher().await;
    t.send(json!({"t":"set","id":1,"patch":{"page":9}})).await;
    t.recv_type("ok").await;
    let (mut s, _) = server.student("A", &device(1)).await;
    s.send(json!({"t":"resync"})).await;
    let sync = s.recv_type("sync").await;
    assert_eq!(sync["seq"], 1);
    assert_eq!(sync["state"]["page"], 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_resumes_after_a_restart_and_sends_what_was_queued_offline() {
    let server = TestServer::start().await;
    let port = server.port();
    let opts = ClientOptions::new(
        server.ws.clone(),
        server.fingerprint.clone(),
        Credentials::Student { code: common::CODE.into(), name: "Yusuf".into() },
        device(7),
    );
    let mut student = Client::start(opts);
    let first = wait_for(&mut student, |e| matches!(e, Event::Connected { .. })).await;
    let Event::Connected { you, resumed: false, .. } = first else { panic!("{first:?}") };

    // The server goes away; while it is down the student raises a hand and browses to page 3.
    let dir = server.stop().await;
    let e = wait_for(&mut student, |e| matches!(e, Event::Disconnected { .. })).await;
    assert!(matches!(e, Event::Disconnected { code: Some(4503), .. }), "{e:?}");
    student.hand(true);
    student.view(Some(3));

    let server = TestServer::in_dir(dir, |_, _| {}, &format!("127.0.0.1:{port}")).await;
    let again = wait_for(&mut student, |e| matches!(e, Event::Connected { .. })).await;
    let Event::Connected { you: you2, resumed, .. } = again else { unreachable!() };
    assert!(resumed);
    assert_eq!(you2.id, you.id);

    let (mut t, welcome) = server.teacher().await;
    let mine = |entries: &serde_json::Value| {
        entries.as_array().and_then(|a| a.iter().find(|c| c["id"] == you.id.as_str()).cloned())
    };
    let mut entry = mine(&welcome["roster"]).unwrap_or_default();
    while !(entry["hand"] == true && entry["view"] == 3) {
        if let Some(e) = mine(&t.recv_type("roster").await["changes"]) {
            entry = e;
        }
    }
    assert_eq!(entry["online"], true);
    t.send(json!({"t":"set","id":1,"patch":{"page":2}})).await;
    let e = wait_for(&mut student, |e| matches!(e, Event::State { cause: Cause::Patch, .. })).await;
    let Event::State { state, .. } = e else { unreachable!() };
    assert_eq!(state.page, 2);
    student.close().await;
}
