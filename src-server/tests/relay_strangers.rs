//! What a stranger on the internet can make a relay do (docs/THREAT-MODEL.md): hellos and info
//! requests for rooms nobody has published, from one address and from many.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use common::redis::RedisServer;
use common::remote::*;
use common::{CODE, PATIENCE, Raw, connect_from, request_from};
use lectern::config::Limits;
use lectern::tls::Identity;
use serde_json::{Value, json};
use std::net::IpAddr;

/// Connections Redis has accepted since it started (`INFO stats`).
async fn redis_connections(redis: &RedisServer) -> u64 {
    let client = lectern::cloud::connect::client(&redis.url(), redis.ca().as_deref()).unwrap();
    let mut conn = client.connect_blocking().await.unwrap();
    let info: String = redis::cmd("INFO").arg("stats").query_async(&mut conn).await.unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("total_connections_received:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

/// A hello for room `room` from 127.0.0.`host`: the close code it gets.
async fn hello_for(host: u8, ws: &str, fingerprint: &str, room: &str) -> u16 {
    let mut raw = Raw { ws: connect_from(host, ws, fingerprint).await };
    raw.send(json!({"t":"hello","v":1,"role":"student","code":"123456","name":"X","device":"stranger-dev","room":room}))
        .await;
    raw.close_code().await
}

/// A stranger's hellos for rooms that do not exist cost Redis one lookup a second per room at most,
/// open no connection of their own, and are counted against the address: past its quota it is
/// refused (4029) before the relay asks Redis anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hellos_for_unpublished_rooms_open_no_redis_connections_and_are_limited_per_address() {
    let redis = RedisServer::start().await;
    // Connections from one address unpaced, as for a relay behind a load balancer: only the count
    // of hellos for unpublished rooms holds the stranger back.
    let limits = Limits { max_connections_per_address: 1 << 20, ..Limits::default() };
    let identity = Identity::generate(&["localhost".into()], &[IpAddr::from([127, 0, 0, 1])]).unwrap();
    let (relay, ws, fingerprint) = relay_limited(redis.url(), None, identity, limits).await;
    // A lesson the relay serves already (a student from another address is in it).
    let server = bridged(&redis).await;
    let room = server.handle.as_ref().unwrap().ready().room.clone();
    tokio::time::timeout(PATIENCE, async {
        while relay_hello(9, &ws, &fingerprint, &room, CODE, "served-device-09").await.is_err() {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await; // polled until published
        }
    })
    .await
    .expect("the lesson is served");
    assert_eq!(hello_for(2, &ws, &fingerprint, "warmup").await, 4503);
    let before = redis_connections(&redis).await;
    let quota = lectern::transport::host::UNPUBLISHED_PER_MINUTE as usize;
    let mut codes = Vec::new();
    for batch in 0..(quota + 40) / 20 {
        let hellos = (0..20).map(|i| {
            let (ws, fingerprint) = (ws.clone(), fingerprint.clone());
            async move { hello_for(2, &ws, &fingerprint, &format!("nope-{batch}-{i}")).await }
        });
        codes.extend(futures_util::future::join_all(hellos).await);
    }
    let opened = redis_connections(&redis).await - before;
    // One for the count itself; a relay that opened connections per hello would have hundreds.
    assert!(opened <= 2, "{} hellos opened {opened} connections to redis", codes.len());
    assert!(codes.iter().all(|c| *c == 4503 || *c == 4029), "{codes:?}");
    let refused = codes.iter().filter(|c| **c == 4029).count();
    // (The quota refills a tenth of itself every 6 s, so a few more get through while this runs.)
    assert!(refused >= (codes.len() - quota) / 2, "only {refused} of {} refused past the quota", codes.len());
    assert_eq!(*codes.last().unwrap(), 4029, "{codes:?}");
    // Another address is not held back by this one's; and this one still joins a lesson the relay
    // serves (behind a load balancer, it is every student's address).
    assert_eq!(hello_for(3, &ws, &fingerprint, "nope-other").await, 4503);
    let joined = relay_hello(2, &ws, &fingerprint, &room, CODE, "served-device-02").await;
    assert!(joined.is_ok(), "a served lesson refused the address: {joined:?}");
    relay.stop().await;
}

/// The addresses a relay counts are forgotten once they are quiet: a stranger who tries from many
/// addresses leaves nothing behind that grows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_forgets_the_addresses_it_counted_once_they_are_quiet() {
    let redis = RedisServer::start().await;
    let (relay, ws, fingerprint) = relay(&redis).await;
    for host in 10..50 {
        assert_eq!(hello_for(host, &ws, &fingerprint, &format!("nope-{host}")).await, 4503);
    }
    assert!(relay.tracked_addresses() >= 40, "{} addresses counted", relay.tracked_addresses());
    tokio::time::timeout(PATIENCE, async {
        while relay.tracked_addresses() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await; // polled, not waited out
        }
    })
    .await
    .expect("the relay's upkeep forgets quiet addresses");
    relay.stop().await;
}

/// `GET /v1/info?room=` on a relay answers what a join page shows for a lesson it can serve, and
/// nothing for one that does not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_answers_info_for_the_room_a_link_names() {
    let redis = RedisServer::start().await;
    let server = bridged(&redis).await;
    let (relay, ws, fingerprint) = relay(&redis).await;
    let room = server.handle.as_ref().unwrap().ready().room.clone();
    let https = ws.replace("wss://", "https://");
    let get = |path: String| {
        let (https, fingerprint) = (https.clone(), fingerprint.clone());
        async move { request_from(4, &https, &fingerprint, "GET", &path, None, String::new()).await }
    };
    // The bridge publishes the room soon after the server starts.
    let info = tokio::time::timeout(PATIENCE, async {
        loop {
            let (status, body) = get(format!("/v1/info?room={room}")).await;
            if status == 200 {
                return serde_json::from_slice::<Value>(&body).unwrap();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await; // polled, not waited out
        }
    })
    .await
    .expect("the room's info");
    assert_eq!(info["room"], room.as_str());
    let title = server.app().room().info().title.clone();
    assert_eq!(info["title"], title.as_str());
    assert_eq!(info["fingerprint"], fingerprint.as_str());
    assert_eq!(info["knock"], false, "nobody at a relay can let a knock in");
    assert_eq!(get("/v1/info?room=nope".into()).await.0, 404);
    assert_eq!(get("/v1/info".into()).await.0, 400);
    relay.stop().await;
}
