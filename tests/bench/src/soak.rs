//! `lectern-soak`: a lesson kept going for a long time, to see that nothing creeps (issue 15).
//!
//! It starts `lectern serve` (session log on, real SQLite file) and runs one teacher and 30 students
//! over TLS: the teacher moves the pointer 20 times a second and turns the page every 3 s; 26 students
//! follow and time every change; 2 leave and come back every few seconds (one resuming with its
//! token, one as a new device); 1 floods the server with frames as fast as it will take them (and
//! comes back whenever it is closed); 1 joins and then never reads again. Every interval it records the
//! server's resident memory, open descriptors and CPU, and the followers' latency percentiles.
//!
//! It fails (exit 1) only on what is not a timing: a follower missing a change, the server dying, or
//! memory or descriptors growing in the second half of the run (a leak). Latency and CPU are reported.
//!
//!   lectern-soak --server target/release/lectern --seconds 1800 --out docs/bench/soak.json

#[allow(dead_code)] // shared with the benchmark; the soak reads only part of it
mod procfs;
mod serve;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser, Debug)]
struct Args {
    /// The `lectern` binary to run.
    #[arg(long)]
    server: PathBuf,
    /// How long the lesson goes on.
    #[arg(long, default_value_t = 120)]
    seconds: u64,
    /// How often resources and latency are recorded.
    #[arg(long, default_value_t = 10)]
    interval: u64,
    /// Where the report (JSON) goes.
    #[arg(long)]
    out: PathBuf,
}

/// How the server is reached.
#[derive(Clone)]
struct Peer {
    ws: String,
    fingerprint: String,
    code: String,
    key: String,
}

type Socket = lectern::client::Socket;

impl Peer {
    async fn hello(&self, hello: Value) -> anyhow::Result<(Socket, Value)> {
        let mut ws = lectern::client::connect(&self.ws, &self.fingerprint).await?;
        ws.send(Message::text(hello.to_string())).await?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t)?;
                    if v["t"] == "welcome" {
                        return Ok((ws, v));
                    }
                }
                Some(Ok(Message::Close(c))) => bail!("refused: {c:?}"),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => bail!("closed before the welcome"),
            }
        }
    }

    async fn student(&self, name: &str, device: &str) -> anyhow::Result<(Socket, Value)> {
        self.hello(json!({"t":"hello","v":1,"role":"student","code":self.code,"name":name,"device":device}))
            .await
    }
}

/// What the followers measured in the current interval.
struct Measured {
    latency: Histogram<u64>,
    lost: u64,
    /// Followers whose connection the server closed (none should be).
    closed: u64,
}

/// The teacher's send times, by change number (seq minus the seq at the start).
struct Sent {
    base: Instant,
    at: Vec<AtomicU64>,
    seq0: AtomicU64,
}

async fn follower(
    peer: Peer,
    n: usize,
    sent: Arc<Sent>,
    measured: Arc<Mutex<Measured>>,
    stop: Arc<AtomicBool>,
) {
    let Ok((mut ws, welcome)) = peer.student(&format!("Follower {n}"), &format!("soak-follow-{n:04}")).await
    else {
        measured.lock().await.closed += 1;
        return;
    };
    let mut have = welcome["seq"].as_u64().unwrap_or(0);
    // Acks are cumulative and at most 10 a second (§6).
    let mut acked_at = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let msg = match tokio::time::timeout(Duration::from_secs(1), ws.next()).await {
            Err(_) => continue,
            Ok(Some(Ok(msg))) => msg,
            Ok(other) => {
                eprintln!("soak: follower {n} lost its connection: {other:?}");
                measured.lock().await.closed += 1;
                return;
            }
        };
        let Message::Text(t) = msg else { continue };
        let Ok(v) = serde_json::from_str::<Value>(&t) else { continue };
        let seq = v["seq"].as_u64().unwrap_or(0);
        match v["t"].as_str() {
            Some("patch") => {
                let mut m = measured.lock().await;
                m.lost += seq.saturating_sub(have + 1);
                have = have.max(seq);
                let i = seq.saturating_sub(sent.seq0.load(Ordering::Acquire)) as usize;
                let sent_us = sent.at.get(i).map(|a| a.load(Ordering::Acquire)).unwrap_or(0);
                if sent_us > 0 {
                    let now = sent.base.elapsed().as_micros() as u64;
                    let _ = m.latency.record(now.saturating_sub(sent_us).max(1));
                }
                drop(m);
                if acked_at.elapsed() >= Duration::from_millis(100) {
                    acked_at = Instant::now();
                    let _ = ws.send(Message::text(json!({"t":"ack","seq":seq}).to_string())).await;
                }
            }
            Some("sync") => have = have.max(seq), // a snapshot covers what it skipped
            _ => {}
        }
    }
}

/// Leaves and comes back every few seconds: with its token (`resume`), or as a new device.
async fn churner(peer: Peer, n: usize, resume: bool, stop: Arc<AtomicBool>, rounds: Arc<AtomicU64>) {
    let mut token: Option<String> = None;
    let mut k = 0u64;
    while !stop.load(Ordering::Relaxed) {
        k += 1;
        let device = if resume { format!("soak-churn-{n:04}") } else { format!("soak-new-{n:02}-{k:08}") };
        let hello = match (&token, resume) {
            (Some(t), true) => json!({"t":"hello","v":1,"role":"student","resume":t,"device":device}),
            _ => {
                json!({"t":"hello","v":1,"role":"student","code":peer.code,"name":format!("Churn {n}"),"device":device})
            }
        };
        if let Ok((ws, welcome)) = peer.hello(hello).await {
            token = welcome["token"].as_str().map(str::to_string);
            rounds.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(2500)).await;
            drop(ws);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Sends frames as fast as the server takes them; comes back when closed.
async fn flooder(peer: Peer, stop: Arc<AtomicBool>, closed: Arc<AtomicU64>) {
    let mut k = 0u64;
    while !stop.load(Ordering::Relaxed) {
        k += 1;
        let Ok((ws, _)) = peer.student("Flood", &format!("soak-flood-{k:08}")).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let (mut tx, mut rx) = ws.split();
        let reader = tokio::spawn(async move { while let Some(Ok(_)) = rx.next().await {} });
        let mut i = 0u32;
        while !stop.load(Ordering::Relaxed) && !reader.is_finished() {
            i = i.wrapping_add(1);
            let frame = match i % 3 {
                0 => json!({"t":"ping","id":i}),
                1 => json!({"t":"hand","up":i.is_multiple_of(2)}),
                _ => json!({"t":"set","id":i,"patch":{"page":1}}), // forbidden to a student
            };
            if tx.send(Message::text(frame.to_string())).await.is_err() {
                break;
            }
        }
        closed.fetch_add(1, Ordering::Relaxed);
        reader.abort();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("lectern-soak-{}", std::process::id()));
    let (mut child, ready) = serve::start(&args.server, &dir, &[], "warn")?;
    let pid = child.id();
    let text = |k: &str| ready[k].as_str().unwrap_or_default().to_string();
    let peer = Peer {
        ws: text("ws"),
        fingerprint: text("fingerprint"),
        code: text("code"),
        key: text("teacher_key"),
    };
    let result = soak(&args, &peer, pid).await;
    let _ = child.kill();
    let _ = child.wait();
    std::fs::remove_dir_all(&dir).ok();
    result
}

async fn soak(args: &Args, peer: &Peer, pid: u32) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let hello = json!({"t":"hello","v":1,"role":"teacher","key":peer.key,"device":"soak-teacher"});
    let (teacher, welcome) = peer.hello(hello).await?;
    eprintln!("soak: the teacher is in");
    let rate = 20u64;
    let total = (args.seconds * rate + 100) as usize;
    let sent = Arc::new(Sent {
        base: Instant::now(),
        at: (0..=total).map(|_| AtomicU64::new(0)).collect(),
        seq0: AtomicU64::new(welcome["seq"].as_u64().unwrap_or(0)),
    });
    let pages = welcome["state"]["doc"]["pages"].as_u64().unwrap_or(1).max(1);
    let measured = Arc::new(Mutex::new(Measured {
        latency: Histogram::new_with_bounds(1, 60_000_000, 3)?,
        lost: 0,
        closed: 0,
    }));
    let mut tasks = Vec::new();
    for n in 0..26 {
        tasks.push(tokio::spawn(follower(peer.clone(), n, sent.clone(), measured.clone(), stop.clone())));
    }
    let rounds = Arc::new(AtomicU64::new(0));
    for (n, resume) in [(0, true), (1, false)] {
        tasks.push(tokio::spawn(churner(peer.clone(), n, resume, stop.clone(), rounds.clone())));
    }
    let flood_closed = Arc::new(AtomicU64::new(0));
    tasks.push(tokio::spawn(flooder(peer.clone(), stop.clone(), flood_closed.clone())));
    // The stalled student: joins, then never reads again (its socket is held open to the end).
    let stalled = peer.student("Stalled", "soak-stalled-0001").await?;
    eprintln!("soak: 30 students started");
    // The teacher reads everything it is sent (replies, the roster) so that it never stalls itself.
    let (mut tx, mut rx) = teacher.split();
    let stalled_gone = Arc::new(AtomicU64::new(0));
    let gone = stalled_gone.clone();
    let started = Instant::now();
    let teacher_reader = tokio::spawn(async move {
        while let Some(Ok(msg)) = rx.next().await {
            let Message::Text(t) = msg else {
                if let Message::Close(c) = msg {
                    eprintln!("soak: the teacher was closed: {c:?}");
                }
                continue;
            };
            let v: Value = serde_json::from_str(&t).unwrap_or_default();
            if v["t"] == "error" {
                eprintln!("soak: the teacher got {v}");
            }
            if v["t"] == "roster"
                && let Some(changes) = v["changes"].as_array()
                && changes.iter().any(|e| e["name"] == "Stalled" && e["online"] == false)
                && gone.load(Ordering::Relaxed) == 0
            {
                gone.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
            }
        }
    });

    let mut samples = Vec::new();
    let mut cpu_before = procfs::proc_stat(&pid.to_string())?.cpu_seconds;
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / rate));
    let mut next_sample = Instant::now() + Duration::from_secs(args.interval);
    let mut i = 0u64;
    while started.elapsed() < Duration::from_secs(args.seconds) {
        tick.tick().await;
        i += 1;
        let patch = if i.is_multiple_of(3 * rate) {
            json!({"page": (i / (3 * rate)) % pages + 1})
        } else {
            json!({"pos": {"x": (i % 1000) as f64 / 1000.0, "y": 0.5}})
        };
        if let Some(slot) = sent.at.get(i as usize) {
            slot.store(sent.base.elapsed().as_micros() as u64, Ordering::Release);
        }
        tx.send(Message::text(json!({"t":"set","id":i,"patch":patch}).to_string())).await?;
        if Instant::now() >= next_sample {
            next_sample += Duration::from_secs(args.interval);
            let stat = procfs::proc_stat(&pid.to_string()).context("the server died")?;
            let mut m = measured.lock().await;
            let sample = json!({
                "at_s": started.elapsed().as_secs(),
                "rss_kib": stat.rss_kib,
                "fds": fds(pid),
                "cpu_pct": (stat.cpu_seconds - cpu_before) / args.interval as f64 * 100.0,
                "p50_ms": m.latency.value_at_quantile(0.5) as f64 / 1000.0,
                "p99_ms": m.latency.value_at_quantile(0.99) as f64 / 1000.0,
                "max_ms": m.latency.max() as f64 / 1000.0,
                "deliveries": m.latency.len(),
                "lost": m.lost,
                "followers_closed": m.closed,
                "churn_rounds": rounds.load(Ordering::Relaxed),
                "flooder_closed": flood_closed.load(Ordering::Relaxed),
            });
            m.latency.reset();
            drop(m);
            cpu_before = stat.cpu_seconds;
            eprintln!("{sample}");
            samples.push(sample);
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    drop(stalled);
    teacher_reader.abort();
    verdict(args, &samples, stalled_gone.load(Ordering::Relaxed))
}

/// Writes the report, and fails on a loss or on growth in the second half.
fn verdict(args: &Args, samples: &[Value], stalled_gone_ms: u64) -> anyhow::Result<()> {
    let get = |s: &Value, k: &str| s[k].as_f64().unwrap_or(0.0);
    let half = samples.len() / 2;
    let (first, second) = samples.split_at(half.max(1).min(samples.len()));
    let max_of = |xs: &[Value], k: &str| xs.iter().map(|s| get(s, k)).fold(0.0, f64::max);
    let lost: f64 = samples.iter().map(|s| get(s, "lost")).sum();
    let closed = samples.last().map_or(0.0, |s| get(s, "followers_closed"));
    let summary = json!({
        "seconds": args.seconds,
        "students": 30,
        "rss_kib_first_half_max": max_of(first, "rss_kib"),
        "rss_kib_second_half_max": max_of(second, "rss_kib"),
        "fds_first_half_max": max_of(first, "fds"),
        "fds_second_half_max": max_of(second, "fds"),
        "p99_ms_worst_interval": max_of(samples, "p99_ms"),
        "cpu_pct_max": max_of(samples, "cpu_pct"),
        "lost": lost,
        "followers_closed": closed,
        "stalled_student_offline_after_ms": stalled_gone_ms,
    });
    std::fs::write(&args.out, serde_json::to_vec_pretty(&json!({"summary": summary, "samples": samples}))?)?;
    println!("{summary}");
    if lost > 0.0 || closed > 0.0 {
        bail!("followers missed {lost} changes, and {closed} lost their connection");
    }
    // Memory may settle in the first half (buffers, caches); the second half must not grow past it
    // by more than 10% and 16 MiB. Descriptors must not grow beyond the churn's own.
    let (r1, r2) = (max_of(first, "rss_kib"), max_of(second, "rss_kib"));
    if r2 > r1 * 1.1 + 16_384.0 {
        bail!("resident memory grew from {r1} KiB to {r2} KiB in the second half");
    }
    let (f1, f2) = (max_of(first, "fds"), max_of(second, "fds"));
    if f2 > f1 + 8.0 {
        bail!("open descriptors grew from {f1} to {f2} in the second half");
    }
    Ok(())
}
