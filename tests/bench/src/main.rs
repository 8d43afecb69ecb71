//! `lectern-bench`: one process, one teacher and N students over TLS against a running Lectern server.
//!
//! The teacher sends `set` at a fixed rate (pointer moves, with a page turn every second); every student
//! records, for every patch, the time from the teacher's send to its own receipt on this process's clock,
//! in an HDR histogram. The report gives latency percentiles, deliveries, losses (patches neither
//! received nor covered by a snapshot), and the server's CPU time and memory read from /proc.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Deserialize;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// Measure teacher-to-student latency against a running server.
#[derive(Parser, Debug, Clone)]
struct Args {
    /// The server's ready line (`lectern serve --json` output).
    #[arg(long)]
    ready: String,
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
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Deserialize)]
struct Ready {
    ws: String,
    fingerprint: String,
    code: String,
    teacher_key: String,
}

#[derive(Deserialize)]
struct Frame {
    t: String,
    #[serde(default)]
    seq: Option<u64>,
}

/// Server resource use from /proc.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
struct ProcStat {
    cpu_seconds: f64,
    rss_kib: u64,
    peak_rss_kib: u64,
}

fn proc_stat(pid: u32) -> anyhow::Result<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').map(|(_, a)| a).context("bad /proc stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(ProcStat { cpu_seconds: ticks / 100.0, rss_kib: kib("VmRSS:"), peak_rss_kib: kib("VmHWM:") })
}

async fn hello(ready: &Ready, body: serde_json::Value) -> anyhow::Result<(lectern::client::Socket, u64)> {
    let mut ws = lectern::client::connect(&ready.ws, &ready.fingerprint).await?;
    ws.send(Message::text(body.to_string())).await?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let v: serde_json::Value = serde_json::from_str(&t)?;
                if v["t"] == "welcome" {
                    return Ok((ws, v["seq"].as_u64().unwrap_or(0)));
                }
            }
            Some(Ok(Message::Close(c))) => bail!("closed before welcome: {c:?}"),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => bail!("connection ended before welcome"),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let ready: Ready =
        serde_json::from_str(&args.ready).context("--ready must be the server's ready line")?;
    let ready = Arc::new(ready);

    let mut students = Vec::with_capacity(args.students);
    let t0 = Instant::now();
    for n in 0..args.students {
        let body = json!({"t":"hello","v":1,"role":"student","code":ready.code,"name":format!("Bench {n}"),
            "device":format!("bench-student-{n:06}")});
        let (ws, _) = hello(&ready, body).await.with_context(|| format!("student {n}"))?;
        students.push(ws);
    }
    let connect_seconds = t0.elapsed().as_secs_f64();
    if args.idle {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let stat = args.server_pid.map(proc_stat).transpose()?.unwrap_or_default();
        let report = json!({"students": args.students, "connect_seconds": connect_seconds,
            "server_rss_kib": stat.rss_kib, "server_peak_rss_kib": stat.peak_rss_kib});
        println!("{report}");
        return Ok(());
    }

    let (teacher, seq0) = hello(
        &ready,
        json!({"t":"hello","v":1,"role":"teacher","key":ready.teacher_key,
        "device":"bench-teacher"}),
    )
    .await?;
    let total = (u64::from(args.rate) * (args.seconds + args.warmup)) as usize;
    let warm = u64::from(args.rate) * args.warmup;
    let base = Instant::now();
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..=total).map(|_| AtomicU64::new(0)).collect());

    let mut tasks = Vec::new();
    for mut ws in students {
        let sent = sent.clone();
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
            let (mut received, mut syncs, mut covered) = (0u64, 0u64, 0u64);
            let mut last = seq0;
            let last_seq = seq0 + total as u64;
            while last < last_seq {
                let Some(Ok(msg)) = ws.next().await else { break };
                let now = base.elapsed().as_micros() as u64;
                let Message::Text(t) = msg else { continue };
                let Ok(f) = serde_json::from_str::<Frame>(&t) else { continue };
                let Some(seq) = f.seq else { continue };
                match f.t.as_str() {
                    "patch" => {
                        received += 1;
                        last = seq;
                        let i = (seq - seq0) as usize;
                        if (i as u64) > warm
                            && let Some(at) = sent.get(i)
                        {
                            let _ = hist.record(now.saturating_sub(at.load(Ordering::Acquire)).max(1));
                        }
                    }
                    "sync" => {
                        syncs += 1;
                        covered += seq.saturating_sub(last);
                        last = seq;
                    }
                    _ => {}
                }
            }
            let _ = ws.close(None).await;
            (hist, received, syncs, covered)
        }));
    }

    // The teacher: pipelined sets at the rate; acks of the server are drained by a reader.
    let (mut tx, mut rx) = teacher.split();
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = rx.next().await {} });
    let before = args.server_pid.map(proc_stat).transpose()?;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    for i in 1..=total {
        tick.tick().await;
        let patch = if i % args.rate as usize == 0 {
            json!({"page": (i / args.rate as usize) % 12 + 1})
        } else {
            let x = (i % 1000) as f64 / 1000.0;
            json!({"pos": {"x": x, "y": 1.0 - x}})
        };
        let frame = json!({"t":"set","id":i,"patch":patch}).to_string();
        if let Some(at) = sent.get(i) {
            at.store(base.elapsed().as_micros() as u64, Ordering::Release);
        }
        tx.send(Message::text(frame)).await?;
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let (mut received, mut syncs, mut covered) = (0u64, 0u64, 0u64);
    for t in tasks {
        let (h, r, s, c) =
            tokio::time::timeout(Duration::from_secs(30), t).await.context("students finished")??;
        hist.add(h)?;
        received += r;
        syncs += s;
        covered += c;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = args.server_pid.map(proc_stat).transpose()?;
    drain.abort();
    let expected = (total * args.students) as u64;
    let lost = expected.saturating_sub(received + covered);
    let cpu = match (before, after) {
        (Some(b), Some(a)) => a.cpu_seconds - b.cpu_seconds,
        _ => f64::NAN,
    };
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    let report = json!({
        "students": args.students, "rate": args.rate, "seconds": args.seconds,
        "p50_ms": ms(0.5), "p90_ms": ms(0.9), "p99_ms": ms(0.99), "p999_ms": ms(0.999),
        "max_ms": hist.max() as f64 / 1000.0, "samples": hist.len(),
        "deliveries": received, "deliveries_per_s": received as f64 / elapsed,
        "syncs": syncs, "lost": lost,
        "server_cpu_seconds": cpu,
        "server_cpu_us_per_delivery": cpu * 1e6 / received.max(1) as f64,
        "server_rss_kib": after.map(|a| a.rss_kib), "server_peak_rss_kib": after.map(|a| a.peak_rss_kib),
    });
    if args.json {
        println!("{report}");
    } else {
        println!(
            "{} students, {}/s for {}s: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms; \
             {} deliveries ({:.0}/s), {} lost, {} syncs; server CPU {:.2} s ({:.1} µs/delivery), RSS {} KiB",
            args.students,
            args.rate,
            args.seconds,
            ms(0.5),
            ms(0.9),
            ms(0.99),
            ms(0.999),
            hist.max() as f64 / 1000.0,
            received,
            received as f64 / elapsed,
            lost,
            syncs,
            cpu,
            cpu * 1e6 / received.max(1) as f64,
            after.map(|a| a.rss_kib).unwrap_or(0)
        );
    }
    if lost > 0 {
        bail!("{lost} deliveries lost");
    }
    Ok(())
}
