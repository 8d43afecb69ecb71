//! Protects trust on a LAN with no CA: a client pinned to another fingerprint refuses the server (and
//! never sends its code), and one pinned to the right fingerprint connects over TLS 1.3.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use common::TestServer;
use lectern::client::{Client, ClientOptions, Credentials, Event};

#[tokio::test]
async fn a_client_with_the_wrong_fingerprint_refuses_to_connect() {
    let server = TestServer::start().await;
    let other = lectern::tls::Identity::generate(&["localhost".into()], &[]).unwrap().fingerprint();
    let err = lectern::client::connect(&server.ws, &other).await.unwrap_err();
    assert!(
        matches!(&err, lectern::client::ConnectError::PinMismatch { expected, seen } if *expected == other && *seen == server.fingerprint),
        "{err}"
    );

    let mut client = Client::start(ClientOptions::new(
        server.ws.clone(),
        other,
        Credentials::Student { code: common::CODE.into(), name: "A".into() },
        common::device(1),
    ));
    match client.next_event().await {
        Some(Event::Stopped { reason, .. }) => assert!(reason.contains("fingerprint"), "{reason}"),
        e => panic!("expected the client to stop, got {e:?}"),
    }
    let (_, online) = server.app().room().online();
    assert_eq!(online, 0);
}

#[tokio::test]
async fn the_right_fingerprint_connects_with_tls_1_3() {
    let server = TestServer::start().await;
    let ws = lectern::client::connect(&server.ws, &server.fingerprint).await.unwrap();
    let (_, conn) = ws.get_ref().get_ref();
    assert_eq!(conn.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
}
