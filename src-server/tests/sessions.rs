//! Protects the session log as a teacher reads it: attendance (presence, disconnects, how fast each
//! student followed), the timeline, over HTTPS and from `lectern sessions`, and starting a new lesson
//! without a restart.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use std::process::Command;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{CODE, Raw, TestServer, device};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn get(server: &TestServer, uri: &str) -> (StatusCode, String) {
    let req = Request::get(uri)
        .header(header::AUTHORIZATION, format!("Bearer {}", server.teacher_key))
        .body(Body::empty())
        .unwrap();
    let res = lectern::server::http::router(server.app().clone()).oneshot(req).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// A student that acks every patch it receives, until the connection ends.
fn diligent(mut raw: Raw) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        while let Some(Ok(msg)) = raw.ws.next().await {
            // Control frames (the server's pings and tail probes) are not lesson news.
            let Message::Text(t) = msg else { continue };
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["t"] == "patch" {
                raw.send(json!({"t":"ack","seq":v["seq"]})).await;
            }
        }
    })
}

async fn lesson_with_two_students(server: &TestServer) -> (Raw, String) {
    let (mut t, _) = server.teacher().await;
    let (a, _) = server.student("Aisha", &device(1)).await;
    let _a = diligent(a);
    let (mut b, _) = server.student("Bilal", &device(2)).await;
    b.send(json!({"t":"hand","up":true})).await;
    drop(b); // Bilal drops out, and never acks
    // Changes start once the server has seen him go (the roster says so), so none is made while he is
    // still counted present.
    loop {
        let v = t.recv_type("roster").await;
        if v["changes"].as_array().unwrap().iter().any(|e| e["name"] == "Bilal" && e["online"] == false) {
            break;
        }
    }
    for (i, page) in [2, 3, 4].iter().enumerate() {
        t.send(json!({"t":"set","id":i,"patch":{"page":page}})).await;
        t.recv_type("ok").await;
        t.send(json!({"t":"set","id":100 + i,"patch":{"pos":{"x":0.5,"y":0.25}}})).await;
        t.recv_type("ok").await;
    }
    // Wait until Aisha's last ack is logged: the roster shows it.
    loop {
        let v = t.recv_type("roster").await;
        if v["changes"].as_array().unwrap().iter().any(|e| e["name"] == "Aisha" && e["acked"] == 6) {
            break;
        }
    }
    let room = server.app().room().info().id.clone();
    (t, room)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attendance_and_timeline_over_https() {
    let server = TestServer::with(|_, t| t.roster_interval = Duration::from_millis(20)).await;
    let (mut t, room) = lesson_with_two_students(&server).await;
    let (_late, late) = server.student("Late", &device(3)).await;
    let (status, _) = {
        let req = Request::get("/v1/lessons")
            .header(header::AUTHORIZATION, format!("Bearer {}", late["token"].as_str().unwrap()))
            .body(Body::empty())
            .unwrap();
        let res = lectern::server::http::router(server.app().clone()).oneshot(req).await.unwrap();
        (res.status(), ())
    };
    assert_eq!(status, StatusCode::FORBIDDEN, "students may not read the log");
    t.send(json!({"t":"end","id":99})).await;
    t.until_end().await;
    assert!(server.app().store.flush(Duration::from_secs(5)));

    let (status, body) = get(&server, "/v1/lessons").await;
    assert_eq!(status, StatusCode::OK);
    let lessons: Value = serde_json::from_str(&body).unwrap();
    let lesson = &lessons["lessons"][0];
    assert_eq!(lesson["room"], room.as_str());
    assert_eq!(lesson["students"], 3, "Aisha, Bilal and Late");
    assert_eq!(lesson["changes"], 3, "three page turns (the end is not a change to follow)");
    assert_eq!(lesson["pointer_moves"], 3);
    assert!(lesson["ended_ms"].is_u64());
    let id = lesson["id"].as_i64().unwrap();

    let (status, csv) = get(&server, &format!("/v1/lessons/{id}/attendance.csv")).await;
    assert_eq!(status, StatusCode::OK);
    let rows: Vec<&str> = csv.lines().collect();
    assert!(rows[0].starts_with("name,device,first_join,last_leave,minutes_present,disconnects"), "{csv}");
    let aisha: Vec<&str> = rows.iter().find(|r| r.starts_with("Aisha,")).unwrap().split(',').collect();
    let bilal: Vec<&str> = rows.iter().find(|r| r.starts_with("Bilal,")).unwrap().split(',').collect();
    assert_eq!(aisha[6], "3", "Aisha saw three changes");
    assert_eq!(aisha[7], "1.000", "and followed every one within a second");
    assert!(aisha[8].parse::<u64>().unwrap() < 1000);
    assert_eq!(bilal[5], "1", "Bilal dropped out once");
    assert_eq!(bilal[6], "0", "and was gone for every change");

    let (status, body) = get(&server, &format!("/v1/lessons/{room}/timeline.json")).await;
    assert_eq!(status, StatusCode::OK);
    let timeline: Value = serde_json::from_str(&body).unwrap();
    let events = timeline["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    for kind in ["join", "leave", "change", "hand", "pointer"] {
        assert!(kinds.contains(&kind), "no {kind} in {kinds:?}");
    }
    assert_eq!(timeline["documents"][0]["id"], "demo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sessions_command_lists_shows_and_exports() {
    let server = TestServer::with(|_, t| t.roster_interval = Duration::from_millis(20)).await;
    let (_t, room) = lesson_with_two_students(&server).await;
    assert!(server.app().store.flush(Duration::from_secs(5)));
    let lectern = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_lectern"))
            .arg("sessions")
            .args(args)
            .arg("--data-dir")
            .arg(server.dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let list = lectern(&["list"]);
    assert!(list.contains("Welcome to Lectern") && list.contains("open"), "{list}");
    let show = lectern(&["show", &room]);
    assert!(show.contains("Aisha joined") && show.contains("Bilal raised a hand"), "{show}");
    assert!(show.contains("100%"), "Aisha followed everything: {show}");
    let csv = lectern(&["export", &room, "--format", "csv"]);
    assert_eq!(csv.lines().count(), 3, "{csv}");
    let json: Value = serde_json::from_str(&lectern(&["export", &room, "--format", "json"])).unwrap();
    assert_eq!(json["attendance"].as_array().unwrap().len(), 2);
    assert!(json["events"].as_array().unwrap().len() >= 6);
}

#[tokio::test]
async fn a_new_lesson_starts_without_a_restart() {
    let server = TestServer::start().await;
    let (mut s, _) = server.student("A", &device(1)).await;
    let req = Request::post("/v1/lessons?title=Second%20lesson")
        .header(header::AUTHORIZATION, format!("Bearer {}", server.teacher_key))
        .body(Body::empty())
        .unwrap();
    let res = lectern::server::http::router(server.app().clone()).oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let code = body["code"].as_str().unwrap().to_string();
    assert_eq!(body["title"], "Second lesson");
    assert_eq!(s.close_code().await, 4000, "the old lesson ended for its students");

    let mut old = server.raw().await;
    old.send(json!({"t":"hello","v":1,"role":"student","code":CODE,"name":"A","device":device(1)})).await;
    assert_eq!(old.close_code().await, 4001, "the old code no longer works");
    let mut new = server.raw().await;
    new.send(json!({"t":"hello","v":1,"role":"student","code":code,"name":"A","device":device(1)})).await;
    let w = new.recv_type("welcome").await;
    assert_eq!(w["room"]["title"], "Second lesson");
    assert_eq!(w["seq"], 0);
    assert!(server.app().store.flush(Duration::from_secs(5)));
    let (_, list) = get(&server, "/v1/lessons").await;
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["lessons"].as_array().unwrap().len(), 2);
    assert!(list["lessons"][1]["ended_ms"].is_u64(), "the first lesson is marked ended");
}

/// Every mark the teacher puts on a page or takes off is in the session log, with its time, in the
/// timeline a teacher exports after the lesson; a mark the server refused is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mark_is_in_the_log_with_its_time() {
    let server = TestServer::start().await;
    let (mut t, _) = server.teacher().await;
    let mark = json!({"id":5,"x":0.1,"y":0.2,"w":0.5,"h":0.05});
    t.send(json!({"t":"set","id":1,"patch":{"marks":[{"op":"add","page":2,"mark":mark}]}})).await;
    t.recv_type("ok").await;
    // Refused whole: the id is taken on that page.
    t.send(json!({"t":"set","id":2,"patch":{"marks":[{"op":"add","page":2,"mark":mark}]}})).await;
    let refused = t.recv_type("error").await;
    assert!(refused["message"].as_str().unwrap().contains("already has mark 5"), "{refused}");
    t.send(json!({"t":"set","id":3,"patch":{"marks":[{"op":"remove","page":2,"id":5}]}})).await;
    t.recv_type("ok").await;
    assert!(server.app().store.flush(Duration::from_secs(5)));

    let room = server.app().room().info().id.clone();
    let (status, body) = get(&server, &format!("/v1/lessons/{room}/timeline.json")).await;
    assert_eq!(status, StatusCode::OK);
    let timeline: Value = serde_json::from_str(&body).unwrap();
    let changes: Vec<&Value> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "change" && e["patch"]["marks"].is_array())
        .collect();
    assert_eq!(changes.len(), 2, "the add and the removal, not the refused add: {changes:?}");
    assert_eq!(changes[0]["patch"]["marks"][0], json!({"op":"add","page":2,"mark":mark}));
    assert_eq!(changes[1]["patch"]["marks"][0], json!({"op":"remove","page":2,"id":5}));
    assert!(changes[0]["time"].as_u64().unwrap() <= changes[1]["time"].as_u64().unwrap());
}
