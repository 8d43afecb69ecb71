//! Protects what a teacher does at the end of the day and after a crash of the app: the real `lectern`
//! binary closes every socket with 4503 and exits 0 within 2 s on SIGTERM or SIGINT, and students resume
//! as the same participants when it is started again on the same data directory.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use std::time::Duration;

use common::{ServeProcess, port_of, serve_binary, wait_for};
use lectern::client::{Client, ClientOptions, Credentials, Event};
use lectern::protocol::http::Ready;

fn serve(dir: &std::path::Path, listen: &str) -> (ServeProcess, Ready) {
    serve_binary(dir, listen, &["--code", "482913"])
}

fn student(ready: &Ready) -> Client {
    Client::start(ClientOptions::new(
        ready.ws.clone(),
        ready.fingerprint.clone(),
        Credentials::Student { code: ready.code.clone(), name: "Maryam".into() },
        "restart-student-1",
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_with_4503_exits_zero_and_students_resume_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (server, ready) = serve(dir.path(), "127.0.0.1:0");
    let port = port_of(&ready);
    let mut s = student(&ready);
    let Event::Connected { you, .. } = wait_for(&mut s, |e| matches!(e, Event::Connected { .. })).await
    else {
        unreachable!()
    };

    server.signal("-TERM");
    let e = wait_for(&mut s, |e| matches!(e, Event::Disconnected { .. })).await;
    assert!(matches!(e, Event::Disconnected { code: Some(4503), .. }), "{e:?}");
    let status = server.wait_exit(Duration::from_secs(2));
    assert!(status.success(), "{status:?}");

    // Started again on the same directory and port: same certificate, same lesson, same participant.
    let (server2, ready2) = serve(dir.path(), &format!("127.0.0.1:{port}"));
    assert_eq!(ready2.fingerprint, ready.fingerprint);
    assert_eq!(ready2.room, ready.room);
    assert_eq!(ready2.teacher_key, ready.teacher_key);
    let e = wait_for(&mut s, |e| matches!(e, Event::Connected { .. })).await;
    let Event::Connected { you: again, resumed, .. } = e else { unreachable!() };
    assert!(resumed, "the client resumed with its token");
    assert_eq!(again.id, you.id);
    s.close().await;
    drop(server2);
}

#[tokio::test]
async fn sigint_also_shuts_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (server, ready) = serve(dir.path(), "127.0.0.1:0");
    let mut s = student(&ready);
    wait_for(&mut s, |e| matches!(e, Event::Connected { .. })).await;
    server.signal("-INT");
    let e = wait_for(&mut s, |e| matches!(e, Event::Disconnected { .. })).await;
    assert!(matches!(e, Event::Disconnected { code: Some(4503), .. }), "{e:?}");
    assert!(server.wait_exit(Duration::from_secs(2)).success());
}

#[tokio::test]
async fn a_new_lesson_gets_a_new_room_and_old_tokens_stop_working() {
    let dir = tempfile::tempdir().unwrap();
    let (server, ready) = serve(dir.path(), "127.0.0.1:0");
    drop(server);
    let (_again, ready2) = serve_binary(dir.path(), "127.0.0.1:0", &["--new-lesson"]);
    assert_ne!(ready2.room, ready.room);
    assert_ne!(ready2.code, ready.code, "a new lesson draws a new join code");
    assert_eq!(ready2.fingerprint, ready.fingerprint, "the certificate is kept");
}
