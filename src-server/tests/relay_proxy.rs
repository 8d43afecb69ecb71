//! A relay behind load balancers that speak PROXY protocol, v2 or v1 (docs/RELAY.md): the balancers
//! the operator names tell whose connection each is, so per-address limits see students again;
//! nobody else is believed.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use common::Raw;
use common::redis::RedisServer;
use lectern::config::Limits;
use lectern::tls::Identity;
use lectern::transport::proxy::TrustedProxies;
use serde_json::json;
use tokio::io::AsyncWriteExt;

/// A PROXY protocol v2 header: a TCP connection over IPv4 from `client` to `to`.
fn v2_header(client: SocketAddr, to: SocketAddr) -> Vec<u8> {
    let (IpAddr::V4(src), IpAddr::V4(dst)) = (client.ip(), to.ip()) else { panic!("IPv4 only here") };
    let mut h =
        vec![0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0, 12];
    h.extend(src.octets());
    h.extend(dst.octets());
    h.extend(client.port().to_be_bytes());
    h.extend(to.port().to_be_bytes());
    h
}

/// A PROXY protocol v1 header (the text nginx's `stream` module sends): TCP over IPv4 from `client`
/// to `to`.
fn v1_header(client: SocketAddr, to: SocketAddr) -> Vec<u8> {
    format!("PROXY TCP4 {} {} {} {}\r\n", client.ip(), to.ip(), client.port(), to.port()).into_bytes()
}

/// A connection to the relay at `ws` from 127.0.0.`host`, which first sends `header`: the TLS
/// WebSocket, or the reason it failed.
async fn through(host: u8, ws: &str, fingerprint: &str, header: Option<Vec<u8>>) -> Result<Raw, String> {
    let mut tcp = common::tcp_from(host, ws).await;
    if let Some(h) = header {
        tcp.write_all(&h).await.unwrap();
    }
    lectern::client::connect_over(tcp, ws, fingerprint).await.map(|ws| Raw { ws }).map_err(|e| e.to_string())
}

/// A hello for a room nobody published, from `client` through the balancer at 127.0.0.1, which
/// sends a header of this version.
async fn hello_as(client: SocketAddr, ws: &str, fingerprint: &str, room: &str, v1: bool) -> u16 {
    let relay: SocketAddr = ws.trim_start_matches("wss://").split('/').next().unwrap().parse().unwrap();
    let header = if v1 { v1_header(client, relay) } else { v2_header(client, relay) };
    let mut raw = through(1, ws, fingerprint, Some(header)).await.unwrap();
    raw.send(json!({"t":"hello","v":1,"role":"student","code":"123456","name":"X","device":"proxied-dev","room":room}))
        .await;
    raw.close_code().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_named_balancer_each_student_is_counted_as_itself() {
    let redis = RedisServer::start().await;
    let (relay, ws, fingerprint) = {
        let identity = Identity::generate(&["localhost".into()], &[IpAddr::from([127, 0, 0, 1])]).unwrap();
        let limits = Limits { max_connections_per_address: 1 << 20, ..Limits::default() };
        common::remote::relay_proxied(
            redis.url(),
            identity,
            limits,
            TrustedProxies::parse(&["127.0.0.1".into()]).unwrap(),
        )
        .await
    };
    let guesser = SocketAddr::from((Ipv4Addr::new(203, 0, 113, 7), 40000));
    let classmate = SocketAddr::from((Ipv4Addr::new(203, 0, 113, 8), 40001));
    // One student behind the balancer floods the relay with hellos for rooms that do not exist: it
    // is refused once past its quota, as itself (the balancer's own address is this machine's, which
    // no limit counts).
    let quota = lectern::transport::host::UNPUBLISHED_PER_MINUTE as usize;
    let mut last = 0;
    for batch in 0..(quota + 40) / 20 {
        let hellos = (0..20).map(|i| {
            let (ws, fingerprint) = (ws.clone(), fingerprint.clone());
            // Half of them through a balancer that speaks v1: the same student either way.
            async move { hello_as(guesser, &ws, &fingerprint, &format!("nope-{batch}-{i}"), i % 2 == 0).await }
        });
        last = *futures_util::future::join_all(hellos).await.last().unwrap();
    }
    assert_eq!(last, 4029, "the guesser is held back as itself");
    assert_eq!(hello_as(guesser, &ws, &fingerprint, "nope-v1", true).await, 4029, "through v1 too");
    // A classmate behind the same balancer is not, in either version.
    assert_eq!(hello_as(classmate, &ws, &fingerprint, "nope-classmate", false).await, 4503);
    assert_eq!(hello_as(classmate, &ws, &fingerprint, "nope-classmate-v1", true).await, 4503);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_from_anyone_but_a_named_balancer_is_never_believed() {
    let redis = RedisServer::start().await;
    let identity = Identity::generate(&["localhost".into()], &[IpAddr::from([127, 0, 0, 1])]).unwrap();
    let trusted = TrustedProxies::parse(&["127.0.0.1".into()]).unwrap();
    let (relay, ws, fingerprint) =
        common::remote::relay_proxied(redis.url(), identity, Limits::default(), trusted).await;
    let relay_addr: SocketAddr = ws.trim_start_matches("wss://").split('/').next().unwrap().parse().unwrap();
    let forged = v2_header(SocketAddr::from((Ipv4Addr::new(198, 51, 100, 1), 1)), relay_addr);
    // From another address, a PROXY header is not read: it is no TLS hello, and the connection fails.
    assert!(through(2, &ws, &fingerprint, Some(forged)).await.is_err(), "a stranger's header was read");
    // The named balancer must send one: without it the connection is closed, not counted as the
    // balancer's.
    assert!(through(1, &ws, &fingerprint, None).await.is_err(), "a balancer's connection without a header");
    // Nor may a balancer name this machine, which no per-address limit counts.
    let loopback = v2_header(SocketAddr::from((Ipv4Addr::LOCALHOST, 1)), relay_addr);
    assert!(through(1, &ws, &fingerprint, Some(loopback)).await.is_err(), "a header naming this machine");
    let loopback = v1_header(SocketAddr::from((Ipv4Addr::LOCALHOST, 1)), relay_addr);
    assert!(through(1, &ws, &fingerprint, Some(loopback)).await.is_err(), "a v1 header naming this machine");
    // A v1 header that never ends, or is not one, closes the connection.
    let endless = format!("PROXY TCP4 {}\r\n", "1".repeat(120)).into_bytes();
    assert!(through(1, &ws, &fingerprint, Some(endless)).await.is_err(), "a v1 header over 107 bytes");
    let garbled = b"PROXY TCP4 not an address\r\n".to_vec();
    assert!(through(1, &ws, &fingerprint, Some(garbled)).await.is_err(), "a v1 header that is not one");
    // A health check's v1 header keeps the balancer's address, and the connection is served.
    assert!(through(1, &ws, &fingerprint, Some(b"PROXY UNKNOWN\r\n".to_vec())).await.is_ok());
    // And a student straight to the relay, from another address, gets in as ever.
    assert!(through(2, &ws, &fingerprint, None).await.is_ok());
    relay.stop().await;
}
