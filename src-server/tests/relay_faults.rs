//! Remote students when things fail (docs/RELAY.md, "Faults"): Redis killed for 30 s, a relay that
//! dies behind a load balancer, a relay that crashes, a relay cut off from Redis for a moment, the
//! teacher's server cut off twenty times, Redis over TLS with a password, and a three-node Redis
//! Cluster.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use std::net::IpAddr;

use common::PATIENCE;
use common::redis::RedisServer;
use common::relays::{CutProxy, load_balancer, relay_process};
use common::remote::*;
use lectern::client::Event;
use lectern::tls::Identity;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_redis_dies_the_local_class_carries_on_and_remote_students_catch_up_once_it_is_back() {
    let mut redis = RedisServer::start().await;
    let port = redis.port;
    let server = bridged(&redis).await;
    let (relay, ws, fingerprint) = relay(&redis).await;
    let (mut teacher, _) = server.teacher().await;
    let (mut local, _) = server.student("Local", &common::device(1)).await;
    let mut remote = remote_student(&server, &ws, &fingerprint, "Far");
    state_where(&mut remote, |_| true).await;
    teacher.send(json!({"t":"set","id":1,"patch":{"page":2}})).await;
    state_where(&mut remote, |s| s.page == 2).await;

    redis.kill();
    // The class in the room: every change is answered and arrives, as if nothing happened.
    for (id, page) in [(2, 3), (3, 4)] {
        teacher.send(json!({"t":"set","id":id,"patch":{"page":page}})).await;
        while teacher.recv_type("ok").await["id"] != id {}
        loop {
            let patch = local.recv_type("patch").await;
            if patch["patch"]["page"] == page {
                break;
            }
        }
    }
    // The remote student hears nothing more from the teacher: the relay says nothing in the
    // teacher's name (only the teacher's signed beats say whether the teacher is there), and the
    // client notices the beats stop.
    // Redis stays down for 30 s, while the teacher keeps pointing and the room keeps following.
    let outage = std::time::Instant::now();
    let mut id = 10;
    while outage.elapsed() < std::time::Duration::from_secs(30) {
        id += 1;
        let x = f64::from(id % 10) / 10.0;
        teacher.send(json!({"t":"set","id":id,"patch":{"pos":{"x":x,"y":0.5}}})).await;
        while teacher.recv_type("ok").await["id"] != id {}
        while local.recv_type("patch").await["patch"]["pos"]["x"] != json!(x) {}
        tokio::time::sleep(std::time::Duration::from_millis(500)).await; // the teacher's pace
    }
    let _redis = RedisServer::on(port).await;
    let back = std::time::Instant::now();
    state_where(&mut remote, |s| s.page == 4).await;
    println!("remote student on the current page {} ms after redis came back", back.elapsed().as_millis());
    // The relay tells the teacher's server who is still here (it had lost them with Redis).
    let entry = on_roster(&server, |e| e["remote"] == true && e["online"] == true).await;
    assert_eq!(entry["name"], "Far");
    teacher.send(json!({"t":"set","patch":{"page":5}})).await;
    state_where(&mut remote, |s| s.page == 5).await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_relay_dies_its_students_resume_on_the_other() {
    let redis = RedisServer::start().await;
    let server = bridged(&redis).await;
    // Two relays behind one load balancer, with one certificate, as a district would run them.
    let identity = Identity::generate(&["localhost".into()], &[IpAddr::from([127, 0, 0, 1])]).unwrap();
    let (relay_a, _, fingerprint) = relay_with(&redis, identity.clone()).await;
    let (relay_b, _, _) = relay_with(&redis, identity).await;
    let port = load_balancer(vec![relay_a.addr(), relay_b.addr()]).await;
    let ws = format!("wss://127.0.0.1:{port}/v1/ws");
    let (mut teacher, _) = server.teacher().await;
    let mut student = remote_student(&server, &ws, &fingerprint, "Hafsa");
    state_where(&mut student, |_| true).await;
    let first = roster_where(&mut teacher, |e| e["remote"] == true && e["online"] == true).await;
    assert_eq!(relay_a.mirrors().rooms().rooms().len(), 1, "the student is on the first relay");

    relay_a.stop().await;
    // The client comes back through the balancer, now to the other relay, as the same participant.
    tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(Event::Connected { resumed, .. }) = student.next_event().await {
                assert!(resumed, "resumed with its token, not joined anew");
                return;
            }
        }
    })
    .await
    .expect("back in time");
    // On the teacher's roster the student is online, under the same id (whether its leave from the
    // first relay or its join through the second reached the teacher's server first).
    let again = on_roster(&server, |e| e["id"] == first["id"] && e["online"] == true).await;
    assert_eq!(again["name"], "Hafsa");
    teacher.send(json!({"t":"set","patch":{"page":9}})).await;
    state_where(&mut student, |s| s.page == 9).await;
    assert_eq!(relay_b.mirrors().rooms().rooms().len(), 1);
    student.close().await;
    relay_b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_crashes_takes_its_students_off_the_teachers_roster() {
    let redis = RedisServer::start().await;
    let server = bridged(&redis).await;
    let (relay, ws, fingerprint) = relay_process(&redis.url(), 500);
    let (mut teacher, _) = server.teacher().await;
    let mut student = remote_student(&server, &ws, &fingerprint, "Ghost");
    state_where(&mut student, |_| true).await;
    let online = roster_where(&mut teacher, |e| e["remote"] == true && e["online"] == true).await;

    // The relay dies without a word: no leave reaches the teacher's server, and the student, with
    // no other relay to go to, is away. The roster must not show it online for the rest of the lesson.
    relay.signal("-KILL");
    let crashed = std::time::Instant::now();
    roster_where(&mut teacher, |e| e["id"] == online["id"] && e["online"] == false).await;
    println!("offline on the roster {} ms after its relay crashed", crashed.elapsed().as_millis());
    let csv = attendance(&server).await;
    assert!(csv.contains("Ghost"), "{csv}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_cut_off_from_redis_for_a_moment_settles_who_left_meanwhile() {
    let redis = RedisServer::start().await;
    let server = bridged(&redis).await;
    // The relay reaches Redis through a link the test can cut; the teacher's server does not.
    let proxy = CutProxy::start(([127, 0, 0, 1], redis.port).into()).await;
    let identity = Identity::generate(&["localhost".into()], &[IpAddr::from([127, 0, 0, 1])]).unwrap();
    let (relay, ws, fingerprint) =
        relay_to(format!("redis://127.0.0.1:{}", proxy.port), None, identity).await;
    let (mut teacher, _) = server.teacher().await;
    let mut stays = remote_student(&server, &ws, &fingerprint, "Stays");
    let mut leaves = remote_student(&server, &ws, &fingerprint, "Leaves");
    state_where(&mut stays, |_| true).await;
    state_where(&mut leaves, |_| true).await;
    let gone = roster_where(&mut teacher, |e| e["name"] == "Leaves" && e["online"] == true).await;

    // While the relay cannot reach Redis, one student leaves: its leave cannot be written.
    proxy.cut();
    leaves.close().await;
    tokio::time::timeout(PATIENCE, async {
        while common::metric(&relay.metrics(), "lectern_relay_lost_entries_total") < 1.0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await; // polled, not waited out
        }
    })
    .await
    .expect("the relay noticed it lost an entry");
    proxy.mend();
    // Once back, the relay says whom it has: the one who left goes offline, the other stays online.
    on_roster(&server, |e| e["id"] == gone["id"] && e["online"] == false).await;
    let stayed = on_roster(&server, |e| e["name"] == "Stays").await;
    assert_eq!(stayed["online"], true, "{stayed}");
    teacher.send(json!({"t":"set","patch":{"page":3}})).await;
    state_where(&mut stays, |s| s.page == 3).await;
    relay.stop().await;
}

/// The relays answer the bridge's new epoch by saying whom they have within a millisecond or so of
/// seeing it: the teacher's server must read those entries however late its reader restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_each_of_twenty_redis_outages_the_roster_has_the_remote_students_back() {
    let redis = RedisServer::start().await;
    // The teacher's server reaches Redis through a link the test can cut; the relay does not.
    let proxy = CutProxy::start(([127, 0, 0, 1], redis.port).into()).await;
    let server = bridged_to(format!("redis://127.0.0.1:{}", proxy.port), None).await;
    let (relay, ws, fingerprint) = relay(&redis).await;
    let (mut teacher, _) = server.teacher().await;
    let mut student = remote_student(&server, &ws, &fingerprint, "Far");
    state_where(&mut student, |_| true).await;
    roster_where(&mut teacher, |e| e["remote"] == true && e["online"] == true).await;
    for round in 0..20 {
        let page = 2 + round % 5;
        proxy.cut();
        // The teacher's next change finds Redis gone: its remote students go offline meanwhile.
        teacher.send(json!({"t":"set","patch":{"page": page}})).await;
        roster_where(&mut teacher, |e| e["remote"] == true && e["online"] == false).await;
        proxy.mend();
        println!("round {round}: redis is back");
        roster_where(&mut teacher, |e| e["remote"] == true && e["online"] == true).await;
        state_where(&mut student, |s| s.page == page).await;
    }
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_and_relays_reach_redis_over_tls_with_a_password() {
    let redis = RedisServer::with_tls("correct horse battery staple").await;
    assert!(redis.url().starts_with("rediss://"));
    let server = bridged(&redis).await;
    let (relay, ws, fingerprint) = relay(&redis).await;
    let (mut teacher, _) = server.teacher().await;
    let mut student = remote_student(&server, &ws, &fingerprint, "Zainab");
    state_where(&mut student, |_| true).await;
    teacher.send(json!({"t":"set","patch":{"page":4}})).await;
    state_where(&mut student, |s| s.page == 4).await;
    student.hand(true);
    roster_where(&mut teacher, |e| e["remote"] == true && e["hand"] == true).await;
    student.close().await;
    relay.stop().await;

    // A wrong password is not a way in.
    let wrong = redis.url().replace("correct horse", "wrong horse");
    let client = lectern::cloud::connect::client(&wrong, redis.ca().as_deref()).unwrap();
    assert!(client.connect().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_flow_works_on_a_three_node_redis_cluster() {
    let cluster = common::redis::RedisCluster::start().await;
    let server = bridged_to(cluster.url(), None).await;
    let identity = Identity::generate(&["localhost".into()], &[IpAddr::from([127, 0, 0, 1])]).unwrap();
    let (relay, ws, fingerprint) = relay_to(cluster.url(), None, identity).await;
    let (mut teacher, _) = server.teacher().await;
    let mut student = remote_student(&server, &ws, &fingerprint, "Idris");
    state_where(&mut student, |_| true).await;
    for page in 2..=5 {
        teacher.send(json!({"t":"set","patch":{"page":page}})).await;
    }
    state_where(&mut student, |s| s.page == 5).await;
    student.hand(true);
    roster_where(&mut teacher, |e| e["remote"] == true && e["hand"] == true).await;
    student.close().await;
    relay.stop().await;
}
