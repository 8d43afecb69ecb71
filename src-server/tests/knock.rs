//! Asking to join without a code (docs/PROTOCOL-ADDITIONS.md): a student that found the class on the
//! network knocks, waits, and is let in or turned away by the teacher. Also the rule a knock relies on:
//! a new claim never takes over a student who is online.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use std::time::Duration;

use common::{End, Raw, TestServer, connected, device, hello, wait_for};
use lectern::client::{Client, ClientOptions, Credentials, Event};
use lectern::protocol::{ClientMsg, Hello};
use serde_json::{Value, json};

async fn knock(server: &TestServer, name: &str, device: &str) -> Raw {
    let mut raw = server.raw().await;
    let hello = Hello {
        role: Some("student".into()),
        knock: true,
        name: Some(name.into()),
        device: Some(device.into()),
        ..hello()
    };
    raw.send_msg(&ClientMsg::Hello(hello)).await;
    raw
}

/// The teacher's next `knocks` list, as (id, name) pairs.
async fn knocks(t: &mut Raw) -> Vec<(String, String)> {
    let list = t.recv_type("knocks").await;
    list["knocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["id"].as_str().unwrap().to_string(), k["name"].as_str().unwrap().to_string()))
        .collect()
}

/// The teacher's newest `knocks` list: a ping's pong comes after every frame queued before it.
async fn latest_knocks(t: &mut Raw) -> Vec<(String, String)> {
    t.send(json!({"t":"ping","id":999})).await;
    let mut last = Vec::new();
    loop {
        let v = t.recv().await;
        match v["t"].as_str() {
            Some("knocks") => {
                last = v["knocks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|k| (k["id"].as_str().unwrap().to_string(), k["name"].as_str().unwrap().to_string()))
                    .collect()
            }
            Some("pong") => return last,
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_knock_waits_until_the_teacher_lets_it_in_then_it_is_a_student_who_can_resume() {
    let server = TestServer::start().await;
    let (mut t, _) = server.teacher().await;
    let mut s = knock(&server, "Aisha", &device(1)).await;
    let waiting = s.recv().await;
    assert_eq!(waiting["t"], "waiting", "{waiting}");
    assert_eq!(waiting["heartbeat_ms"], 10_000);
    let list = knocks(&mut t).await;
    assert_eq!(list.iter().map(|k| k.1.as_str()).collect::<Vec<_>>(), ["Aisha"]);

    t.send(json!({"t":"admit","id":3,"knocks":[list[0].0]})).await;
    let welcome = s.recv_type("welcome").await;
    assert_eq!(welcome["you"]["name"], "Aisha");
    assert_eq!(welcome["you"]["role"], "student");
    assert!(knocks(&mut t).await.is_empty(), "the list empties once she is in");
    let roster = t.recv_type("roster").await;
    assert_eq!(roster["changes"][0]["name"], "Aisha");
    assert_eq!(roster["changes"][0]["online"], true);

    // From now on she is a participant like any other: her token brings her back without a knock.
    drop(s);
    let mut again = server.raw().await;
    let token = welcome["token"].as_str().unwrap();
    again.send(json!({"t":"hello","v":1,"role":"student","resume":token,"device":device(1)})).await;
    assert_eq!(again.recv_type("welcome").await["you"]["id"], welcome["you"]["id"]);
}

#[tokio::test]
async fn a_teacher_who_connects_later_is_told_who_waits() {
    let server = TestServer::start().await;
    let mut s = knock(&server, "Bilal", &device(2)).await;
    assert_eq!(s.recv().await["t"], "waiting");
    let (mut t, _) = server.teacher().await;
    assert_eq!(knocks(&mut t).await[0].1, "Bilal");
}

#[tokio::test]
async fn a_denied_knock_is_closed_4003_and_leaves_the_list() {
    let server = TestServer::start().await;
    let (mut t, _) = server.teacher().await;
    let mut s = knock(&server, "Cyrus", &device(3)).await;
    let id = knocks(&mut t).await[0].0.clone();
    t.send(json!({"t":"deny","id":4,"knocks":[id]})).await;
    assert_eq!(s.until_end().await.0, End::Close(4003, "the teacher did not let you in".into()));
    assert!(knocks(&mut t).await.is_empty());
    assert_eq!(t.recv_type("ok").await["id"], 4);
}

#[tokio::test]
async fn a_student_who_gives_up_is_taken_off_the_list() {
    let server = TestServer::start().await;
    let (mut t, _) = server.teacher().await;
    let s = knock(&server, "Dana", &device(4)).await;
    assert_eq!(knocks(&mut t).await.len(), 1);
    drop(s);
    assert!(knocks(&mut t).await.is_empty());
}

#[tokio::test]
async fn a_student_cannot_let_anyone_in() {
    let server = TestServer::start().await;
    let (mut t, _) = server.teacher().await;
    let mut waiting = knock(&server, "Eve", &device(5)).await;
    let id = knocks(&mut t).await[0].0.clone();
    let (mut s, _) = server.student("Mallory", &device(6)).await;
    s.send(json!({"t":"admit","id":7,"knocks":[id]})).await;
    let err = s.recv_type("error").await;
    assert_eq!((err["code"].as_str(), err["id"].as_u64()), (Some("forbidden"), Some(7)));
    s.send(json!({"t":"ping","id":8})).await;
    assert_eq!(s.recv_type("pong").await["id"], 8);
    // Eve still waits: nothing but `waiting` reached her.
    assert_eq!(waiting.recv().await["t"], "waiting");
}

#[tokio::test]
async fn knocks_are_bounded_per_address_and_a_device_knocks_once() {
    let server = TestServer::start().await;
    let (mut t, _) = server.teacher().await;
    let mut first = knock(&server, "One", &device(11)).await;
    assert_eq!(first.recv().await["t"], "waiting");
    // The same device knocking again replaces its older knock.
    let mut again = knock(&server, "One again", &device(11)).await;
    assert_eq!(first.close_code().await, 4409);
    assert_eq!(again.recv().await["t"], "waiting");
    let mut others = Vec::new();
    for n in 12..14 {
        let mut k = knock(&server, "More", &device(n)).await;
        assert_eq!(k.recv().await["t"], "waiting");
        others.push(k);
    }
    // Three wait from 127.0.0.1 now; a fourth is refused and the teacher's list does not grow.
    let mut fourth = knock(&server, "Too many", &device(14)).await;
    assert_eq!(fourth.close_code().await, 4029);
    let last = latest_knocks(&mut t).await;
    assert_eq!(last.iter().map(|k| k.1.as_str()).collect::<Vec<_>>(), ["One again", "More", "More"]);
}

#[tokio::test]
async fn ending_the_lesson_closes_waiting_knocks_with_4000() {
    let server = TestServer::start().await;
    let (mut t, _) = server.teacher().await;
    let mut s = knock(&server, "Farah", &device(7)).await;
    assert_eq!(s.recv().await["t"], "waiting");
    t.send(json!({"t":"end","id":1})).await;
    assert_eq!(s.close_code().await, 4000);
    let mut late = knock(&server, "Late", &device(8)).await;
    assert_eq!(late.close_code().await, 4000);
}

#[tokio::test]
async fn a_removed_device_cannot_knock_its_way_back() {
    let server = TestServer::start().await;
    let (mut t, _) = server.teacher().await;
    let (mut s, w) = server.student("Gus", &device(9)).await;
    t.send(json!({"t":"kick","id":2,"who":w["you"]["id"]})).await;
    assert_eq!(s.close_code().await, 4003);
    let mut back = knock(&server, "Gus", &device(9)).await;
    assert_eq!(back.close_code().await, 4003);
}

#[tokio::test]
async fn an_unanswered_knock_lapses_with_4008() {
    let server = TestServer::with(|_, timing| timing.knock_timeout = Duration::from_millis(300)).await;
    let mut s = knock(&server, "Hana", &device(10)).await;
    assert_eq!(s.recv().await["t"], "waiting");
    assert_eq!(s.close_code().await, 4008);
}

#[tokio::test]
async fn a_knock_needs_a_name() {
    let server = TestServer::start().await;
    let mut raw = server.raw().await;
    raw.send(json!({"t":"hello","v":1,"role":"student","knock":true,"device":device(1)})).await;
    let (end, frames) = raw.until_end().await;
    assert_eq!(end, End::Close(4400, "a knock needs \"name\"".into()));
    assert_eq!(frames[0]["code"], "bad_request");
}

#[tokio::test]
async fn a_code_join_never_takes_over_a_student_who_is_online() {
    let server = TestServer::start().await;
    let (mut first, w1) = server.student("Aisha", &device(1)).await;
    // A bored classmate with the code and Aisha's device id (it is no secret) joins as someone else.
    let (_twin, w2) = server.student("Not Aisha", &device(1)).await;
    assert_ne!(w1["you"]["id"], w2["you"]["id"]);
    first.send(json!({"t":"ping","id":1})).await;
    assert_eq!(first.recv_type("pong").await["id"], 1, "Aisha is still connected");
    // Only her resume token is her: a resume replaces her older connection.
    let mut back = server.raw().await;
    let token: &Value = &w1["token"];
    back.send(json!({"t":"hello","v":1,"role":"student","resume":token,"device":device(1)})).await;
    assert_eq!(back.recv_type("welcome").await["you"]["id"], w1["you"]["id"]);
    assert_eq!(first.close_code().await, 4409);
}

#[tokio::test]
async fn the_rust_client_knocks_waits_and_joins_once_let_in() {
    let server = TestServer::start().await;
    let options = |credentials, device: String| {
        ClientOptions::new(server.ws.clone(), server.fingerprint.clone(), credentials, device)
    };
    let mut teacher =
        Client::start(options(Credentials::Teacher { key: server.teacher_key.clone() }, device(20)));
    connected(&mut teacher).await;
    let mut student = Client::start(options(Credentials::Knock { name: "Iman".into() }, device(21)));
    wait_for(&mut student, |e| matches!(e, Event::Waiting)).await;
    let Event::Knocks(list) =
        wait_for(&mut teacher, |e| matches!(e, Event::Knocks(l) if !l.is_empty())).await
    else {
        unreachable!()
    };
    assert_eq!(list[0].name, "Iman");
    teacher.admit(vec![list[0].id.clone()]).await.unwrap();
    assert_eq!(connected(&mut student).await.name, "Iman");
}

#[tokio::test]
async fn knocking_and_leaving_in_a_loop_is_bounded_per_address() {
    let server = TestServer::start().await;
    let (mut t, _) = server.teacher().await;
    for n in 0..10 {
        let mut k = knock(&server, "Loop", &device(30 + n)).await;
        assert_eq!(k.recv().await["t"], "waiting");
    }
    // Ten knocks this minute from 127.0.0.1 (all withdrawn by now): the eleventh is refused.
    let mut more = knock(&server, "Loop", &device(40)).await;
    assert_eq!(more.until_end().await.0, End::Close(4029, "too many requests to join; wait a minute".into()));
    // The teacher's list never grew past what was waiting, and the teacher is still connected.
    t.send(json!({"t":"ping","id":1})).await;
    assert_eq!(t.recv_type("pong").await["id"], 1);
}

#[tokio::test]
async fn removing_a_twin_removes_every_twin_of_its_device_and_its_waiting_knock_but_not_the_owner() {
    let server = TestServer::start().await;
    let (mut t, _) = server.teacher().await;
    let (_aisha, a) = server.student("Aisha", &device(1)).await;
    // A second join from the same device id is a twin; the teacher removes the twin.
    let (mut twin, w) = server.student("Twin", &device(1)).await;
    let mut waiting = knock(&server, "Twin again", &device(1)).await;
    assert_eq!(waiting.recv().await["t"], "waiting");
    t.send(json!({"t":"kick","id":2,"who":w["you"]["id"]})).await;
    assert_eq!(twin.close_code().await, 4003);
    assert_eq!(waiting.close_code().await, 4003, "the device's waiting knock is turned away");
    // The device cannot come back under another of its ids, by code or by knock.
    let mut raw = server.raw().await;
    raw.send(
        json!({"t":"hello","v":1,"role":"student","code":common::CODE,"name":"Back","device":device(1)}),
    )
    .await;
    assert_eq!(raw.close_code().await, 4003);
    let mut back = knock(&server, "Back", &device(1)).await;
    assert_eq!(back.close_code().await, 4003);
    // Aisha, who holds the device's own id, is not removed with the classmate who borrowed it.
    let mut aisha = server.raw().await;
    aisha.send(json!({"t":"hello","v":1,"role":"student","resume":a["token"],"device":device(1)})).await;
    assert_eq!(aisha.recv_type("welcome").await["you"]["id"], a["you"]["id"]);
}
