//! Protects what a teacher does at the end of the day and after a crash of the app: the real `lectern`
//! binary closes every socket with 4503 and exits 0 within 2 s on SIGTERM or SIGINT, and students resume
//! as the same participants when it is started again on the same data directory.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::PATIENCE;
use lectern::client::{Client, ClientOptions, Credentials, Event};
use lectern::serve::Ready;

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(dir: &std::path::Path, listen: &str) -> (Serve, Ready) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lectern"))
        .args(["serve", "--json", "--code", "482913", "--listen", listen, "--data-dir"])
        .arg(dir)
        .env("LECTERN_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn lectern serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("ready line");
    let ready: Ready = serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad ready line {line:?}: {e}"));
    assert!(ready.ready);
    (Serve(child), ready)
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill").args([sig, &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(start.elapsed() < within, "the server did not exit within {within:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

async fn next(client: &mut Client, mut pred: impl FnMut(&Event) -> bool) -> Event {
    loop {
        let e = tokio::time::timeout(PATIENCE, client.next_event())
            .await
            .expect("event in time")
            .expect("running");
        if pred(&e) {
            return e;
        }
    }
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
    let (mut server, ready) = serve(dir.path(), "127.0.0.1:0");
    let port = ready.ws.rsplit(':').next().and_then(|p| p.split('/').next()).unwrap().to_string();
    let mut s = student(&ready);
    let Event::Connected { you, .. } = next(&mut s, |e| matches!(e, Event::Connected { .. })).await else {
        unreachable!()
    };

    signal(&server.0, "-TERM");
    let e = next(&mut s, |e| matches!(e, Event::Disconnected { .. })).await;
    assert!(matches!(e, Event::Disconnected { code: Some(4503), .. }), "{e:?}");
    let status = wait_exit(&mut server.0, Duration::from_secs(2));
    assert!(status.success(), "{status:?}");

    // Started again on the same directory and port: same certificate, same lesson, same participant.
    let (server2, ready2) = serve(dir.path(), &format!("127.0.0.1:{port}"));
    assert_eq!(ready2.fingerprint, ready.fingerprint);
    assert_eq!(ready2.room, ready.room);
    assert_eq!(ready2.teacher_key, ready.teacher_key);
    let e = next(&mut s, |e| matches!(e, Event::Connected { .. })).await;
    let Event::Connected { you: again, resumed, .. } = e else { unreachable!() };
    assert!(resumed, "the client resumed with its token");
    assert_eq!(again.id, you.id);
    s.close().await;
    drop(server2);
}

#[tokio::test]
async fn sigint_also_shuts_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, ready) = serve(dir.path(), "127.0.0.1:0");
    let mut s = student(&ready);
    next(&mut s, |e| matches!(e, Event::Connected { .. })).await;
    signal(&server.0, "-INT");
    let e = next(&mut s, |e| matches!(e, Event::Disconnected { .. })).await;
    assert!(matches!(e, Event::Disconnected { code: Some(4503), .. }), "{e:?}");
    assert!(wait_exit(&mut server.0, Duration::from_secs(2)).success());
}

#[tokio::test]
async fn a_new_lesson_gets_a_new_room_and_old_tokens_stop_working() {
    let dir = tempfile::tempdir().unwrap();
    let (server, ready) = serve(dir.path(), "127.0.0.1:0");
    drop(server);
    let mut child = Command::new(env!("CARGO_BIN_EXE_lectern"))
        .args(["serve", "--json", "--new-lesson", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let _guard = Serve(child);
    let ready2: Ready = serde_json::from_str(&line).unwrap();
    assert_ne!(ready2.room, ready.room);
    assert_ne!(ready2.code, ready.code, "a new lesson draws a new join code");
    assert_eq!(ready2.fingerprint, ready.fingerprint, "the certificate is kept");
}
