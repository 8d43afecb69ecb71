//! Connections that never become students (issue 15, finding 1): a raw HTTP/2 preface, an idle TLS
//! session, and a flood of them from one address. None is kept for ever, and one address cannot take
//! the connections the class needs: the class keeps going and new students still join.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use std::time::Duration;

use common::{PATIENCE, TestServer, device};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Reads until the server closes the connection; false if it is still open after `PATIENCE`.
async fn closed_by_server(stream: &mut (impl AsyncReadExt + Unpin)) -> bool {
    let mut buf = vec![0u8; 4096];
    tokio::time::timeout(PATIENCE, async {
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                return;
            }
        }
    })
    .await
    .is_ok()
}

/// Opens `n` connections with `open`, each given 2 s: those that opened (the others were refused).
async fn kept<T, F: std::future::Future<Output = Option<T>>>(n: usize, open: impl Fn() -> F) -> Vec<T> {
    let mut kept = Vec::new();
    for _ in 0..n {
        if let Ok(Some(c)) = tokio::time::timeout(Duration::from_secs(2), open()).await {
            kept.push(c);
        }
    }
    kept
}

#[tokio::test]
async fn a_raw_http2_preface_or_an_idle_connection_is_not_kept() {
    let server = TestServer::with(|_, timing| timing.idle_timeout = Duration::from_millis(300)).await;
    // TLS offers only http/1.1; a client that speaks HTTP/2 anyway is answered and closed.
    let mut h2 = lectern::client::tls(&server.ws, &server.fingerprint).await.unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").await.unwrap();
    assert!(closed_by_server(&mut h2).await, "an HTTP/2 connection is kept open");
    // A TLS session that never sends a request is closed after the idle timeout.
    let mut idle = lectern::client::tls(&server.ws, &server.fingerprint).await.unwrap();
    assert!(closed_by_server(&mut idle).await, "an idle connection is kept open");
    // And one that sent a request and then idles on keep-alive.
    let mut kept = lectern::client::tls(&server.ws, &server.fingerprint).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    assert!(closed_by_server(&mut kept).await, "an idle keep-alive connection is kept open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_connections_from_one_address_leaves_the_class_its_own() {
    let server = TestServer::with(|limits, timing| {
        limits.max_connections = 64;
        limits.max_connections_per_address = 8;
        timing.hello_timeout = PATIENCE * 4; // the flood's WebSockets stay, saying nothing
    })
    .await;
    let (mut teacher, _) = server.teacher().await;
    let (mut student, _) = server.student("In class", &device(1)).await;

    // From another address (127.0.0.2): 100 TLS sessions that never say anything, then 100
    // WebSockets that never say hello (a WebSocket is counted for its whole life, not only while it
    // was HTTP).
    let target = std::net::SocketAddr::from(([127, 0, 0, 1], server.port()));
    let from_elsewhere = || async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(([127, 0, 0, 2], 0).into()).unwrap();
        socket.connect(target).await
    };
    let flood = kept(100, || async {
        let tcp = from_elsewhere().await.ok()?;
        lectern::client::tls_over(tcp, &server.ws, &server.fingerprint).await.ok()
    })
    .await;
    assert!(flood.len() <= 8, "{} TLS sessions from one address were kept", flood.len());
    drop(flood);
    let sockets = kept(100, || async {
        let tcp = from_elsewhere().await.ok()?;
        lectern::client::connect_over(tcp, &server.ws, &server.fingerprint).await.ok()
    })
    .await;
    assert!(sockets.len() <= 8, "{} WebSockets from one address were kept", sockets.len());

    // The class keeps going, and a new student still joins.
    let (mut late, _) = tokio::time::timeout(PATIENCE, server.student("Late", &device(2)))
        .await
        .expect("a new student joins during the flood");
    teacher.send(json!({"t":"set","id":1,"patch":{"page":4}})).await;
    for s in [&mut student, &mut late] {
        while s.recv_type("patch").await["patch"]["page"] != 4 {}
    }
    drop(sockets);
}
