//! A relay link that pins no fingerprint is checked by name, against the web's authorities and a
//! district's own (`--trust FILE`). A certificate that is expired, not valid yet, for another name,
//! or from an authority nobody trusts is a final error that says which: the client stops and says
//! so, instead of showing "reconnecting" for ever.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

use std::process::Stdio;
use std::sync::{Arc, LazyLock};

use base64::Engine;
use lectern::client::{Client, ClientOptions, ConnectError, Credentials, Event, RelayTrust};
use lectern::tls::CertProblem;
use tokio::net::TcpListener;

/// A district's own authority: its certificate (PEM) and what signs with it.
struct Authority {
    pem: String,
    der: rustls::pki_types::CertificateDer<'static>,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

fn authority(name: &str) -> Authority {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    Authority { pem: cert.pem(), der: cert.der().clone(), issuer: rcgen::Issuer::new(params, key) }
}

/// The authority this test process trusts, as a district's would be.
static DISTRICT: LazyLock<Authority> = LazyLock::new(|| {
    let ca = authority("district test authority");
    lectern::tls::trust_also(vec![ca.der.clone()]);
    ca
});

/// A TLS server on loopback that shows a leaf for `names`, valid over `years`, issued by `by`, and
/// closes each connection after its handshake. Returns its `wss://localhost:PORT/ws` URL.
async fn relay_showing(names: &[&str], years: (i32, i32), by: &Authority) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.not_before = rcgen::date_time_ymd(years.0, 1, 1);
    params.not_after = rcgen::date_time_ymd(years.1, 1, 1);
    let leaf = params.signed_by(&key, &by.issuer).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(lectern::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone(), by.der.clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(tcp).await;
            });
        }
    });
    format!("wss://localhost:{port}/ws")
}

/// A well-formed teacher's key, as a relay link carries it.
fn teacher_pk() -> String {
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.as_bytes())
}

async fn problem(url: &str) -> Option<CertProblem> {
    match lectern::client::tls(url, "").await {
        Ok(_) => None,
        Err(e @ ConnectError::Certificate { problem, .. }) => {
            assert!(e.is_final(), "{e}");
            Some(problem)
        }
        Err(e) => panic!("expected a certificate error, got {e}"),
    }
}

#[tokio::test]
async fn each_certificate_problem_is_named_and_final() {
    let district = &*DISTRICT;
    let stranger = authority("nobody's authority");
    assert_eq!(problem(&relay_showing(&["localhost"], (2024, 2049), district).await).await, None);
    assert_eq!(
        problem(&relay_showing(&["localhost"], (2020, 2021), district).await).await,
        Some(CertProblem::Expired)
    );
    assert_eq!(
        problem(&relay_showing(&["localhost"], (2090, 2095), district).await).await,
        Some(CertProblem::NotYetValid)
    );
    assert_eq!(
        problem(&relay_showing(&["relay.example.org"], (2024, 2049), district).await).await,
        Some(CertProblem::OtherName)
    );
    assert_eq!(
        problem(&relay_showing(&["localhost"], (2024, 2049), &stranger).await).await,
        Some(CertProblem::UnknownAuthority)
    );
}

#[tokio::test]
async fn a_client_stops_on_an_expired_relay_certificate_and_says_so() {
    let url = relay_showing(&["localhost"], (2020, 2021), &DISTRICT).await;
    let mut options = ClientOptions::new(
        url,
        String::new(),
        Credentials::Student { code: "123456".into(), name: "Aisha".into() },
        "test-device-0001",
    );
    options.relay = Some(RelayTrust { room: "r1".into(), pk: teacher_pk() });
    let mut client = Client::start(options);
    match client.next_event().await {
        Some(Event::Stopped { reason, .. }) => assert!(reason.contains("has expired"), "{reason}"),
        e => panic!("expected the client to stop, got {e:?}"),
    }
}

/// `lectern join` with a district's authority file: the relay's chain is checked against it (a
/// certificate for another name is found out as such, which takes a trusted chain; without the file
/// it would be an unknown authority), the client stops with the reason instead of retrying, and a
/// damaged authority file is refused by name before anything is sent.
#[tokio::test]
async fn lectern_join_trusts_a_district_file_and_stops_on_a_certificate_for_another_name() {
    let ca = authority("another district");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("district.pem");
    std::fs::write(&file, &ca.pem).unwrap();
    let url = relay_showing(&["relay.example.org"], (2024, 2049), &ca).await;
    let port = url::Url::parse(&url).unwrap().port().unwrap();
    let link = format!("https://localhost:{port}/join#code=123456&room=r1&pk={}", teacher_pk());
    let join = |trust: &std::path::Path| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_lectern"))
            .args(["join", &link, "--name", "Aisha", "--data-dir"])
            .arg(dir.path())
            .arg("--trust")
            .arg(trust)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output()
    };
    // A client that retried would never end: bounded, so that it fails instead.
    let patience = std::time::Duration::from_secs(20);
    let out = tokio::time::timeout(patience, join(&file)).await.expect("lectern join stopped").unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.contains("stopped") && stdout.contains("was issued for another name"), "{stdout}");
    assert!(!stdout.contains("reconnecting"), "{stdout}");

    let damaged = dir.path().join("damaged.pem");
    std::fs::write(&damaged, "no certificates here").unwrap();
    let out = tokio::time::timeout(patience, join(&damaged)).await.expect("lectern join stopped").unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("damaged.pem") && stderr.contains("holds no PEM certificate"), "{stderr}");
}
