//! A weak Wi-Fi link is not a dead one (docs/WIFI.md). The server runs in one network namespace and
//! the Rust client (`lectern join`) in another; 10% of the packets to the client are dropped where
//! they arrive. The client must never declare the link dead and reconnect; once the link really dies
//! (everything dropped), it must notice within two heartbeats. The heartbeat is 1 s here, so that a
//! client that mistook a pong held up by loss for death would show it many times over.
//!
//! Needs root for the namespaces (CI runs as root); elsewhere it says so and skips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use common::ServeProcess;
use common::netns::NetPair;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_lectern");
const HEARTBEAT: Duration = Duration::from_secs(1);

#[test]
fn at_ten_percent_loss_the_client_keeps_its_link_and_a_dead_link_is_found_within_two_heartbeats() {
    let Some(net) = NetPair::create("l") else { return };
    net.offloads_off();
    let dir = tempfile::tempdir().unwrap();
    let mut serve = net.exec(&net.a, BIN);
    serve
        .args(["serve", "--json", "--no-mdns", "--listen", &format!("{}:0", net.addr_a), "--data-dir"])
        .arg(dir.path())
        .env("LECTERN_HEARTBEAT_MS", HEARTBEAT.as_millis().to_string());
    let (_server, ready) = ServeProcess::spawn(serve);

    let link = format!("{}/join#code={}&fp={}", ready.http, ready.code, ready.fingerprint);
    let client_dir = tempfile::tempdir().unwrap();
    let mut client = net
        .exec(&net.b, BIN)
        .args(["join", &link, "--name", "Aisha", "--json", "--data-dir"])
        .arg(client_dir.path())
        .env("LECTERN_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = client.stdout.take().unwrap();
    let (tx, events) = channel::<(Instant, Value)>();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && tx.send((Instant::now(), v)).is_err()
            {
                return;
            }
        }
    });
    let next = |within: Duration| events.recv_timeout(within).ok();
    let (_, first) = next(Duration::from_secs(15)).expect("the client reports");
    assert_eq!(first["event"], "connected", "{first}");

    // Thirty heartbeats at 10% loss: every event the client reports must be lesson news, never a drop.
    net.loss(0.10);
    let until = Instant::now() + 30 * HEARTBEAT;
    while let Some((_, e)) = next(until.saturating_duration_since(Instant::now())) {
        assert_ne!(e["event"], "disconnected", "a live link at 10% loss was declared dead: {e}");
        assert_ne!(e["event"], "stopped", "{e}");
    }

    // Now the link dies without a word: nothing reaches the client any more.
    let died = Instant::now();
    net.blackhole();
    let (at, e) = loop {
        let (at, e) = next(4 * HEARTBEAT).expect("the client notices the dead link");
        if e["event"] == "disconnected" {
            break (at, e);
        }
    };
    let noticed = at - died;
    assert!(
        noticed <= 2 * HEARTBEAT + Duration::from_millis(300),
        "a dead link must be noticed within two heartbeats, not {noticed:?}: {e}"
    );
    let _ = client.kill();
    let _ = client.wait();
}
