//! A lesson socket's minimum retransmission timeout is really lowered (docs/WIFI.md): the kernel's own
//! account of the server's end of a student's connection (`ss -ti`) shows its RTO. On loopback, where
//! the round trip is microseconds, the RTO is the minimum: about 5 ms when Lectern sets it, 200 ms when
//! it keeps the system's. Not a timed test: it reads a setting back, it measures nothing.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use std::time::Duration;

use common::{TestServer, device};

/// Round trips, so that the kernel's estimate settles (it starts at 1 s and comes down a quarter of
/// the way per round).
async fn round_trips(s: &mut common::Raw, n: u32) {
    for id in 0..n {
        s.send(serde_json::json!({"t":"ping","id":id})).await;
        s.recv_type("pong").await;
    }
}

/// The RTO (ms) of every established TCP socket whose local port is `port`, as `ss` reports it.
fn server_rtos(port: u16) -> Vec<f64> {
    let out = std::process::Command::new("ss")
        .args(["-tinH", "state", "established", &format!("( sport = :{port} )")])
        .output()
        .expect("ss (iproute2) runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("rto:"))
        .map(|v| v.parse().unwrap())
        .collect()
}

/// Whether this kernel has `TCP_RTO_MIN_US` (Linux 6.15 and later).
fn kernel_has_the_option() -> bool {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let s = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    lectern::tcp::set_rto_min(&s, Duration::from_millis(5)).is_ok()
}

#[tokio::test]
async fn lesson_sockets_retransmit_after_milliseconds_not_200_ms() {
    let server = TestServer::start().await;
    let (mut s, _) = server.student("A", &device(1)).await;
    round_trips(&mut s, 40).await;
    let rtos = server_rtos(server.port());
    assert_eq!(rtos.len(), 1, "one student socket: {rtos:?}");
    if kernel_has_the_option() {
        assert!(rtos[0] < 50.0, "the server's RTO is the lowered minimum, not 200 ms: {rtos:?}");
    } else {
        // An older kernel refuses the option; Lectern carries on with the system's minimum.
        assert!(rtos[0] >= 200.0, "{rtos:?}");
    }
}

#[tokio::test]
async fn zero_keeps_the_systems_minimum() {
    let server = TestServer::with(|_, timing| timing.rto_min = Duration::ZERO).await;
    let (mut s, _) = server.student("A", &device(1)).await;
    round_trips(&mut s, 40).await;
    let rtos = server_rtos(server.port());
    assert_eq!(rtos.len(), 1, "{rtos:?}");
    assert!(rtos[0] >= 200.0, "timing.rto_min_ms = 0 leaves the kernel's 200 ms: {rtos:?}");
}
