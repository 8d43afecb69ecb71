//! `lectern relay --acme DOMAIN` against Debian's `pebble`, the ACME test server, on loopback (with
//! `pebble-challtestsrv` answering its DNS: every name is 127.0.0.1): the relay obtains a
//! certificate for its name over TLS-ALPN-01 on its own port and serves it, chained to pebble's
//! root, so a browser trusting that authority trusts the relay; a restart serves the kept one
//! without asking again.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::redis::RedisServer;
use lectern::config::{Limits, Timing};
use lectern::relay::acme::Acme;
use lectern::relay::serve::{Relay, RelayConfig};
use lectern::tls::Identity;
use rustls::pki_types::{CertificateDer, ServerName};

/// The relay's name, as the ACME server's DNS resolves it (to 127.0.0.1).
const DOMAIN: &str = "relay.lectern.test";

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Pebble and its DNS, with the TLS-ALPN-01 check sent to `tls_port`: the processes, the ACME
/// directory URL, the CA file for pebble's own HTTPS, and pebble's management port.
fn pebble(dir: &Path, tls_port: u16) -> (Vec<Child>, String, std::path::PathBuf, u16) {
    // Pebble's own HTTPS: a leaf for 127.0.0.1 signed by a CA of ours.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "test ACME API authority");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    std::fs::write(dir.join("api.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("api.key"), leaf_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    let (api, management, dns, dns_management) = (free_port(), free_port(), free_port(), free_port());
    let config = serde_json::json!({"pebble": {
        "listenAddress": format!("127.0.0.1:{api}"),
        "managementListenAddress": format!("127.0.0.1:{management}"),
        "certificate": dir.join("api.pem"), "privateKey": dir.join("api.key"),
        "httpPort": free_port(), "tlsPort": tls_port,
        "ocspResponderURL": "", "externalAccountBindingRequired": false,
    }});
    std::fs::write(dir.join("pebble.json"), config.to_string()).unwrap();
    let dns_server = Child(
        std::process::Command::new("pebble-challtestsrv")
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", "", "-dns01", &format!("127.0.0.1:{dns}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{dns_management}")])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("pebble-challtestsrv (apt install pebble)"),
    );
    let acme = Child(
        std::process::Command::new("pebble")
            .args([
                "-config",
                dir.join("pebble.json").to_str().unwrap(),
                "-dnsserver",
                &format!("127.0.0.1:{dns}"),
            ])
            // No random waits before checking a challenge, and no random refusals of good nonces.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("pebble (apt install pebble)"),
    );
    (vec![dns_server, acme], format!("https://127.0.0.1:{api}/dir"), dir.join("ca.pem"), management)
}

/// Waits until a port on loopback accepts connections.
async fn listening(port: u16) {
    tokio::time::timeout(Duration::from_secs(20), async {
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("listening in time");
}

/// The certificate chain `port` serves to a client asking for DOMAIN, checked against `root` (the
/// ACME server's issuing root), as a browser that trusts it would: the leaf, or the TLS error.
async fn served(port: u16, root: &CertificateDer<'static>) -> Result<CertificateDer<'static>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(lectern::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(DOMAIN).unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    Ok(tls.get_ref().1.peer_certificates().unwrap()[0].clone())
}

/// [`served`], asked again until it answers or `patience` has passed (the relay serves nothing
/// until it has a certificate).
async fn served_within(
    port: u16,
    root: &CertificateDer<'static>,
    patience: Duration,
) -> Option<CertificateDer<'static>> {
    tokio::time::timeout(patience, async {
        loop {
            match served(port, root).await {
                Ok(leaf) => return leaf,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await
    .ok()
}

/// A relay on `listener` getting its certificate from the ACME server at `directory`.
fn relay(
    redis: &RedisServer,
    listener: tokio::net::TcpListener,
    directory: &str,
    ca: &Path,
    cache: &Path,
) -> Relay {
    let config = RelayConfig {
        redis: redis.url(),
        redis_ca: None,
        identity: Identity::generate(&["localhost".into()], &[]).unwrap(),
        limits: Limits::default(),
        timing: Timing::default(),
        alive: Duration::from_secs(2),
        proxy_from: Default::default(),
        acme: Some(Acme {
            domain: DOMAIN.into(),
            directory: directory.into(),
            ca: Some(ca.to_path_buf()),
            cache: cache.to_path_buf(),
            contact: Some("teacher@example.org".into()),
        }),
    };
    Relay::start(config, listener).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_gets_its_certificate_over_acme_serves_it_and_keeps_it_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (_pebble, directory, ca, management) = pebble(dir.path(), port);
    listening(management).await;
    let cache = dir.path().join("acme");
    let first = relay(&redis, listener, &directory, &ca, &cache);

    // Pebble's issuing root, from its management interface (over the HTTPS of our test CA).
    let api_fp = lectern::tls::fingerprint(
        rustls_pemfile::certs(&mut std::fs::read(dir.path().join("api.pem")).unwrap().as_slice())
            .next()
            .unwrap()
            .unwrap()
            .as_ref(),
    );
    let roots = format!("https://127.0.0.1:{management}/roots/0");
    let root = lectern::client::fetch::request("GET", &roots, &api_fp, None, None).await.unwrap();
    assert_eq!(root.status, 200);
    let root = rustls_pemfile::certs(&mut root.body.as_ref()).next().unwrap().unwrap();

    // The relay asks, answers the challenge on its own port, and then serves the certificate.
    let leaf =
        served_within(port, &root, Duration::from_secs(60)).await.expect("a certificate from ACME in time");

    // A native client (the app, `lectern join`) following the relay's link, which pins no
    // fingerprint, checks the relay's name against the authorities it trusts, as a browser does:
    // not pebble's at first, then pebble's too.
    let url = format!("wss://{DOMAIN}:{port}/v1/ws");
    let tcp = || tokio::net::TcpStream::connect(("127.0.0.1", port));
    let refused = lectern::client::connect_over(tcp().await.unwrap(), &url, "").await;
    assert!(
        matches!(
            refused,
            Err(lectern::client::ConnectError::Certificate {
                problem: lectern::tls::CertProblem::UnknownAuthority,
                ..
            })
        ),
        "{refused:?}"
    );
    lectern::tls::trust_also(vec![root.clone()]);
    // TLS checked by name, and the WebSocket upgraded.
    lectern::client::connect_over(tcp().await.unwrap(), &url, "").await.expect("trusted by name");
    first.stop().await;

    // A restart serves the certificate it kept, at once, without a new order.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let again = relay(&redis, listener, &directory, &ca, &cache);
    let kept =
        served_within(port, &root, Duration::from_secs(10)).await.expect("the kept certificate in time");
    assert_eq!(kept, leaf, "the same certificate, not a new one");
    again.stop().await;
}
