//! What someone who can write into Redis, without the teacher's key, can do to remote students
//! (docs/THREAT-MODEL.md): remove them, refuse them, or make every relay send everyone a sync. None
//! of it works: removals and refusals are signed by the teacher's server, and a frame the teacher
//! did not sign costs a log line.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use common::redis::RedisServer;
use common::remote::*;
use common::{CODE, PATIENCE, Raw};
use lectern::client::Event;
use serde_json::{Value, json};

/// A remote student on a raw WebSocket through the relay at `ws`, after its welcome.
async fn raw_remote(ws: &str, fingerprint: &str, room: &str, device: &str) -> (Raw, Value) {
    let mut raw = Raw { ws: lectern::client::connect(ws, fingerprint).await.unwrap() };
    raw.send(
        json!({"t":"hello","v":1,"role":"student","code":CODE,"name":"Hafsa","device":device,"room":room}),
    )
    .await;
    let welcome = raw.recv_type("welcome").await;
    (raw, welcome)
}

/// Adds an entry to a stream, as any Redis client can.
async fn xadd(conn: &mut lectern::cloud::connect::Conn, key: &str, fields: &[(&str, &str)]) {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(key).arg("*");
    for (f, v) in fields {
        cmd.arg(*f).arg(*v);
    }
    let _: String = cmd.query_async(conn).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_writer_without_the_teachers_key_cannot_remove_refuse_or_resync_remote_students() {
    let redis = RedisServer::start().await;
    let server = bridged(&redis).await;
    let (relay, ws, fingerprint) = relay(&redis).await;
    let (mut teacher, _) = server.teacher().await;
    let room = server.handle.as_ref().unwrap().ready().room.clone();
    let (mut student, welcome) = raw_remote(&ws, &fingerprint, &room, "writer-test-device-1").await;
    let entry = roster_where(&mut teacher, |e| e["remote"] == true && e["online"] == true).await;
    let pid = entry["id"].as_str().unwrap().strip_prefix("r-").unwrap().to_string();
    let client = lectern::cloud::connect::client(&redis.url(), None).unwrap();
    let mut conn = client.connect().await.unwrap();
    let down = lectern::cloud::keys::down(&room);
    // The relay's id and the student's connection number, as the relay wrote them.
    let ups: lectern::cloud::keys::Entries = redis::cmd("XRANGE")
        .arg(lectern::cloud::keys::up(&room))
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    let join = ups.iter().find(|(_, f)| f.iter().any(|(k, v)| k == "k" && v == "join")).unwrap();
    let field = |name: &str| join.1.iter().find(|(k, _)| k == name).unwrap().1.clone();
    let (relay_id, conn_no) = (field("relay"), field("conn"));

    // A removal and a refusal with no signature, or another's.
    let sig = "A".repeat(86);
    xadd(&mut conn, &down, &[("k", "kick"), ("pid", &pid)]).await;
    xadd(&mut conn, &down, &[("k", "kick"), ("pid", &pid), ("s", &sig)]).await;
    let refuse =
        [("k", "refuse"), ("pid", pid.as_str()), ("relay", &relay_id), ("conn", &conn_no), ("s", &sig)];
    xadd(&mut conn, &down, &refuse).await;
    // A patch the teacher did not sign, for the next seq; and the latest signed sync written again.
    let forged = json!({"t":"patch","seq":welcome["seq"].as_u64().unwrap() + 1,"time":1,"patch":{"page":9},"signed":{"epoch":1,"sig":sig}});
    xadd(&mut conn, &down, &[("k", "patch"), ("f", &forged.to_string())]).await;
    let downs: lectern::cloud::keys::Entries =
        redis::cmd("XRANGE").arg(&down).arg("-").arg("+").query_async(&mut conn).await.unwrap();
    let sync = downs
        .iter()
        .rev()
        .find_map(|(_, f)| {
            (f.iter().any(|(k, v)| k == "k" && v == "sync"))
                .then(|| f.iter().find(|(k, _)| k == "f").unwrap().1.clone())
        })
        .unwrap();
    xadd(&mut conn, &down, &[("k", "sync"), ("f", &sync)]).await;

    // The relay counted each, and the student saw none of it: no close, no sync, no page 9; the
    // teacher's next change is the next thing it gets.
    tokio::time::timeout(PATIENCE, async {
        while common::metric(&relay.metrics(), "lectern_relay_forged_entries_total") < 4.0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await; // polled, not waited out
        }
    })
    .await
    .expect("the relay dropped the forged entries");
    teacher.send(json!({"t":"set","patch":{"page":3}})).await;
    loop {
        let frame: Value = student.recv().await;
        assert_ne!(frame["t"], "sync", "a forged or replayed entry made the relay resync: {frame}");
        if frame["t"] == "patch" {
            assert_eq!(frame["patch"]["page"], 3, "{frame}");
            break;
        }
    }
    let still = on_roster(&server, |e| e["remote"] == true).await;
    assert_eq!(still["online"], true, "{still}");
    assert_ne!(still["kicked"], true, "{still}");
    relay.stop().await;
}

/// Someone who can write into Redis tries to make the teacher's server sign a refusal of a remote
/// student: the student is said to leave, the one seat is taken by a made-up student, and the
/// student is said to join again on its relay and connection. The teacher's server refuses that
/// join and signs the refusal, but for the forger's entry, which the relay never wrote: the student
/// stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_writer_cannot_make_the_teachers_server_sign_a_refusal_of_a_student() {
    let redis = RedisServer::start().await;
    let limits = lectern::config::Limits { max_participants: 1, ..lectern::config::Limits::default() };
    let server = bridged_with(redis.url(), None, limits).await;
    let (relay, ws, fingerprint) = relay(&redis).await;
    let (mut teacher, _) = server.teacher().await;
    let room = server.handle.as_ref().unwrap().ready().room.clone();
    let (mut student, _) = raw_remote(&ws, &fingerprint, &room, "writer-test-device-2").await;
    let entry = roster_where(&mut teacher, |e| e["remote"] == true && e["online"] == true).await;
    let pid = entry["id"].as_str().unwrap().strip_prefix("r-").unwrap().to_string();
    let client = lectern::cloud::connect::client(&redis.url(), None).unwrap();
    let mut conn = client.connect().await.unwrap();
    let up = lectern::cloud::keys::up(&room);
    let ups: lectern::cloud::keys::Entries =
        redis::cmd("XRANGE").arg(&up).arg("-").arg("+").query_async(&mut conn).await.unwrap();
    let join = ups.iter().find(|(_, f)| f.iter().any(|(k, v)| k == "k" && v == "join")).unwrap();
    let field = |name: &str| join.1.iter().find(|(k, _)| k == name).unwrap().1.clone();
    let (relay_id, conn_no) = (field("relay"), field("conn"));
    let as_relay = |k: &'static str, pid: String| {
        let (relay_id, conn_no) = (relay_id.clone(), conn_no.clone());
        move || {
            vec![
                ("k", k.to_string()),
                ("relay", relay_id),
                ("pid", pid),
                ("name", "X".into()),
                ("conn", conn_no),
            ]
        }
    };
    for fields in [
        as_relay("leave", pid.clone())(),
        as_relay("join", "made-up".into())(),
        as_relay("join", pid.clone())(),
    ] {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        xadd(&mut conn, &up, &fields).await;
    }
    // The teacher's server signed a refusal for the forged join; the relay dropped it.
    tokio::time::timeout(PATIENCE, async {
        while common::metric(&relay.metrics(), "lectern_relay_forged_entries_total") < 1.0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await; // polled, not waited out
        }
    })
    .await
    .expect("the relay dropped the refusal");
    teacher.send(json!({"t":"set","patch":{"page":4}})).await;
    loop {
        let frame: Value = student.recv().await;
        if frame["t"] == "patch" {
            assert_eq!(frame["patch"]["page"], 4, "{frame}");
            break;
        }
    }
    relay.stop().await;
}

/// The room's title reaches remote students with the teacher's signature (kind 5), in the welcome
/// and on the relay's join page, so a page behind a relay can tell it from a title someone wrote
/// into Redis: a title rewritten in Redis reaches a new relay's welcome with a signature that does
/// not check (the clients' side is `client::trust_tests` and `ui/src/relaycheck.test.ts`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_title_remote_students_see_is_signed_by_the_teacher() {
    use lectern::protocol::signed::{Kind, title_digest};
    let redis = RedisServer::start().await;
    let server = bridged(&redis).await;
    let (_relay, ws, fingerprint) = relay(&redis).await;
    let room = server.handle.as_ref().unwrap().ready().room.clone();
    let (_student, welcome) = raw_remote(&ws, &fingerprint, &room, "writer-test-device-3").await;
    let verifier = lectern::protocol::sign::Verifier::new(&server.app().pk, &room).unwrap();
    let epoch = welcome["signed"]["epoch"].as_u64().unwrap();
    let signed = |title: &str, sig: &Value, epoch: u64| {
        let sig = lectern::protocol::Signed { epoch, sig: sig.as_str().unwrap_or_default().to_string() };
        verifier.check_digest(Kind::Title, 0, 0, &title_digest(title), &sig)
    };
    let title = welcome["room"]["title"].as_str().unwrap();
    let sig = &welcome["room"]["title_sig"];
    assert!(signed(title, sig, epoch), "the welcome's title is the teacher's, in its epoch: {welcome}");
    assert!(!signed("Class cancelled: join at https://evil.example", sig, epoch));

    let (status, body) = common::request_from(
        1,
        &ws,
        &fingerprint,
        "GET",
        &format!("/v1/info?room={room}"),
        None,
        String::new(),
    )
    .await;
    assert_eq!(status, 200);
    let info: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(info["title_epoch"].as_u64(), Some(epoch), "{info}");
    assert!(signed(info["title"].as_str().unwrap(), &info["title_sig"], epoch), "{info}");

    // Whoever writes into Redis can change the title, not sign it.
    let client = lectern::cloud::connect::client(&redis.url(), None).unwrap();
    let mut conn = client.connect().await.unwrap();
    let key = lectern::cloud::keys::meta(&room);
    let meta: String = redis::cmd("GET").arg(&key).query_async(&mut conn).await.unwrap();
    let mut meta: Value = serde_json::from_str(&meta).unwrap();
    meta["title"] = json!("Class cancelled: join at https://evil.example");
    let _: () = redis::cmd("SET").arg(&key).arg(meta.to_string()).query_async(&mut conn).await.unwrap();
    // A relay that opens the room now passes the rewritten title on, with a signature that does
    // not check: the Rust client behind it (lectern join's) shows none of it, and the first relay's
    // student, whose title the teacher signed, keeps it.
    let title_seen = |mut client: lectern::client::Client| async move {
        match common::wait_for(&mut client, |e| matches!(e, Event::Connected { .. })).await {
            Event::Connected { room, .. } => room.title,
            _ => unreachable!(),
        }
    };
    assert_eq!(title_seen(remote_student(&server, &ws, &fingerprint, "Yusuf")).await, title);
    let (_other, ws2, fingerprint2) = relay(&redis).await;
    assert_eq!(title_seen(remote_student(&server, &ws2, &fingerprint2, "Zaid")).await, "");
}

/// Renamed: the teacher's server restarted with another title, which holds for its new epoch only
/// (section E). A relay following the room shows the new title to the students who join next, and
/// a Redis writer who puts the old title and its signature back gets it shown to nobody: a new
/// relay's welcome carries it with a state of the new epoch, and the client drops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_title_reaches_remote_students_and_the_old_one_cannot_be_put_back() {
    let redis = RedisServer::start().await;
    let server = bridged(&redis).await;
    let (_relay, ws, fingerprint) = relay(&redis).await;
    let room = server.handle.as_ref().unwrap().ready().room.clone();
    let (mut hafsa, welcome) = raw_remote(&ws, &fingerprint, &room, "writer-test-device-4").await;
    let (old_title, old_epoch) = (welcome["room"]["title"].clone(), welcome["signed"]["epoch"].clone());
    let client = lectern::cloud::connect::client(&redis.url(), None).unwrap();
    let mut conn = client.connect().await.unwrap();
    let key = lectern::cloud::keys::meta(&room);
    let old_meta: String = redis::cmd("GET").arg(&key).query_async(&mut conn).await.unwrap();

    // The teacher's server restarts with another title: the same room, a new epoch.
    let port = server.port();
    let dir = server.stop().await;
    let mut config = common::test_config(dir.path(), Default::default(), Default::default());
    config.redis = Some(redis.url());
    config.redis_ca = redis.ca();
    config.title = Some("Surah Al-Mulk, verses 1-10".into());
    let server = common::TestServer::from_config(dir, config, &format!("127.0.0.1:{port}")).await;
    assert_eq!(server.handle.as_ref().unwrap().ready().room, room, "a restart keeps the room");
    let sync = hafsa.recv_type("sync").await;
    assert_ne!(sync["signed"]["epoch"], old_epoch, "the relay's students are sent the new epoch");
    let title_seen = |mut client: lectern::client::Client| async move {
        match common::wait_for(&mut client, |e| matches!(e, Event::Connected { .. })).await {
            Event::Connected { room, .. } => room.title,
            _ => unreachable!(),
        }
    };
    assert_eq!(
        title_seen(remote_student(&server, &ws, &fingerprint, "Yusuf")).await,
        "Surah Al-Mulk, verses 1-10"
    );

    // The old title, with the signature the teacher's server once made for it, written back.
    let _: () = redis::cmd("SET").arg(&key).arg(&old_meta).query_async(&mut conn).await.unwrap();
    assert!(old_meta.contains(old_title.as_str().unwrap()), "{old_meta}");
    let (_other, ws2, fingerprint2) = relay(&redis).await;
    assert_eq!(
        title_seen(remote_student(&server, &ws2, &fingerprint2, "Zaid")).await,
        "",
        "a title of an earlier epoch is not shown"
    );
}
