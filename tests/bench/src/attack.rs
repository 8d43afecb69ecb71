//! `lectern-attack`: the attacks of issue 22 that have figures (findings 1, 2 and 6), run against
//! `lectern serve` binaries one after the other in one run, so a fix is measured before and after on
//! the same machine at the same time. Each attack gets a fresh server; a class (a teacher turning
//! pages ten times a second, five students timing each turn) runs beside the attacks that could
//! slow it. The attacker and the classmates use addresses of their own in 127.0.0.0/8.
//!
//! - `bodies`: 512 connections from one address send request heads and all but 4 KiB of their
//!   bodies to `/v1/sse` and `/v1/sse/send`. Server memory before and with them, how many the server
//!   still holds open 15 s later, the class's p99 before and during.
//! - `lockout`: 108 wrong codes from 12 addresses, wrong-code knocks from 11 more, and the same
//!   going on for the whole run, while 30 classmates join with the right code 2 s apart. The
//!   teacher lets in at once every knock the server marks as having the code (the console's one
//!   tap). How many classmates got in, reached the list, or were refused.
//! - `links`: 4 connections open fallback links with malformed hellos as fast as the server answers,
//!   for 10 s. Requests and links opened a second, server CPU, the class's p99 before and during.
//!
//!   lectern-attack --server /tmp/lectern-old --server target/release/lectern [--only bodies]

#[allow(dead_code)] // shared with the benchmark; this reads only part of it
mod procfs;
mod serve;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser, Debug)]
struct Args {
    /// A `lectern` binary to attack (give two: before and after).
    #[arg(long, required = true)]
    server: Vec<PathBuf>,
    /// Run only this attack (`bodies`, `lockout` or `links`).
    #[arg(long)]
    only: Option<String>,
}

const CODE: &str = "482913";

/// A running `lectern serve`.
struct Server {
    child: std::process::Child,
    dir: PathBuf,
    peer: Peer,
}

/// How a server is reached.
#[derive(Clone)]
struct Peer {
    ws: String,
    fingerprint: String,
    key: String,
}

impl std::ops::Deref for Server {
    type Target = Peer;
    fn deref(&self) -> &Peer {
        &self.peer
    }
}

impl Server {
    fn start(bin: &std::path::Path) -> anyhow::Result<Server> {
        let dir = std::env::temp_dir().join(format!("lectern-attack-{}-{}", std::process::id(), rand_u32()));
        let (child, ready) = serve::start(bin, &dir, &["--code", CODE], "error")?;
        let text = |k: &str| ready[k].as_str().unwrap_or_default().to_string();
        let peer = Peer { ws: text("ws"), fingerprint: text("fingerprint"), key: text("teacher_key") };
        Ok(Server { child, dir, peer })
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }
}

impl Peer {
    fn port(&self) -> u16 {
        self.ws.rsplit(':').next().and_then(|p| p.trim_end_matches("/v1/ws").parse().ok()).unwrap_or(0)
    }

    /// A TLS connection from 127.0.0.`host`.
    async fn tls(&self, host: u8) -> anyhow::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(std::net::SocketAddr::from(([127, 0, 0, host], 0)))?;
        let tcp = socket.connect(std::net::SocketAddr::from(([127, 0, 0, 1], self.port()))).await?;
        Ok(lectern::client::tls_over(tcp, &self.ws, &self.fingerprint).await?)
    }

    /// A WebSocket from 127.0.0.`host` that said `hello`; the first frame it got, or the close code.
    async fn hello(
        &self,
        host: u8,
        hello: Value,
    ) -> anyhow::Result<(lectern::client::Socket, Result<Value, u16>)> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(std::net::SocketAddr::from(([127, 0, 0, host], 0)))?;
        let tcp = socket.connect(std::net::SocketAddr::from(([127, 0, 0, 1], self.port()))).await?;
        let mut ws = lectern::client::connect_over(tcp, &self.ws, &self.fingerprint).await?;
        ws.send(Message::text(hello.to_string())).await?;
        loop {
            match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => {
                    let v: Value = serde_json::from_str(&t)?;
                    if v["t"] != "guessing" {
                        return Ok((ws, Ok(v)));
                    }
                }
                Ok(Some(Ok(Message::Close(c)))) => {
                    return Ok((ws, Err(c.map_or(1005, |c| u16::from(c.code)))));
                }
                Ok(Some(Ok(_))) => {}
                _ => bail!("no answer to the hello"),
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

fn rand_u32() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos())
}

/// A class following page turns: the latencies of the current phase.
struct Class {
    latency: Arc<Mutex<Histogram<u64>>>,
    stop: Arc<AtomicBool>,
}

impl Class {
    async fn start(server: &Server) -> anyhow::Result<Class> {
        let key = server.key.clone();
        let (mut teacher, _) = server
            .hello(1, json!({"t":"hello","v":1,"role":"teacher","key":key,"device":"attack-teacher"}))
            .await?;
        let latency = Arc::new(Mutex::new(Histogram::new(3)?));
        let stop = Arc::new(AtomicBool::new(false));
        let sent: Arc<Vec<AtomicU64>> = Arc::new((0..=12).map(|_| AtomicU64::new(0)).collect());
        let base = Instant::now();
        for n in 0..5u8 {
            let hello = json!({"t":"hello","v":1,"role":"student","code":CODE,"name":format!("Student {n}"),"device":format!("class-student-{n:04}")});
            let (mut ws, _) = server.hello(50 + n, hello).await?;
            let (latency, stop, sent) = (latency.clone(), stop.clone(), sent.clone());
            tokio::spawn(async move {
                while let Some(Ok(msg)) = ws.next().await {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let Message::Text(t) = msg else { continue };
                    let Ok(v) = serde_json::from_str::<Value>(&t) else { continue };
                    let page = v["patch"]["page"].as_u64().or(v["state"]["page"].as_u64()).unwrap_or(0);
                    if let Some(at) =
                        sent.get(page as usize).map(|a| a.load(Ordering::Relaxed)).filter(|a| *a > 0)
                    {
                        let us = (base.elapsed().as_micros() as u64).saturating_sub(at);
                        let _ = latency.lock().map(|mut h| h.record(us.max(1)));
                    }
                }
            });
        }
        let stop2 = stop.clone();
        tokio::spawn(async move {
            let mut page = 1u64;
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            while !stop2.load(Ordering::Relaxed) {
                tick.tick().await;
                page = page % 12 + 1;
                sent[page as usize].store(base.elapsed().as_micros() as u64, Ordering::Relaxed);
                let set = json!({"t":"set","id":page,"patch":{"page":page}}).to_string();
                if teacher.send(Message::text(set)).await.is_err() {
                    return;
                }
                while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(1), teacher.next()).await {
                }
            }
        });
        Ok(Class { latency, stop })
    }

    /// The p99 (ms) of the phase that ends now; the next phase starts empty.
    fn p99(&self) -> f64 {
        let mut h = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let p = h.value_at_quantile(0.99) as f64 / 1000.0;
        h.reset();
        p
    }
}

impl Drop for Class {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

async fn bodies(server: &Server) -> anyhow::Result<Value> {
    let class = Class::start(server).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (p99_before, rss_before) = (class.p99(), procfs::proc_stat(&server.pid())?.rss_kib);
    let mut held = Vec::new();
    for i in 0..512 {
        let (path, declared) = match i % 4 {
            0 | 1 => ("/v1/sse", 1usize << 20),
            2 => ("/v1/sse", 16 << 10),
            _ => ("/v1/sse/send", 1 << 20),
        };
        // Past the pace an address may open connections at, the server closes them before TLS.
        let Ok(mut tls) = server.tls(9).await else { continue };
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: l\r\nauthorization: Bearer 00\r\ncontent-length: {declared}\r\n\r\n"
        );
        let _ = tls.write_all(head.as_bytes()).await;
        let _ = tls.write_all(&vec![b' '; declared - 4096]).await;
        let _ = tls.flush().await;
        held.push(tls);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (p99_during, rss_during) = (class.p99(), procfs::proc_stat(&server.pid())?.rss_kib);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let open = futures_util::future::join_all(held.into_iter().map(|mut c| async move {
        let mut sink = Vec::new();
        tokio::time::timeout_at(deadline, c.read_to_end(&mut sink)).await.is_err()
    }))
    .await;
    Ok(json!({
        "rss_before_mib": rss_before as f64 / 1024.0, "rss_with_attack_mib": rss_during as f64 / 1024.0,
        "connections_past_tls": open.len(), "still_open_after_15s": open.iter().filter(|o| **o).count(),
        "class_p99_before_ms": p99_before, "class_p99_during_ms": p99_during,
    }))
}

async fn lockout(server: &Server) -> anyhow::Result<Value> {
    let key = server.key.clone();
    let (mut teacher, _) = server
        .hello(1, json!({"t":"hello","v":1,"role":"teacher","key":key,"device":"attack-teacher"}))
        .await?;
    // The teacher lets in at once every knock marked as having the code.
    tokio::spawn(async move {
        let mut id = 100;
        while let Some(Ok(msg)) = teacher.next().await {
            let Message::Text(t) = msg else { continue };
            let Ok(v) = serde_json::from_str::<Value>(&t) else { continue };
            let marked: Vec<Value> = v["knocks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|k| k["has_code"] == true)
                .map(|k| k["id"].clone())
                .collect();
            if v["t"] == "knocks" && !marked.is_empty() {
                id += 1;
                let _ = teacher
                    .send(Message::text(json!({"t":"admit","id":id,"knocks":marked}).to_string()))
                    .await;
            }
        }
    });
    let guess = |n: usize| json!({"t":"hello","v":1,"role":"student","code":format!("9{:05}", n % 100_000),"name":"Aisha","device":format!("guess-{n:06}")});
    let mut kept = Vec::new();
    for n in 0..108 {
        kept.push(server.hello(10 + (n % 12) as u8, guess(n)).await?.0);
    }
    for n in 0..33 {
        kept.push(server.hello(22 + (n % 11) as u8, guess(1000 + n)).await?.0);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flood = {
        let (stop, peer) = (stop.clone(), server.peer.clone());
        tokio::spawn(async move {
            let mut kept = Vec::new();
            let mut n = 2000;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                if let Ok((ws, _)) = peer.hello(10 + (n % 23) as u8, guess(n)).await {
                    kept.push(ws);
                }
                if kept.len() > 2000 {
                    kept.remove(0);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            n - 2000
        })
    };
    let (mut let_in, mut listed, mut refused) = (0, 0, 0);
    for i in 0..30u8 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let hello = json!({"t":"hello","v":1,"role":"student","code":CODE,"name":"Aisha","device":format!("classmate-{i:04}")});
        let Ok((mut ws, first)) = server.hello(100 + i, hello).await else { continue };
        match first {
            Ok(v) if v["t"] == "welcome" => let_in += 1,
            Ok(v) if v["t"] == "waiting" => {
                listed += 1;
                let welcome = tokio::time::timeout(Duration::from_secs(10), async {
                    while let Some(Ok(msg)) = ws.next().await {
                        if matches!(&msg, Message::Text(t) if t.contains("\"welcome\"")) {
                            return true;
                        }
                    }
                    false
                });
                let_in += usize::from(welcome.await == Ok(true));
            }
            _ => refused += 1,
        }
    }
    stop.store(true, Ordering::Relaxed);
    let flooded = flood.await.unwrap_or(0);
    Ok(
        json!({"classmates": 30, "let_in": let_in, "reached_the_list": listed, "refused": refused, "guesses_during": flooded + 141}),
    )
}

async fn links(server: &Server) -> anyhow::Result<Value> {
    let class = Class::start(server).await?;
    let pid = server.pid();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = procfs::proc_stat(&pid)?.cpu_seconds;
    let p99_before = class.p99();
    let requests = Arc::new(AtomicU64::new(0));
    let opened = Arc::new(AtomicU64::new(0));
    let connects = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs(10);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (requests, opened, connects) = (requests.clone(), opened.clone(), connects.clone());
        let peer = server.peer.clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < end {
                connects.fetch_add(1, Ordering::Relaxed);
                let Ok(tls) = peer.tls(9).await else { continue };
                let Ok((mut sender, conn)) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await
                else {
                    continue;
                };
                tokio::spawn(conn);
                while Instant::now() < end {
                    let req = hyper::Request::post("/v1/sse")
                        .header("host", "l")
                        .body(http_body_util::Full::new(bytes::Bytes::from_static(br#"{"t":"hello","v":1}"#)))
                        .ok()?;
                    let Ok(res) = sender.send_request(req).await else { break };
                    requests.fetch_add(1, Ordering::Relaxed);
                    if res.status() == 201 {
                        opened.fetch_add(1, Ordering::Relaxed);
                    }
                    let _ = http_body_util::BodyExt::collect(res.into_body()).await;
                }
            }
            Some(())
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let cpu = (procfs::proc_stat(&pid)?.cpu_seconds - before) / 10.0 * 100.0;
    Ok(json!({
        "connection_attempts_per_s": connects.load(Ordering::Relaxed) as f64 / 10.0,
        "requests_per_s": requests.load(Ordering::Relaxed) as f64 / 10.0,
        "links_opened_per_s": opened.load(Ordering::Relaxed) as f64 / 10.0,
        "server_cpu_percent": cpu, "class_p99_before_ms": p99_before, "class_p99_during_ms": class.p99(),
    }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let wanted = |name: &str| args.only.as_deref().is_none_or(|o| o == name);
    for (name, on) in
        [("bodies", wanted("bodies")), ("lockout", wanted("lockout")), ("links", wanted("links"))]
    {
        if !on {
            continue;
        }
        for bin in &args.server {
            let server = Server::start(bin)?;
            let figures = match name {
                "bodies" => bodies(&server).await?,
                "lockout" => lockout(&server).await?,
                _ => links(&server).await?,
            };
            println!("{}", json!({"attack": name, "server": bin, "figures": figures}));
        }
    }
    Ok(())
}
