//! Protects the Rust client's state keeping against a server it cannot trust to be perfect: a gap in
//! seq makes it ask for a snapshot (and not apply the later patch), an old patch is ignored, and a
//! snapshot brings it back in line. The "server" here is a scripted peer over real pinned TLS.
#![allow(clippy::unwrap_used, clippy::result_large_err)] // a test may panic on what it controls

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use lectern::client::{Cause, Client, ClientOptions, Credentials, Event};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

fn state(page: u32) -> Value {
    json!({"doc":{"id":"d","title":"D","pages":20,"sha256":"00"},"page":page,"pos":null,"zoom":1.0,
        "highlight":null,"mode":"follow","notice":null,"ended":false})
}

async fn next_state(c: &mut Client) -> (u64, u32, Cause) {
    let wait = async {
        loop {
            match c.next_event().await {
                Some(Event::State { seq, state, cause }) => return (seq, state.page, cause),
                Some(Event::Disconnected { reason, .. }) => panic!("disconnected: {reason}"),
                Some(_) => continue,
                None => panic!("client stopped"),
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), wait).await.expect("a state in time")
}

#[tokio::test]
async fn a_seq_gap_draws_a_resync_and_the_snapshot_repairs_the_state() {
    let identity = lectern::tls::Identity::generate(&["localhost".into()], &[]).unwrap();
    let fp = identity.fingerprint();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(identity.server_config(false).unwrap()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (saw_tx, mut saw) = tokio::sync::mpsc::unbounded_channel::<Value>();

    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = acceptor.accept(tcp).await.unwrap();
        let select =
            |_: &tokio_tungstenite::tungstenite::handshake::server::Request,
             mut res: tokio_tungstenite::tungstenite::handshake::server::Response| {
                res.headers_mut().insert("Sec-WebSocket-Protocol", "lectern.v1".parse().unwrap());
                Ok(res)
            };
        let mut ws = tokio_tungstenite::accept_hdr_async(tls, select).await.unwrap();
        let send = |v: Value| Message::text(v.to_string());
        let hello = ws.next().await.unwrap().unwrap();
        assert!(hello.to_text().unwrap().contains("\"hello\""));
        ws.send(send(json!({"t":"welcome","v":1,"you":{"id":"p1","role":"student","name":"A"},"token":"tok",
            "room":{"id":"r","title":"T"},"seq":5,"state":state(3),"heartbeat_ms":60000,"time":0,"teacher_online":true})))
            .await
            .unwrap();
        ws.send(send(json!({"t":"patch","seq":6,"time":0,"patch":{"page":4}}))).await.unwrap();
        ws.send(send(json!({"t":"patch","seq":4,"time":0,"patch":{"page":1}}))).await.unwrap(); // old: ignored
        ws.send(send(json!({"t":"patch","seq":9,"time":0,"patch":{"page":9}}))).await.unwrap(); // gap
        while let Some(Ok(msg)) = ws.next().await {
            let Ok(text) = msg.to_text() else { continue };
            let v: Value = serde_json::from_str(text).unwrap();
            let is_resync = v["t"] == "resync";
            saw_tx.send(v).unwrap();
            if is_resync {
                ws.send(send(json!({"t":"sync","seq":9,"state":state(9)}))).await.unwrap();
                ws.send(send(json!({"t":"patch","seq":10,"time":0,"patch":{"page":10}}))).await.unwrap();
            }
        }
    });

    let mut client = Client::start(ClientOptions::new(
        format!("wss://127.0.0.1:{port}/v1/ws"),
        fp,
        Credentials::Student { code: "1234".into(), name: "A".into() },
        "client-sync-device",
    ));
    assert_eq!(next_state(&mut client).await, (5, 3, Cause::Welcome));
    assert_eq!(next_state(&mut client).await, (6, 4, Cause::Patch));
    // Neither the old patch nor the one after the gap is applied; the snapshot comes next.
    assert_eq!(next_state(&mut client).await, (9, 9, Cause::Sync));
    assert_eq!(next_state(&mut client).await, (10, 10, Cause::Patch));
    loop {
        let v = saw.recv().await.unwrap();
        if v["t"] == "resync" {
            break;
        }
    }
}
