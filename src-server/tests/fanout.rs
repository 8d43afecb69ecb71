//! Protects the core promise: every student sees every teacher change, once, in seq order, and ends on
//! the teacher's state (30 students, 200 changes, real TLS sockets).
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use common::{TestServer, device};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_students_follow_two_hundred_changes_in_order() {
    let server = TestServer::start().await;
    let mut students = Vec::new();
    for n in 0..30 {
        let (raw, welcome) = server.student(&format!("Student {n}"), &device(n)).await;
        assert_eq!(welcome["seq"], 0);
        students.push(raw);
    }
    let readers: Vec<_> = students
        .into_iter()
        .map(|mut raw| {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut last: Option<Value> = None;
                while seen.len() < 200 {
                    let v = raw.recv().await;
                    match v["t"].as_str() {
                        Some("patch") => {
                            seen.push(v["seq"].as_u64().unwrap());
                            last = Some(v["patch"].clone());
                        }
                        Some("sync") => panic!("a prompt reader must not be conflated: {v}"),
                        _ => {}
                    }
                }
                (seen, last)
            })
        })
        .collect();

    // The teacher pipelines all 200 changes without waiting, as a pointer stream does.
    let (mut teacher, _) = server.teacher().await;
    for i in 1..=200u64 {
        let patch = if i % 2 == 0 {
            json!({"page": (i / 2) % 12 + 1})
        } else {
            json!({"pos": {"x": (i as f64) / 200.0, "y": 0.5}})
        };
        teacher.send(json!({"t":"set","id":i,"patch":patch})).await;
    }
    let mut oks = Vec::new();
    while oks.len() < 200 {
        let v = teacher.recv().await;
        assert_ne!(v["t"], "error", "{v}");
        if v["t"] == "ok" {
            assert_eq!(v["id"], v["seq"], "each set got the seq of its turn");
            oks.push(v["seq"].as_u64().unwrap());
        }
    }
    oks.sort_unstable();
    assert_eq!(oks, (1..=200).collect::<Vec<u64>>());
    for reader in readers {
        let (seen, last) = reader.await.unwrap();
        assert_eq!(seen, (1..=200).collect::<Vec<u64>>(), "every patch, once, in order");
        assert_eq!(last.unwrap(), json!({"page": 100 % 12 + 1}));
    }
    let metrics = server.metrics().await;
    assert!(metrics.contains("lectern_patches_total 200"), "{metrics}");
}

#[tokio::test]
async fn a_late_joiner_gets_the_current_state_in_its_welcome() {
    let server = TestServer::start().await;
    let (mut teacher, _) = server.teacher().await;
    teacher.send(json!({"t":"set","id":1,"patch":{"page":7,"notice":"سورة الفاتحة","mode":"free"}})).await;
    teacher.recv_type("ok").await;
    let (_s, welcome) = server.student("Late", &device(1)).await;
    assert_eq!(welcome["seq"], 1);
    assert_eq!(welcome["state"]["page"], 7);
    assert_eq!(welcome["state"]["notice"], "سورة الفاتحة");
    assert_eq!(welcome["state"]["mode"], "free");
    assert_eq!(welcome["state"]["doc"]["id"], "demo");
    assert_eq!(welcome["teacher_online"], true);
    assert_eq!(welcome["heartbeat_ms"], 10_000);
    assert!(welcome["token"].as_str().is_some_and(|t| t.len() > 20));
}

#[tokio::test]
async fn a_bad_patch_changes_nothing_and_says_why() {
    let server = TestServer::start().await;
    let (mut teacher, _) = server.teacher().await;
    teacher.send(json!({"t":"set","id":3,"patch":{"page":700,"zoom":2}})).await;
    let err = teacher.recv_type("error").await;
    assert_eq!(
        err,
        json!({"t":"error","id":3,"code":"bad_request","message":"page 700 is past the last page (12)"})
    );
    teacher.send(json!({"t":"set","id":4,"patch":{"zoom":2}})).await;
    let ok = teacher.recv_type("ok").await;
    assert_eq!(ok["seq"], 1, "the refused patch took no seq");
    let (_s, welcome) = server.student("A", &device(1)).await;
    assert_eq!(welcome["state"]["page"], 1);
    assert_eq!(welcome["state"]["zoom"], 2.0);
}

#[tokio::test]
async fn a_student_cannot_change_the_lesson() {
    let server = TestServer::start().await;
    let (mut student, _) = server.student("Mischief", &device(1)).await;
    for (id, frame) in [
        (1, json!({"t":"set","id":1,"patch":{"page":5}})),
        (2, json!({"t":"kick","id":2,"who":"p1"})),
        (3, json!({"t":"end","id":3})),
    ] {
        student.send(frame).await;
        let err = student.recv_type("error").await;
        assert_eq!(err["code"], "forbidden");
        assert_eq!(err["id"], id);
    }
    let (_t, welcome) = server.teacher().await;
    assert_eq!(welcome["seq"], 0);
    assert_eq!(welcome["state"]["ended"], false);
}

#[tokio::test]
async fn the_server_selects_the_lectern_subprotocol() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let server = TestServer::start().await;
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", server.port())).await.unwrap();
    let config = lectern::tls::pinned_client_config(&server.fingerprint).unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(rustls::pki_types::ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let mut req = server.ws.as_str().into_client_request().unwrap();
    req.headers_mut().insert("Sec-WebSocket-Protocol", "lectern.v1".parse().unwrap());
    let (_ws, res) = tokio_tungstenite::client_async(req, tls).await.unwrap();
    assert_eq!(res.headers()["sec-websocket-protocol"], "lectern.v1");
}
