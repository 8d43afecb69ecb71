//! A student on a weak link that falls behind a lesson full of ink is sent only the pages whose marks it
//! lacks (docs/PROTOCOL-ADDITIONS.md, O), never the whole layer again, and ends with exactly the
//! teacher's state; a client that did not ask, or that asks for a `resync`, is sent the whole state.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use std::time::Duration;

use common::{CODE, Raw, TestServer, device};
use lectern::protocol::partial::{PartialSync, merged};
use lectern::protocol::{LessonState, Patch};
use serde_json::{Value, json};

/// A stroke of 60 points across the page, `id` on its page.
fn stroke(page: u64, id: u64) -> Value {
    let y = 500 + (id % 18) * 500;
    let points: Vec<[u64; 3]> = (0..60).map(|i| [500 + i * 150, y + i % 7, 60]).collect();
    let mark = json!({"id":id,"x":0.05,"y":y as f64 / 10_000.0,"w":0.885,"h":0.0006,"ink":{"color":"red","width":4,"points":points}});
    json!({"op":"add","page":page,"mark":mark})
}

/// A student whose socket buffers little, so that the server's queue for it fills once it stops
/// reading: on the server at `ws` (port `port`), in `room` behind a relay. `partial` says whether its
/// hello asks for partial syncs.
async fn stalled(
    ws: &str,
    fingerprint: &str,
    room: Option<&str>,
    n: usize,
    partial: bool,
) -> (Raw, LessonState) {
    let port = ws.split(':').nth(2).and_then(|p| p.split('/').next()).unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(format!("127.0.0.1:{port}").parse().unwrap()).await.unwrap();
    let ws = lectern::client::connect_over(tcp, ws, fingerprint).await.unwrap();
    let mut raw = Raw { ws };
    let mut hello = json!({"t":"hello","v":1,"role":"student","code":CODE,"name":format!("Slow {n}"),"device":device(90 + n)});
    if partial {
        hello["partial_sync"] = json!(true);
    }
    if let Some(room) = room {
        hello["room"] = json!(room);
    }
    raw.send(hello).await;
    let welcome = raw.recv_type("welcome").await;
    (raw, serde_json::from_value(welcome["state"].clone()).unwrap())
}

/// Reads until the state at `last` is reached, applying patches and syncs as a client does, and
/// handing each sync's whole state to `check`. Returns the state, and the syncs that came (their
/// frames, and their sizes in bytes).
async fn follow(
    raw: &mut Raw,
    mut state: LessonState,
    last: u64,
    check: impl Fn(&Value, &LessonState),
) -> (LessonState, Vec<(Value, usize)>) {
    let mut seq = 0;
    let mut syncs = Vec::new();
    while seq < last {
        let v = raw.recv().await;
        match v["t"].as_str() {
            Some("patch") => {
                let s = v["seq"].as_u64().unwrap();
                if seq == 0 || s == seq + 1 {
                    let patch: Patch = serde_json::from_value(v["patch"].clone()).unwrap();
                    state.apply(&patch);
                    seq = s;
                }
            }
            Some("sync") => {
                let size = v.to_string().len();
                let sent: LessonState = serde_json::from_value(v["state"].clone()).unwrap();
                state = match serde_json::from_value::<Option<PartialSync>>(v["partial"].clone()).unwrap() {
                    Some(p) => {
                        assert!(seq >= p.since, "a partial sync since {} to a client at {seq}", p.since);
                        merged(&state, sent, &p)
                    }
                    None => sent,
                };
                seq = v["seq"].as_u64().unwrap();
                check(&v, &state);
                syncs.push((v, size));
            }
            _ => {}
        }
    }
    (state, syncs)
}

/// The teacher's `ok` for its last `set` (an `error` fails the test, saying why).
async fn answered(teacher: &mut Raw) -> Value {
    loop {
        let v = teacher.recv().await;
        match v["t"].as_str() {
            Some("ok") => return v,
            Some("error") => panic!("the set was refused: {v}"),
            _ => {}
        }
    }
}

/// The lesson so far: 3 pages of 30 strokes each (about 60 kB of ink).
async fn ink_three_pages(teacher: &mut Raw) {
    let mut id = 0;
    for page in 1..=3 {
        for batch in 0..3 {
            let ops: Vec<Value> = (0..10)
                .map(|_| {
                    id += 1;
                    stroke(page, id)
                })
                .collect();
            teacher.send(json!({"t":"set","id":page * 10 + batch,"patch":{"marks":ops}})).await;
            answered(teacher).await;
        }
    }
}

/// While the stalled students read nothing: the teacher turns `turns` times, and halfway writes on
/// page 4 and clears page 2 (large notices fill the stalled sockets sooner, so their queues
/// overflow). Returns the last seq.
async fn write_and_turn(teacher: &mut Raw, turns: u64) -> u64 {
    let notice = "ن".repeat(270);
    let mut n = 0;
    let mut set = async |patch: Value| {
        n += 1;
        teacher.send(json!({"t":"set","id":1000 + n,"patch":patch})).await;
        answered(teacher).await["seq"].as_u64().unwrap()
    };
    let mut last = 0;
    for i in 0..turns {
        if i == turns / 2 {
            set(json!({"marks":[stroke(4, 1), stroke(4, 2)]})).await;
            set(json!({"marks":[{"op":"clear","page":2}]})).await;
        }
        last = set(json!({"page": i % 4 + 1, "notice": format!("{i} {notice}")})).await;
    }
    last
}

/// Every sync names only pages that changed after what the student had, and carries only those of
/// them that still have marks: pages 1 and 3 (60 strokes) never travel again.
fn assert_only_pages_2_and_4(syncs: &[(Value, usize)]) {
    assert!(!syncs.is_empty(), "the stalled student fell behind");
    let mut named = Vec::new();
    for (sync, _) in syncs {
        let pages: Vec<u64> = serde_json::from_value(sync["partial"]["pages"].clone()).unwrap();
        assert!(pages.iter().all(|p| [2, 4].contains(p)), "only the pages that changed: {}", sync["partial"]);
        let sent: Vec<&String> = sync["state"]["marks"].as_object().unwrap().keys().collect();
        assert!(sent.iter().all(|p| *p == "4"), "page 2 is named, cleared; 1 and 3 stay home: {sent:?}");
        named.extend(pages);
    }
    named.sort_unstable();
    named.dedup();
    assert_eq!(named, [2, 4], "the changes made while it was behind came in partial syncs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_student_who_falls_behind_is_sent_only_the_pages_whose_marks_changed() {
    let server = TestServer::with(|l, t| {
        l.queue_capacity = 32;
        l.teacher_rate = 100_000;
        l.teacher_burst = 100_000;
        t.heartbeat = Duration::from_secs(120);
    })
    .await;
    let (mut teacher, welcome) = server.teacher().await;
    let pages = welcome["state"]["doc"]["pages"].as_u64().unwrap();
    assert!(pages >= 4, "the test document has {pages} pages");
    ink_three_pages(&mut teacher).await;
    let (mut partial, partial_state) = stalled(&server.ws, &server.fingerprint, None, 1, true).await;
    let (mut whole, whole_state) = stalled(&server.ws, &server.fingerprint, None, 2, false).await;
    let last = write_and_turn(&mut teacher, 600).await;
    let (_, fresh) = server.student("Late", &device(50)).await;
    let teachers: LessonState = serde_json::from_value(fresh["state"].clone()).unwrap();

    let (mine, syncs) = follow(&mut partial, partial_state, last, |_, _| {}).await;
    assert_eq!(mine, teachers, "the merged state is the teacher's");
    assert_only_pages_2_and_4(&syncs);
    let (theirs, full) = follow(&mut whole, whole_state, last, |_, _| {}).await;
    assert_eq!(theirs, teachers);
    assert!(
        !full.is_empty() && full.iter().all(|(s, _)| s.get("partial").is_none()),
        "no partial sync unasked"
    );
    let (small, big) = (syncs[0].1, full[0].1);
    eprintln!("first sync: {small} bytes partial, {big} bytes whole");
    assert!(small * 10 < big, "a partial sync of {small} bytes against a whole one of {big}");

    // A client that asks for a resync may hold a wrong state: it is sent all of it.
    partial.send(json!({"t":"resync"})).await;
    let answer = partial.recv_type("sync").await;
    assert!(answer.get("partial").is_none(), "{}", answer["partial"]);
    assert_eq!(serde_json::from_value::<LessonState>(answer["state"].clone()).unwrap(), teachers);
}

/// Behind a relay: the relay's copy of the room makes the partial sync, with the teacher's server's
/// signature of the whole state, and the student's merged state checks against the teacher's key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_relay_a_merged_partial_sync_is_the_state_the_teacher_signed() {
    use common::redis::RedisServer;
    use common::remote::{bridged_with, relay_limited, remote_student, state_where};
    use lectern::protocol::sign::Verifier;
    use lectern::protocol::signed::Kind;

    let redis = RedisServer::start().await;
    let mut limits =
        lectern::config::Limits { teacher_rate: 100_000, teacher_burst: 100_000, ..Default::default() };
    let server = bridged_with(redis.url(), redis.ca(), limits.clone()).await;
    limits.queue_capacity = 32;
    let identity = lectern::tls::Identity::generate(&["localhost".into()], &[[127, 0, 0, 1].into()]).unwrap();
    let (relay, ws, fingerprint) = relay_limited(redis.url(), redis.ca(), identity, limits).await;
    let (mut teacher, _) = server.teacher().await;
    ink_three_pages(&mut teacher).await;
    // The relay has the ink once a student there sees it.
    let mut follower = remote_student(&server, &ws, &fingerprint, "Yusuf");
    state_where(&mut follower, |s| s.marks.page(3).len() == 30).await;

    let room = server.handle.as_ref().unwrap().ready().room.clone();
    let pk = lectern::files::load_signer(server.dir.path()).unwrap().public();
    let verifier = Verifier::new(&pk, &room).unwrap();
    let (mut partial, state) = stalled(&ws, &fingerprint, Some(&room), 1, true).await;
    let last = write_and_turn(&mut teacher, 400).await;
    let (_, teachers) =
        state_where(&mut follower, |s| s.notice.as_deref().is_some_and(|n| n.starts_with("399 "))).await;

    let checked = std::sync::atomic::AtomicUsize::new(0);
    let (mine, syncs) = follow(&mut partial, state, last, |sync, whole| {
        let seq = sync["seq"].as_u64().unwrap();
        let signed = serde_json::from_value(sync["signed"].clone()).unwrap();
        assert!(verifier.check(Kind::State, seq, 0, whole, &signed), "the merged state at {seq} is signed");
        checked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    })
    .await;
    assert_eq!(mine, teachers);
    assert_only_pages_2_and_4(&syncs);
    assert_eq!(checked.into_inner(), syncs.len());
    follower.close().await;
    relay.stop().await;
}
