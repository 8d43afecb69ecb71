//! One budget of wrong join codes per room (docs/PROTOCOL-ADDITIONS.md, G), shared in Redis by the
//! teacher's server and every relay: a guesser gains nothing by spreading guesses over relays, or by
//! waiting for a relay to rebuild its copy of the room.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use common::redis::RedisServer;
use common::remote::*;
use common::{PATIENCE, Raw, TestServer, connect_from, test_config};
use lectern::config::{Limits, Timing};
use serde_json::json;

/// A 4-digit code: the room answers 10 wrong codes an hour, one of them at once.
const SHORT_CODE: &str = "4821";

async fn bridged_with_short_code(redis: &RedisServer) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), Limits::default(), Timing::default());
    config.code = Some(SHORT_CODE.into());
    config.redis = Some(redis.url());
    TestServer::from_config(dir, config, "127.0.0.1:0").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_code_on_one_relay_spends_the_budget_on_every_relay_and_on_the_teachers_server() {
    let redis = RedisServer::start().await;
    let server = bridged_with_short_code(&redis).await;
    let (relay1, ws1, fp1) = relay(&redis).await;
    let (relay2, ws2, fp2) = relay(&redis).await;
    let room = server.handle.as_ref().unwrap().ready().room.clone();
    // The right code gets in (and costs the budget nothing) once the room is published.
    tokio::time::timeout(PATIENCE, async {
        loop {
            match relay_hello(5, &ws1, &fp1, &room, SHORT_CODE, "guess-device-0005").await {
                Ok(_) => return,
                Err(4503) => tokio::time::sleep(std::time::Duration::from_millis(50)).await, // polled
                Err(code) => panic!("the right code was refused with {code}"),
            }
        }
    })
    .await
    .expect("the room is published");

    // One wrong code on the first relay: the room's one check of the hour is spent.
    assert_eq!(relay_hello(6, &ws1, &fp1, &room, "0000", "guess-device-0006").await.err(), Some(4001));
    // On the other relay the right code now gets what section G says: 4029, not a seat and not
    // "wrong code".
    assert_eq!(relay_hello(7, &ws2, &fp2, &room, SHORT_CODE, "guess-device-0007").await.err(), Some(4029));
    // And on the teacher's server a claim with the right code waits for the teacher.
    let mut raw = Raw { ws: connect_from(8, &server.ws, &server.fingerprint).await };
    raw.send(json!({"t":"hello","v":1,"role":"student","code":SHORT_CODE,"name":"Held","device":"guess-device-0008"}))
        .await;
    let first = raw.recv().await;
    assert_eq!(first["t"], "waiting", "{first}");
    relay1.stop().await;
    relay2.stop().await;
}
