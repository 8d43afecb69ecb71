//! Strangers on the fallback transport (issue 22, findings 1 and 6): no credentials are needed to
//! POST to `/v1/sse`, so neither half-sent bodies nor floods of refused links may cost the lesson.
//! The first test runs the release binary and watches its memory, as a teacher's tablet would feel
//! it; both keep a class following page turns meanwhile, and check that nothing it was sent is lost.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use std::time::{Duration, Instant};

use common::{CODE, Raw, TestServer, connect_from, tcp_from};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The attacker's address (127.0.0.9) and how many connections it opens.
const ATTACKER: u8 = 9;
const CONNECTIONS: usize = 512;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A teacher and five students of the server at `ws`: the teacher turns pages, the students follow.
struct Class {
    teacher: Raw,
    students: Vec<Raw>,
    page: u32,
    latencies: Vec<Duration>,
}

impl Class {
    async fn join(ws: &str, fingerprint: &str, key: &str) -> Class {
        let mut teacher = Raw { ws: connect_from(1, ws, fingerprint).await };
        teacher.send(json!({"t":"hello","v":1,"role":"teacher","key":key,"device":"teacher-device"})).await;
        teacher.recv_type("welcome").await;
        let mut students = Vec::new();
        for n in 0..5u8 {
            let mut s = Raw { ws: connect_from(50 + n, ws, fingerprint).await };
            s.send(json!({"t":"hello","v":1,"role":"student","code":CODE,"name":format!("Student {n}"),"device":common::device(usize::from(n))}))
                .await;
            s.recv_type("welcome").await;
            students.push(s);
        }
        Class { teacher, students, page: 1, latencies: Vec::new() }
    }

    /// Turns `n` pages; every student must see each turn (a patch, or a sync that carries it).
    async fn turn(&mut self, n: u32) {
        for _ in 0..n {
            self.page = self.page % lectern::demo::DEMO_PAGES + 1;
            let sent = Instant::now();
            self.teacher.send(json!({"t":"set","id":self.page,"patch":{"page":self.page}})).await;
            for s in &mut self.students {
                loop {
                    let f = s.recv().await;
                    let page = f["patch"]["page"].as_u64().or(f["state"]["page"].as_u64());
                    if page == Some(u64::from(self.page)) {
                        break;
                    }
                }
                self.latencies.push(sent.elapsed());
            }
        }
    }

    fn p99(&mut self) -> Duration {
        self.latencies.sort();
        self.latencies.get(self.latencies.len() * 99 / 100).copied().unwrap_or_default()
    }
}

/// One connection from the attacker that sends a request's head and most of its body, then holds.
async fn half_send(
    url: &str,
    fingerprint: &str,
    path: &str,
    declared: usize,
    sent: usize,
) -> Option<impl tokio::io::AsyncRead + Unpin> {
    let tcp = tcp_from(ATTACKER, url).await;
    // Past the pace an address may open connections at, the server closes them before TLS.
    let mut tls = lectern::client::tls_over(tcp, url, fingerprint).await.ok()?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: lectern\r\ncontent-type: application/json\r\nauthorization: Bearer 00\r\ncontent-length: {declared}\r\n\r\n"
    );
    let _ = tls.write_all(head.as_bytes()).await;
    let _ = tls.write_all(&vec![b' '; sent]).await; // the server may have answered and closed already
    let _ = tls.flush().await;
    Some(tls)
}

#[tokio::test]
async fn half_sent_bodies_cost_the_teacher_little_memory_and_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(
        std::env::var("LECTERN_BIN").unwrap_or(env!("CARGO_BIN_EXE_lectern").into()),
    );
    cmd.args(["serve", "--json", "--no-mdns", "--listen", "127.0.0.1:0", "--code", CODE, "--data-dir"])
        .arg(dir.path());
    cmd.env("LECTERN_IDLE_TIMEOUT_MS", "3000");
    let (server, ready) = common::ServeProcess::spawn(cmd);
    let url = ready.ws.replace("[::1]", "127.0.0.1");
    let fp = ready.fingerprint.clone();
    let mut class = Class::join(&url, &fp, &ready.teacher_key).await;
    class.turn(20).await;
    let before = rss_kib(server.id());

    // The attack as found: bodies declared 1 MiB, each sent 4 KiB short; then bodies the size of
    // a hello, sent short; then frames for a link nobody opened. From one address, all at once.
    let mut held = Vec::new();
    for i in 0..CONNECTIONS {
        let (path, declared) = match i % 4 {
            0 | 1 => ("/v1/sse", 1 << 20),
            2 => ("/v1/sse", 16 << 10),
            _ => ("/v1/sse/send", 1 << 20),
        };
        held.extend(half_send(&url, &fp, path, declared, declared - 4096).await);
    }
    eprintln!("{} of {CONNECTIONS} attacking connections got past the handshake", held.len());
    class.turn(20).await;
    let during = rss_kib(server.id());
    let grew = during.saturating_sub(before);
    eprintln!("RSS {before} KiB before, {during} KiB with {CONNECTIONS} half-sent bodies (+{grew} KiB)");

    // Every attacking connection is answered and closed by the server, within the request deadline.
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let closes = held.into_iter().map(|mut conn| async move {
        let mut sink = Vec::new();
        tokio::time::timeout_at(deadline, conn.read_to_end(&mut sink)).await.is_err()
    });
    let still_open = futures_util::future::join_all(closes).await.into_iter().filter(|open| *open).count();
    eprintln!("all answered within {:?}; {still_open} still open", started.elapsed());
    class.turn(20).await;
    eprintln!("class p99 {:?} over {} deliveries, none lost", class.p99(), class.latencies.len());
    assert!(grew < 32 << 10, "the server grew by {grew} KiB");
    assert_eq!(still_open, 0, "half-sent requests were still open");
}

async fn post_from(server: &TestServer, host: u8, path: &str, body: String) -> (u16, Value) {
    let (status, body) =
        common::request_from(host, &server.ws, &server.fingerprint, "POST", path, None, body).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn refused_links_are_counted_per_address_and_then_refused_unopened() {
    // Refused opens an address may make in a minute: `limits.max_students_per_address`, here 20.
    let server = TestServer::with(|limits, _| limits.max_students_per_address = 20).await;
    // Bodies that are no hello: refused before any link exists, and counted.
    let mut statuses = Vec::new();
    for _ in 0..60 {
        statuses.push(post_from(&server, 9, "/v1/sse", "{\"t\":\"ping\"}".into()).await.0);
    }
    let refused_unread = statuses.iter().filter(|s| **s == 429).count();
    assert!(statuses[..20].iter().all(|s| *s == 400), "{statuses:?}");
    assert!(refused_unread >= 35, "the address is refused after its quota: {statuses:?}");
    // A resume token is never held back by it (PROTOCOL.md §3).
    let (_, welcome) = server.student("Aisha", &common::device(1)).await;
    let resume =
        json!({"t":"hello","v":1,"role":"student","resume":welcome["token"],"device":common::device(1)});
    assert_eq!(post_from(&server, 9, "/v1/sse", resume.to_string()).await.0, 201);
    // Well-formed hellos the lesson refuses (a bad device id) count as well.
    let bad =
        json!({"t":"hello","v":1,"role":"student","code":CODE,"name":"Spam","device":"short"}).to_string();
    let mut opened = 0;
    loop {
        let (status, _) = post_from(&server, 10, "/v1/sse", bad.clone()).await;
        if status == 429 {
            break;
        }
        assert_eq!(status, 201);
        opened += 1;
        assert!(opened <= 40, "{opened} refused links and still opening");
    }
    // Another address is not held back.
    let good =
        json!({"t":"hello","v":1,"role":"student","code":CODE,"name":"Yusuf","device":common::device(2)});
    assert_eq!(post_from(&server, 11, "/v1/sse", good.to_string()).await.0, 201);
}
