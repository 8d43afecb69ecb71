//! A student's second path (docs/PROTOCOL-ADDITIONS.md, N), over real TLS: through a relay and a real
//! `redis-server`, where every relay offers it, and on a teacher's server, which offers it only when
//! configured. The second path gets every change the first does; it is never a student of its own
//! (on the roster, in Redis's `up` stream, in the counts), says nothing, and goes with its first.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use common::redis::RedisServer;
use common::remote::*;
use common::{CODE, Raw, TestServer, metric};
use serde_json::{Value, json};

/// Opens a raw WebSocket to `ws` and says `hello`; the connection, and its welcome.
async fn hello_to(ws: &str, fingerprint: &str, hello: Value) -> (Raw, Value) {
    let mut raw = Raw { ws: lectern::client::connect(ws, fingerprint).await.unwrap() };
    raw.send(hello).await;
    let welcome = raw.recv_type("welcome").await;
    (raw, welcome)
}

/// The hello of a second path for the student holding `token`.
fn second(token: &Value, device: &str, room: Option<&str>) -> Value {
    json!({"t":"hello","v":1,"role":"student","resume":token,"device":device,"second":true,"room":room})
}

/// The entries of kind `k` in the room's `up` stream (what relays tell the teacher's server).
async fn up_entries(redis: &RedisServer, room: &str, k: &str) -> usize {
    let client = lectern::cloud::connect::client(&redis.url(), None).unwrap();
    let mut conn = client.connect().await.unwrap();
    let ups: lectern::cloud::keys::Entries = redis::cmd("XRANGE")
        .arg(lectern::cloud::keys::up(room))
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    ups.iter().filter(|(_, f)| f.iter().any(|(key, v)| key == "k" && v == k)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_sends_a_remote_students_second_path_every_signed_change_and_nothing_else_of_it() {
    let redis = RedisServer::start().await;
    let server = bridged(&redis).await;
    let (relay, ws, fp) = relay(&redis).await;
    let (mut teacher, _) = server.teacher().await;
    let room = server.handle.as_ref().unwrap().ready().room.clone();
    let device = "second-path-device-1";
    let hello =
        json!({"t":"hello","v":1,"role":"student","code":CODE,"name":"Maryam","device":device,"room":room});
    let (mut first, welcome) = hello_to(&ws, &fp, hello).await;
    assert_eq!(welcome["second"], true, "a relay offers a second path: {welcome}");
    let (mut path, again) = hello_to(&ws, &fp, second(&welcome["token"], device, Some(&room))).await;
    assert_eq!(again["you"]["id"], welcome["you"]["id"]);
    assert!(again["signed"].is_object(), "its welcome is signed as the first's");
    roster_where(&mut teacher, |e| e["remote"] == true && e["online"] == true).await;

    // Every change reaches both paths, signed, with the same seq.
    let mut last = json!(0);
    for page in [3, 4] {
        teacher.send(json!({"t":"set","patch":{"page":page}})).await;
        let (a, b) = (first.recv_type("patch").await, path.recv_type("patch").await);
        assert_eq!((a["seq"].clone(), a["patch"]["page"].clone()), (b["seq"].clone(), json!(page)));
        assert_eq!(a["signed"], b["signed"]);
        last = a["seq"].clone();
    }
    // The second path says nothing for the student.
    path.send(json!({"t":"ack","seq":last})).await;
    let error = path.recv_type("error").await;
    assert_eq!(error["code"], "bad_request", "{error}");
    path.send(json!({"t":"ping","id":5})).await;
    assert_eq!(path.recv_type("pong").await["id"], 5);

    // The teacher's server heard of one student, once.
    teacher.send(json!({"t":"set","id":42,"patch":{"page":5}})).await;
    while teacher.recv_type("ok").await["id"] != 42 {}
    assert_eq!(up_entries(&redis, &room, "join").await, 1, "a second path is never announced");
    let students = on_roster(&server, |e| e["remote"] == true).await;
    assert_eq!(students["name"], "Maryam");

    // The first path closes: the second goes with it (4409), and the student is offline.
    first.ws.close(None).await.unwrap();
    assert_eq!(path.close_code().await, lectern::protocol::close::REPLACED);
    roster_where(&mut teacher, |e| e["remote"] == true && e["online"] == false).await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teachers_server_offers_a_second_path_only_when_configured() {
    // By default a classroom's server takes none: a second path would double the Wi-Fi's load.
    let server = TestServer::start().await;
    let (_s, welcome) = server.student("Aisha", "second-path-device-2").await;
    assert!(welcome.get("second").is_none(), "{welcome}");
    let mut refused = server.raw().await;
    refused.send(second(&welcome["token"], "second-path-device-2", None)).await;
    assert_eq!(refused.recv_type("error").await["code"], "bad_request");
    assert_eq!(refused.close_code().await, lectern::protocol::close::PROTOCOL);
    server.stop().await;

    let server = TestServer::with(|limits, _| limits.second_paths = true).await;
    let (mut teacher, _) = server.teacher().await;
    let (mut first, welcome) = server.student("Aisha", "second-path-device-2").await;
    assert_eq!(welcome["second"], true);
    let mut path = server.raw().await;
    path.send(second(&welcome["token"], "second-path-device-2", None)).await;
    path.recv_type("welcome").await;
    teacher.send(json!({"t":"set","patch":{"page":7}})).await;
    assert_eq!(first.recv_type("patch").await["patch"]["page"], 7);
    assert_eq!(path.recv_type("patch").await["patch"]["page"], 7);
    let metrics = server.metrics().await;
    assert_eq!(metric(&metrics, "lectern_connections{role=\"student\"}"), 1.0, "one student");
    assert_eq!(metric(&metrics, "lectern_connections{role=\"second_path\"}"), 1.0, "and her second path");

    // A second path without a token is refused, even while the waiting room would hold a claim.
    teacher.send(json!({"t":"waiting_room","id":3,"on":true})).await;
    while teacher.recv_type("ok").await["id"] != 3 {}
    let mut claim = server.raw().await;
    claim.send(json!({"t":"hello","v":1,"role":"student","code":CODE,"name":"Sneaky","device":"second-path-device-3","second":true})).await;
    assert_eq!(claim.recv_type("error").await["code"], "bad_request");
    assert_eq!(claim.close_code().await, lectern::protocol::close::PROTOCOL);
    server.stop().await;
}

/// A TCP proxy in front of `backend` whose first connection's answers are held while the switch says
/// so (a first path stalled behind a lost packet); later connections pass freely. Its port, and the
/// switch.
async fn first_held(backend: u16) -> (u16, tokio::sync::watch::Sender<bool>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (hold, held) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut gate = Some(held);
        while let Ok((down, _)) = listener.accept().await {
            let up = tokio::net::TcpStream::connect(("127.0.0.1", backend)).await.unwrap();
            let mut gate = gate.take();
            tokio::spawn(async move {
                let ((mut dr, mut dw), (mut ur, mut uw)) = (down.into_split(), up.into_split());
                let to_client = async {
                    let mut buf = vec![0u8; 16 << 10];
                    loop {
                        if let Some(g) = gate.as_mut() {
                            while *g.borrow_and_update() {
                                if g.changed().await.is_err() {
                                    return;
                                }
                            }
                        }
                        match ur.read(&mut buf).await {
                            Ok(n) if n > 0 && dw.write_all(&buf[..n]).await.is_ok() => {}
                            _ => return,
                        }
                    }
                };
                tokio::select! { _ = tokio::io::copy(&mut dr, &mut uw) => {}, _ = to_client => {} }
            });
        }
    });
    (port, hold)
}

/// The Rust client (`lectern join`'s) opens a second path when its welcome offers one, follows the
/// lesson on it while its first path is held, takes every change once and in order though both paths
/// bring it, and its second path is no student.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_opens_a_second_path_and_takes_each_change_once() {
    use lectern::client::{Client, ClientOptions, Credentials, Event};
    let server = TestServer::with(|limits, _| limits.second_paths = true).await;
    let (mut teacher, _) = server.teacher().await;
    let credentials = Credentials::Student { code: CODE.into(), name: "Yusuf".into() };
    let (port, hold) = first_held(server.port()).await;
    let url = format!("wss://127.0.0.1:{port}/v1/ws");
    let mut client =
        Client::start(ClientOptions::new(&url, &server.fingerprint, credentials, "rust-second-01"));
    let mut seqs = Vec::new();
    let mut record = |ev: Option<Event>| match ev {
        Some(Event::State { seq, .. }) => {
            seqs.push(seq);
            Some(seq)
        }
        Some(Event::Stopped { reason, .. }) => panic!("stopped: {reason}"),
        None => panic!("the client ended"),
        _ => None,
    };
    while record(client.next_event().await).is_none() {}
    // Its second path opens 3 s after the welcome.
    let opened = async {
        while metric(&server.metrics().await, "lectern_connections{role=\"second_path\"}") < 1.0 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(common::PATIENCE, opened).await.expect("a second path in time");
    let metrics = server.metrics().await;
    assert_eq!(metric(&metrics, "lectern_connections{role=\"student\"}"), 1.0, "one student: {metrics}");
    let before = metric(&metrics, "lectern_deliveries_total");
    // The first path stalls: the lesson goes on, on the second.
    hold.send(true).unwrap();
    let mut last = 0;
    for turn in 0..30u64 {
        teacher.send(json!({"t":"set","id":turn,"patch":{"page": turn % 11 + 2}})).await;
        last = loop {
            let ok = teacher.recv_type("ok").await;
            if ok["id"] == turn {
                break ok["seq"].as_u64().unwrap();
            }
        };
    }
    let shown = async { while record(client.next_event().await) != Some(last) {} };
    tokio::time::timeout(common::PATIENCE, shown).await.expect("every turn, on the second path, in time");
    // The first path comes back with all 30 again: copies, dropped unread.
    hold.send(false).unwrap();
    teacher.send(json!({"t":"set","id":99,"patch":{"page": 7}})).await;
    last = loop {
        let ok = teacher.recv_type("ok").await;
        if ok["id"] == 99 {
            break ok["seq"].as_u64().unwrap();
        }
    };
    let shown = async { while record(client.next_event().await) != Some(last) {} };
    tokio::time::timeout(common::PATIENCE, shown).await.expect("the next turn in time");
    assert!(seqs.windows(2).all(|w| w[1] > w[0]), "each change once, in order: {seqs:?}");
    assert_eq!(seqs.iter().filter(|s| **s > last - 31).count(), 31, "every turn: {seqs:?}");
    // Both paths carried the 31 turns, and so did the teacher's own connection: 93 deliveries.
    let delivered = async {
        while metric(&server.metrics().await, "lectern_deliveries_total") - before < 93.0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(common::PATIENCE, delivered).await.expect("the turns on both paths");
    client.close().await;
    server.stop().await;
}

/// Behind a load balancer without affinity a second path can land on another relay than its
/// student's. That relay finds the student online on the first, through the presence each relay
/// keeps in Redis, takes the path, sends it every change, and closes it once the student has left.
/// A student online nowhere still gets 4400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_path_landing_on_another_relay_is_taken_there_while_its_student_is_online() {
    let redis = RedisServer::start().await;
    let server = bridged(&redis).await;
    let (relay1, ws1, fp1) = relay(&redis).await;
    let (relay2, ws2, fp2) = relay(&redis).await;
    let (mut teacher, _) = server.teacher().await;
    let room = server.handle.as_ref().unwrap().ready().room.clone();
    let device = "second-path-device-elsewhere";
    let hello =
        json!({"t":"hello","v":1,"role":"student","code":CODE,"name":"Bilal","device":device,"room":room});
    let (mut first, welcome) = hello_to(&ws1, &fp1, hello).await;
    // Its presence is written with its join, which the teacher's server has read once it is online.
    roster_where(&mut teacher, |e| e["remote"] == true && e["online"] == true).await;
    let (mut path, again) = hello_to(&ws2, &fp2, second(&welcome["token"], device, Some(&room))).await;
    assert_eq!(again["you"]["id"], welcome["you"]["id"], "{again}");
    assert_eq!(again["you"]["name"], "Bilal");

    for page in [3, 4] {
        teacher.send(json!({"t":"set","patch":{"page":page}})).await;
        let (a, b) = (first.recv_type("patch").await, path.recv_type("patch").await);
        assert_eq!((a["seq"].clone(), a["signed"].clone()), (b["seq"].clone(), b["signed"].clone()));
    }
    assert_eq!(up_entries(&redis, &room, "join").await, 1, "relay 2 announced no student of its own");

    // The student resumes on relay 1: the second path goes with the replaced first (4409), as on
    // the student's own relay.
    let resume =
        json!({"t":"hello","v":1,"role":"student","resume":welcome["token"],"device":device,"room":room});
    let (mut first, welcome) = hello_to(&ws1, &fp1, resume).await;
    assert_eq!(path.close_code().await, lectern::protocol::close::REPLACED);
    let (mut path, _) = hello_to(&ws2, &fp2, second(&welcome["token"], device, Some(&room))).await;
    teacher.send(json!({"t":"set","patch":{"page":5}})).await;
    assert_eq!(first.recv_type("patch").await["seq"], path.recv_type("patch").await["seq"]);
    // The student leaves relay 1: relay 2 closes the second path it took for it.
    first.ws.close(None).await.unwrap();
    assert_eq!(path.close_code().await, lectern::protocol::close::REPLACED);
    // Online nowhere now: its token opens no second path on either relay.
    let mut late = Raw { ws: lectern::client::connect(&ws2, &fp2).await.unwrap() };
    late.send(second(&welcome["token"], device, Some(&room))).await;
    assert_eq!(late.close_code().await, lectern::protocol::close::PROTOCOL);
    relay1.stop().await;
    relay2.stop().await;
}
