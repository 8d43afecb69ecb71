//! Protects against the weak-Wi-Fi failure where a link dies without a close: the client notices a
//! missing pong within a heartbeat and reconnects with resume, and the server closes a connection that
//! answered nothing for two heartbeats (the teacher sees the student go offline). The dead link is made
//! by a proxy that silently stops forwarding.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{TestServer, device, wait_for};
use lectern::client::{Client, ClientOptions, Credentials, Event};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A TCP proxy whose current connections can be frozen: bytes stop flowing, sockets stay open.
struct Proxy {
    port: u16,
    links: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if frozen.load(Ordering::SeqCst) {
            // A dead link: hold the sockets open and forward nothing, ever.
            std::future::pending::<()>().await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl Proxy {
    async fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let links: Arc<Mutex<Vec<Arc<AtomicBool>>>> = Arc::default();
        let l2 = links.clone();
        tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)).await else { continue };
                let frozen = Arc::new(AtomicBool::new(false));
                l2.lock().unwrap().push(frozen.clone());
                let (dr, dw) = down.into_split();
                let (ur, uw) = up.into_split();
                tokio::spawn(pipe(dr, uw, frozen.clone()));
                tokio::spawn(pipe(ur, dw, frozen));
            }
        });
        Proxy { port, links }
    }

    fn freeze_current(&self) {
        for l in self.links.lock().unwrap().iter() {
            l.store(true, Ordering::SeqCst);
        }
    }
}

#[tokio::test]
async fn the_client_detects_a_dead_link_and_resumes() {
    let server = TestServer::with(|_, t| t.heartbeat = Duration::from_millis(300)).await;
    let proxy = Proxy::start(server.port()).await;
    let mut s = Client::start(ClientOptions::new(
        format!("wss://127.0.0.1:{}/v1/ws", proxy.port),
        server.fingerprint.clone(),
        Credentials::Student { code: common::CODE.into(), name: "Zaid".into() },
        device(1),
    ));
    let Event::Connected { you, .. } = wait_for(&mut s, |e| matches!(e, Event::Connected { .. })).await
    else {
        unreachable!()
    };
    proxy.freeze_current();
    let e = wait_for(&mut s, |e| matches!(e, Event::Disconnected { .. })).await;
    let Event::Disconnected { reason, .. } = e else { unreachable!() };
    assert!(reason.contains("dead link"), "{reason}");
    let Event::Connected { you: again, resumed, .. } =
        wait_for(&mut s, |e| matches!(e, Event::Connected { .. })).await
    else {
        unreachable!()
    };
    assert!(resumed);
    assert_eq!(again.id, you.id);
    s.close().await;
}

#[tokio::test]
async fn the_server_closes_a_connection_silent_for_two_heartbeats() {
    let server = TestServer::with(|_, t| t.heartbeat = Duration::from_millis(300)).await;
    let proxy = Proxy::start(server.port()).await;
    let (mut t, _) = server.teacher().await;
    let ws = lectern::client::connect(&format!("wss://127.0.0.1:{}/v1/ws", proxy.port), &server.fingerprint)
        .await
        .unwrap();
    let mut s = common::Raw { ws };
    s.send(json!({"t":"hello","v":1,"role":"student","code":common::CODE,"name":"Gone","device":device(2)}))
        .await;
    let pid = s.recv_type("welcome").await["you"]["id"].clone();
    proxy.freeze_current();
    loop {
        let v = t.recv_type("roster").await;
        if v["changes"].as_array().unwrap().iter().any(|e| e["id"] == pid && e["online"] == false) {
            break;
        }
    }
    assert_eq!(server.app().room().online().1, 0);
}
