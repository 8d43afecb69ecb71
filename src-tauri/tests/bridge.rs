//! Protects the app's IPC bridge without a window: the view's frames reach a real classroom server
//! through Rust over TLS pinned to its fingerprint, the server's frames come back in order, a server
//! with another certificate, or a relay's certificate not valid for its name, is refused with 1015
//! (the view then stops and says why), frames that are
//! not PROTOCOL.md are refused before they leave the device, and documents are fetched with the pin,
//! checked against their SHA-256 and served from the disk cache afterwards.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

use std::time::Duration;

use lectern::config::Config;
use lectern::protocol::{Doc, ServerMsg};
use lectern::server::Server;
use lectern_app::bridge::{Bridge, BridgeError, LinkEvent, UNTRUSTED_CERTIFICATE};
use lectern_app::docs::{DocCache, DocError};
use tokio::sync::mpsc;

const PATIENCE: Duration = Duration::from_secs(15);

async fn server(dir: &std::path::Path) -> Server {
    let mut config = Config { data_dir: Some(dir.into()), code: Some("482913".into()), ..Config::default() };
    config.mdns.disabled = true;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Server::start(&config, listener).unwrap()
}

struct Link {
    id: u32,
    events: mpsc::UnboundedReceiver<LinkEvent>,
}

impl Link {
    fn open(bridge: &Bridge, url: &str, fingerprint: &str) -> Link {
        let (tx, events) = mpsc::unbounded_channel();
        let id = bridge.connect(url.into(), fingerprint.into(), move |e| {
            let _ = tx.send(e);
        });
        Link { id, events }
    }

    async fn next(&mut self) -> LinkEvent {
        tokio::time::timeout(PATIENCE, self.events.recv()).await.unwrap().unwrap()
    }

    /// The next frame from the server, parsed.
    async fn frame(&mut self) -> ServerMsg {
        match self.next().await {
            LinkEvent::Frame { text } => serde_json::from_str(&text).unwrap(),
            other => panic!("expected a frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn frames_cross_the_bridge_in_order_over_the_pinned_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let ready = server.ready().clone();
    let bridge = Bridge::default();
    let mut link = Link::open(&bridge, &ready.ws, &ready.fingerprint);
    assert_eq!(link.next().await, LinkEvent::Open);
    let hello = format!(
        r#"{{"t":"hello","v":1,"role":"teacher","key":"{}","device":"app-teacher-1"}}"#,
        ready.teacher_key
    );
    bridge.send(link.id, hello).unwrap();
    assert!(matches!(link.frame().await, ServerMsg::Welcome { .. }));
    for page in 2..=6 {
        bridge.send(link.id, format!(r#"{{"t":"set","id":{page},"patch":{{"page":{page}}}}}"#)).unwrap();
    }
    let mut seen = Vec::new();
    while seen.len() < 5 {
        if let ServerMsg::Patch { seq, patch, .. } = link.frame().await {
            seen.push((seq, patch.page.unwrap_or(0)));
        }
    }
    assert_eq!(
        seen,
        [(1, 2), (2, 3), (3, 4), (4, 5), (5, 6)],
        "the view's frames arrive in the order sent, and so do the patches"
    );
    assert!(matches!(bridge.send(link.id, "{\"t\":\"dance\"}".into()), Err(BridgeError::BadFrame(_))));
    assert!(matches!(bridge.send(link.id, "not json".into()), Err(BridgeError::BadFrame(_))));
    bridge.close(link.id, 1000, "bye".into());
    loop {
        if let LinkEvent::Closed { code, .. } = link.next().await {
            assert_eq!(code, 1000);
            break;
        }
    }
    assert_eq!(bridge.send(link.id, r#"{"t":"ping"}"#.into()), Err(BridgeError::Closed));
    server.wait_stopped().await;
}

#[tokio::test]
async fn a_server_with_another_certificate_is_refused_with_1015() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = server(a.path()).await;
    let other = lectern::tls::Identity::generate(&["localhost".into()], &[]).unwrap().fingerprint();
    let bridge = Bridge::default();
    let mut link = Link::open(&bridge, &server.ready().ws, &other);
    match link.next().await {
        LinkEvent::Closed { code, reason } => {
            assert_eq!(code, UNTRUSTED_CERTIFICATE);
            assert!(reason.contains(&other), "the reason names the pinned fingerprint: {reason}");
        }
        e => panic!("expected a refusal, got {e:?}"),
    }
    let (_, online) = server.app().room().online();
    assert_eq!(online, 0, "nothing reached the impostor's room");
    drop(b);
    server.wait_stopped().await;
}

/// A relay link pins no fingerprint and is checked by name: a certificate no authority of this
/// device's vouches for ends the link with 1015 and the reason, not a 1006 the view would retry.
#[tokio::test]
async fn a_certificate_not_valid_for_its_name_is_refused_with_1015_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let bridge = Bridge::default();
    let mut link = Link::open(&bridge, &server.ready().ws, "");
    match link.next().await {
        LinkEvent::Closed { code, reason } => {
            assert_eq!(code, UNTRUSTED_CERTIFICATE);
            assert_eq!(reason, "unknown_authority", "the problem's key, for the view to word");
        }
        e => panic!("expected a refusal, got {e:?}"),
    }
    server.wait_stopped().await;
}

#[tokio::test]
async fn documents_are_fetched_with_the_pin_checked_and_cached() {
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let ready = server.ready().clone();
    let (_, state) = server.app().room().state();
    let doc: Doc = state.doc.unwrap();
    let cache = DocCache::new(cache_dir.path());
    assert!(cache.cached(&doc).is_none());
    let bytes = cache.get(&ready.http, &ready.fingerprint, &ready.teacher_key, &doc).await.unwrap();
    assert!(bytes.starts_with(b"%PDF"));
    assert_eq!(cache.cached(&doc).as_deref(), Some(&bytes[..]), "kept on disk by sha256");

    // A document whose bytes do not match its announced hash is refused, not shown.
    let forged = Doc { sha256: "00".repeat(32), ..doc.clone() };
    assert!(matches!(
        cache.get(&ready.http, &ready.fingerprint, &ready.teacher_key, &forged).await,
        Err(DocError::Mismatch)
    ));
    // A wrong bearer gets the server's refusal.
    let fresh = DocCache::new(tempfile::tempdir().unwrap().path());
    assert!(matches!(
        fresh.get(&ready.http, &ready.fingerprint, "not-a-token", &doc).await,
        Err(DocError::Status { status: 401, .. })
    ));
    server.wait_stopped().await;
    // The classroom is gone: the cached document is still there for this device.
    let again = cache.get(&ready.http, &ready.fingerprint, &ready.teacher_key, &doc).await.unwrap();
    assert_eq!(again, bytes);
}

#[tokio::test]
async fn a_document_comes_in_pinned_ranges_and_is_kept_only_once_whole_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let ready = server.ready().clone();
    let (_, state) = server.app().room().state();
    let doc: Doc = state.doc.unwrap();
    let cache = DocCache::new(tempfile::tempdir().unwrap().path());
    let (key, http, fp) = (&ready.teacher_key, &ready.http, &ready.fingerprint);
    // The first range says how long the document is; later ones are just those bytes.
    let (head, total) = cache.range(http, fp, key, &doc, 0, 100).await.unwrap();
    assert_eq!(head.len(), 100);
    assert!(head.starts_with(b"%PDF"));
    let (tail, again) = cache.range(http, fp, key, &doc, total - 50, total).await.unwrap();
    assert_eq!((tail.len(), again), (50, total));
    assert!(cache.cached(&doc).is_none(), "ranges alone are not kept");
    // The view put the whole together: kept only when it matches the sha256.
    let (whole, _) = cache.range(http, fp, key, &doc, 0, total).await.unwrap();
    let mut wrong = whole.clone();
    wrong[10] ^= 1;
    assert!(matches!(cache.keep_checked(&doc.sha256, &wrong), Err(DocError::Mismatch)));
    assert!(cache.cached(&doc).is_none());
    cache.keep_checked(&doc.sha256, &whole).unwrap();
    assert_eq!(cache.cached(&doc).as_deref(), Some(&whole[..]));
    // Kept: the classroom is no longer needed for it.
    server.wait_stopped().await;
    let (from_disk, _) = cache.range(http, fp, key, &doc, total - 50, total).await.unwrap();
    assert_eq!(from_disk, tail);
}

/// Where the teacher's server keeps a document: `<sha256>.pdf` somewhere under its data directory.
fn stored(dir: &std::path::Path, sha256: &str) -> std::path::PathBuf {
    let name = format!("{sha256}.pdf");
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.file_name().is_some_and(|n| n == name.as_str()) {
                return path;
            }
        }
    }
    panic!("{name} is not under {}", dir.display());
}

#[tokio::test]
async fn a_document_taken_in_pieces_is_checked_in_rust_against_the_signed_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let ready = server.ready().clone();
    let (_, state) = server.app().room().state();
    let doc: Doc = state.doc.unwrap();
    assert!(doc.manifest.is_some(), "the signed state names the document's manifest");
    let cache = DocCache::new(tempfile::tempdir().unwrap().path());
    let (key, http, fp) = (&ready.teacher_key, &ready.http, &ready.fingerprint);

    // A manifest other than the signed one is refused, and so is a document that names none: no
    // range of them is given unchecked.
    let unsigned = Doc { manifest: Some("0".repeat(64)), ..doc.clone() };
    assert!(matches!(
        cache.range_checked(http, fp, key, &unsigned, 10, 110).await,
        Err(DocError::Unchecked(_))
    ));
    let unnamed = Doc { manifest: None, ..doc.clone() };
    assert!(matches!(cache.range_checked(http, fp, key, &unnamed, 10, 110).await, Err(DocError::NoManifest)));
    // The view gets the manifest as it came, to judge it itself.
    assert!(!cache.manifest(http, fp, key, &unsigned).await.unwrap().is_empty());
    let (head, total) = cache.range_checked(http, fp, key, &doc, 10, 110).await.unwrap();
    assert_eq!(head.len(), 100);
    assert_eq!(cache.range_checked(http, fp, key, &doc, total - 50, total).await.unwrap().0.len(), 50);
    assert!(total <= 16 * 1024, "the demo document is one piece ({total} bytes): the checks below assume it");

    // What the server sends changes under it, as a hostile relay's (or a Redis writer's) would: the
    // bytes the view asks for are refused, whatever range of the changed piece it asks.
    let file = stored(dir.path(), &doc.sha256);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[60] ^= 0x20;
    std::fs::write(&file, &bytes).unwrap();
    match cache.range_checked(http, fp, key, &doc, 10, 110).await {
        Err(e @ DocError::Unchecked(_)) => {
            assert!(e.to_string().contains("not shown"), "the view can say why: {e}");
        }
        other => panic!("a changed piece reached the view: {other:?}"),
    }
    assert!(matches!(
        cache.range_checked(http, fp, key, &doc, total - 50, total).await,
        Err(DocError::Unchecked(_))
    ));
    // An answer longer than the pieces asked for is not read past them: a relay cannot make the
    // device hold a whole book for one page.
    let url = format!("{http}/v1/docs/{}", doc.id);
    assert!(lectern::client::fetch::get_range_within(&url, fp, Some(key), (0, 100), 50).await.is_err());
    // Unchecked ranges (from the teacher's own server, which the pin vouches for) are another call.
    assert_eq!(cache.range(http, fp, key, &doc, 60, 61).await.unwrap().0, vec![bytes[60]]);
    server.wait_stopped().await;
}
