//! `lectern-bench`: one process, one teacher and N students over TLS, against Lectern, the floor (a
//! minimal Rust broadcaster) or Socket.IO (Engine.IO v4 over WebSocket), on one process clock.
//!
//! The teacher sends changes at a fixed rate (pointer moves, with a page turn every second); every student
//! records, for every change, the time from the teacher's send to its own receipt in an HDR histogram.
//! The report gives latency percentiles, deliveries, losses (changes neither received nor covered by a
//! snapshot), and the CPU time and memory of the server (from /proc) and of this load generator.

mod ink;
mod netns;
mod peer;
mod procfs;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use lectern::protocol::{Pos, SetPatch};
use serde_json::json;

use crate::peer::{Frame, Peer, Ready, Target};
use crate::procfs::proc_stat;
use tokio_tungstenite::tungstenite::Message;

/// Measure teacher-to-student latency against a running server.
#[derive(Parser, Debug, Clone)]
struct Args {
    /// Which server.
    #[arg(long, value_enum, default_value = "lectern")]
    target: Target,
    /// The server's ready line (`lectern serve --json`, or the peers' `{"ready":true,"port":N}`).
    #[arg(long)]
    ready: String,
    /// Certificate fingerprint to pin (for the peers; Lectern's ready line carries its own).
    #[arg(long, allow_hyphen_values = true)]
    fingerprint: Option<String>,
    /// Number of students.
    #[arg(long, default_value_t = 30)]
    students: usize,
    /// Changes per second from the teacher.
    #[arg(long, default_value_t = 60)]
    rate: u32,
    /// Seconds of changes.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds of warm-up changes not recorded.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// The server's pid, to read its CPU and memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Only connect the students, report the server's memory, and stop.
    #[arg(long)]
    idle: bool,
    /// A network device whose received bytes and packets are what the server sent this load generator
    /// (the veth end in the students' namespace of the lossy-link rig); reported per change.
    #[arg(long)]
    count_dev: Option<String>,
    /// A label carried into the JSON report (for example a repeat number).
    #[arg(long, default_value = "")]
    label: String,
    /// The ready line of the node the teacher connects to, when it is not the students' (Socket.IO
    /// nodes joined by its Redis adapter: the teacher's in the school, the students' in the cloud).
    #[arg(long)]
    teacher_ready: Option<String>,
    /// The network namespace the teacher connects from (tests/wan/rig.sh's school).
    #[arg(long)]
    teacher_netns: Option<String>,
    /// The teacher writes: each change is a step of a pen stroke, every 41st keeps one (see `ink`).
    #[arg(long)]
    ink: bool,
    /// Lectern only: fill the lesson with this many kept strokes before the students join.
    #[arg(long, default_value_t = 0)]
    prefill: usize,
}

/// Bytes and packets a network device has received so far.
fn dev_counters(dev: &str) -> anyhow::Result<(u64, u64)> {
    let read = |what: &str| -> anyhow::Result<u64> {
        let path = format!("/sys/class/net/{dev}/statistics/{what}");
        Ok(std::fs::read_to_string(&path).with_context(|| path.clone())?.trim().parse()?)
    };
    Ok((read("rx_bytes")?, read("rx_packets")?))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let ready: Ready =
        serde_json::from_str(&args.ready).context("--ready must be the server's ready line")?;
    let peer = Arc::new(Peer::new(
        args.target,
        &ready,
        args.fingerprint.clone(),
        args.teacher_ready.as_deref(),
        args.teacher_netns.clone(),
    )?);
    let server_pid = args.server_pid.map(|p| p.to_string());

    if args.prefill > 0 {
        let (mut teacher, _) = peer.join(true, 0).await?;
        ink::prefill(&mut teacher, args.prefill).await?;
        let _ = teacher.close(None).await;
    }
    let server_before = server_pid.as_deref().map(proc_stat).transpose()?.unwrap_or_default();
    // Connect the students, 64 at a time.
    let t0 = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(64));
    let mut joins = Vec::with_capacity(args.students);
    for n in 0..args.students {
        let (peer, gate) = (peer.clone(), gate.clone());
        joins.push(tokio::spawn(async move {
            let _permit = gate.acquire().await;
            peer.join(false, n).await.with_context(|| format!("student {n}"))
        }));
    }
    let mut students = Vec::with_capacity(args.students);
    for j in joins {
        students.push(j.await??);
    }
    let connect_seconds = t0.elapsed().as_secs_f64();
    if args.idle {
        // Let the server settle (lazy buffers, its timers) before reading its memory.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let stat = server_pid.as_deref().map(proc_stat).transpose()?.unwrap_or_default();
        let per_connection =
            (stat.rss_kib as f64 - server_before.rss_kib as f64) / args.students.max(1) as f64;
        let report = json!({"target": args.target, "idle": true, "students": args.students, "label": args.label,
            "connect_seconds": connect_seconds, "server_rss_before_kib": server_before.rss_kib,
            "server_rss_kib": stat.rss_kib, "server_peak_rss_kib": stat.peak_rss_kib,
            "kib_per_connection": per_connection});
        println!("{report}");
        return Ok(());
    }

    let (teacher, _) = peer.join(true, 0).await?;
    let total = (u64::from(args.rate) * (args.seconds + args.warmup)) as usize;
    let warm = u64::from(args.rate) * args.warmup;
    let base = Instant::now();
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..=total).map(|_| AtomicU64::new(0)).collect());

    let mut tasks = Vec::new();
    for (mut ws, seq0) in students {
        let (sent, peer) = (sent.clone(), peer.clone());
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
            let (mut received, mut covered) = (0u64, 0u64);
            let mut last = 0u64;
            while last < total as u64 {
                let Some(Ok(msg)) = ws.next().await else { break };
                let now = base.elapsed().as_micros() as u64;
                let Message::Text(t) = msg else { continue };
                match peer.classify(&t) {
                    Frame::Change(seq) => {
                        let i = seq.saturating_sub(seq0);
                        if i <= last {
                            continue;
                        }
                        received += 1;
                        last = i;
                        if i > warm
                            && let Some(at) = sent.get(i as usize)
                        {
                            let _ = hist.record(now.saturating_sub(at.load(Ordering::Acquire)).max(1));
                        }
                    }
                    Frame::Sync(seq) => {
                        let i = seq.saturating_sub(seq0);
                        covered += i.saturating_sub(last);
                        last = last.max(i);
                    }
                    Frame::Ping => {
                        let _ = ws.send(Message::text("3")).await;
                    }
                    Frame::Other => {}
                }
            }
            // Closed by main after it reads the server's CPU: closing is not fan-out work.
            (hist, received, covered, ws)
        }));
    }

    // The teacher: pipelined changes at the rate; a reader drains (and answers Engine.IO pings).
    let (mut tx, mut rx) = teacher.split();
    let (pong_tx, mut pong_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let socketio = args.target == Target::Socketio;
    let drain = tokio::spawn(async move {
        while let Some(Ok(m)) = rx.next().await {
            if socketio && matches!(&m, Message::Text(t) if t.as_str() == "2") {
                let _ = pong_tx.send(());
            }
        }
    });
    let me = std::process::id().to_string();
    let before = server_pid.as_deref().map(proc_stat).transpose()?;
    let me_before = proc_stat(&me)?;
    let wire_before = args.count_dev.as_deref().map(dev_counters).transpose()?;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    for i in 1..=total {
        tick.tick().await;
        while pong_rx.try_recv().is_ok() {
            tx.send(Message::text("3")).await?;
        }
        let patch = if args.ink {
            ink::change(i)
        } else if i % args.rate as usize == 0 {
            SetPatch { page: Some(((i / args.rate as usize) % 12 + 1) as u32), ..SetPatch::default() }
        } else {
            let x = (i % 1000) as f64 / 1000.0;
            SetPatch { pos: Some(Some(Pos { x, y: 1.0 - x })), ..SetPatch::default() }
        };
        let frame = peer.set(i as u64, patch)?;
        if let Some(at) = sent.get(i) {
            at.store(base.elapsed().as_micros() as u64, Ordering::Release);
        }
        tx.send(frame).await?;
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let (mut received, mut covered) = (0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut sockets = Vec::with_capacity(tasks.len());
    for t in tasks {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, t).await {
            Ok(Ok((h, r, c, ws))) => {
                hist.add(h)?;
                received += r;
                covered += c;
                sockets.push(ws);
            }
            _ => eprintln!("a student did not finish in time"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = server_pid.as_deref().map(proc_stat).transpose()?;
    let me_after = proc_stat(&me)?;
    let wire_after = args.count_dev.as_deref().map(dev_counters).transpose()?;
    drain.abort();
    for mut ws in sockets {
        let _ = ws.close(None).await;
    }
    let expected = (total * args.students) as u64;
    let lost = expected.saturating_sub(received + covered);
    let cpu = match (before, after) {
        (Some(b), Some(a)) => a.cpu_seconds - b.cpu_seconds,
        _ => f64::NAN,
    };
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    // Per change delivered to one student, the teacher's own traffic included (it is one of N + 1).
    let per_delivery = |i: usize| match (wire_before, wire_after) {
        (Some(b), Some(a)) => {
            let (b, a) = if i == 0 { (b.0, a.0) } else { (b.1, a.1) };
            Some(a.saturating_sub(b) as f64 / (total * args.students).max(1) as f64)
        }
        _ => None,
    };
    let report = json!({
        "target": args.target, "students": args.students, "rate": args.rate, "seconds": args.seconds,
        "label": args.label,
        "p50_ms": ms(0.5), "p90_ms": ms(0.9), "p99_ms": ms(0.99), "p999_ms": ms(0.999),
        "max_ms": hist.max() as f64 / 1000.0, "samples": hist.len(),
        "deliveries": received, "deliveries_per_s": received as f64 / elapsed,
        "covered_by_snapshots": covered, "lost": lost,
        "server_cpu_seconds": cpu,
        "server_cpu_us_per_delivery": cpu * 1e6 / received.max(1) as f64,
        "server_rss_kib": after.map(|a| a.rss_kib), "server_peak_rss_kib": after.map(|a| a.peak_rss_kib),
        "client_cpu_seconds": me_after.cpu_seconds - me_before.cpu_seconds,
        "wire_bytes_per_delivery": per_delivery(0), "wire_packets_per_delivery": per_delivery(1),
        "connect_seconds": connect_seconds,
    });
    println!("{report}");
    eprintln!(
        "{:?} {} students, {}/s: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; {} deliveries, {} lost; server {:.1} µs/delivery",
        args.target,
        args.students,
        args.rate,
        ms(0.5),
        ms(0.99),
        hist.max() as f64 / 1000.0,
        received,
        lost,
        cpu * 1e6 / received.max(1) as f64
    );
    if lost > 0 {
        bail!("{lost} deliveries lost");
    }
    Ok(())
}
