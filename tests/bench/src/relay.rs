//! The relay benchmark (docs/RELAY.md): one teacher on `lectern serve --redis`, local students on it,
//! and remote students on `lectern relay`s, all in one run, so the relay hop's cost is read against
//! the local students' latency from the same changes. Each change is a pointer move whose `x` names
//! it; the latency is from just before the teacher sends it to when a student has read (and, behind a
//! relay with `--verify`, checked) it. Also measures what signing and checking cost per change.
//!
//!   lectern-bench-relay --server READY --data-dir DIR --relay READY --relay READY [--relay-pid P ...]
//!       [--local 30] [--remote 30] [--rate 10] [--seconds 20] [--verify] [--label NAME]
//!
//! `tests/bench/relay.sh` starts Redis, the server and the relays, and runs the scenarios.

mod netns;
mod procfs;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use lectern::client::RelayCheck;
use lectern::protocol::sign::{Signer, Verifier};
use lectern::protocol::signed::Kind;
use lectern::protocol::{LessonState, Patch, Pos, ServerMsg};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::procfs::{ProcStat, proc_stat};

#[derive(Parser, Debug)]
struct Args {
    /// The teacher's server's ready line (`lectern serve --json`).
    #[arg(long)]
    server: String,
    /// The teacher's server's data directory (its public key is read from it).
    #[arg(long)]
    data_dir: PathBuf,
    /// A relay's ready line (`lectern relay --json`); remote students are spread over them.
    #[arg(long = "relay")]
    relays: Vec<String>,
    /// The relays' pids, to read their CPU and memory.
    #[arg(long = "relay-pid")]
    relay_pids: Vec<u32>,
    /// The teacher's server's pid.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Students on the teacher's server.
    #[arg(long, default_value_t = 30)]
    local: usize,
    /// Students on the relays.
    #[arg(long, default_value_t = 30)]
    remote: usize,
    /// Changes a second.
    #[arg(long, default_value_t = 10)]
    rate: u32,
    /// Seconds of changes.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Remote students check every signature, as Lectern's clients do.
    #[arg(long)]
    verify: bool,
    /// A name for this run in the report.
    #[arg(long, default_value = "run")]
    label: String,
    /// Make the teacher's connections from inside this network namespace (`ip netns`), the school
    /// of the internet rig (tests/wan/rig.sh), while the students connect from this process's own
    /// (a home): one process, one clock, two places.
    #[arg(long)]
    teacher_netns: Option<String>,
    /// Remote students open a second path (PROTOCOL-ADDITIONS N) and take each change from
    /// whichever connection brings it first.
    #[arg(long)]
    second_path: bool,
}

/// Latencies of one group of students, in µs, how many deliveries arrived, and the bytes of text
/// frames they read (both paths').
struct Group {
    histogram: Histogram<u64>,
    received: u64,
    bytes: u64,
}

/// What one student read: its latencies, the changes it took, and the bytes of every text frame.
type Read = (Histogram<u64>, u64, u64);

/// A second path being opened.
type Opening = std::pin::Pin<Box<dyn Future<Output = anyhow::Result<Socket>> + Send>>;

/// What a student's reader woke up for.
enum Woke {
    Stop,
    Frame(Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
    Second(Box<anyhow::Result<Socket>>),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server: Value =
        serde_json::from_str(&args.server).context("--server must be lectern serve's ready line")?;
    let field = |v: &Value, k: &str| {
        v[k].as_str().map(str::to_string).with_context(|| format!("ready line lacks {k}"))
    };
    let (ws, fp, code, key, room) = (
        field(&server, "ws")?,
        field(&server, "fingerprint")?,
        field(&server, "code")?,
        field(&server, "teacher_key")?,
        field(&server, "room")?,
    );
    let pk = lectern::files::load_signer(&args.data_dir)?.public();
    let relays: Vec<(String, String)> = args
        .relays
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_str(r)?;
            Ok((format!("wss://{}/v1/ws", field(&v, "addr")?), field(&v, "fingerprint")?))
        })
        .collect::<anyhow::Result<_>>()?;
    let total = (u64::from(args.rate) * args.seconds) as usize;
    let t0 = Instant::now();
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..total).map(|_| AtomicU64::new(0)).collect());

    // The teacher first, then the students, 64 connecting at a time.
    let netns = args.teacher_netns.as_deref();
    let (mut teacher, _) = connect_from(
        netns,
        &ws,
        &fp,
        json!({"t":"hello","v":1,"role":"teacher","key":key,"device":"bench-teacher"}),
    )
    .await?;
    let gate = Arc::new(tokio::sync::Semaphore::new(64));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // This run's remote students, as the teacher's roster names them (`r-` and the relay's id): a
    // run after another on the same servers must not count the earlier run's students, whom the
    // roster may show going offline again.
    let ours = Arc::new(std::sync::Mutex::new(std::collections::HashSet::<String>::new()));
    let mut students = Vec::new();
    for n in 0..args.local + args.remote {
        let remote = n >= args.local;
        let (url, pin) = if remote { relays[n % relays.len()].clone() } else { (ws.clone(), fp.clone()) };
        let mut hello = json!({"t":"hello","v":1,"role":"student","code":code,"name":format!("S{n}"),"device":format!("bench-student-{n:05}")});
        if remote {
            hello["room"] = json!(room);
        }
        let check = (remote && args.verify).then(|| RelayCheck::new(&pk, &room)).flatten();
        let (gate, sent, stop, ours) = (gate.clone(), sent.clone(), stop_rx.clone(), ours.clone());
        let two = remote && args.second_path;
        students.push((
            remote,
            tokio::spawn(async move {
                let device = hello["device"].clone();
                let (socket, welcome) = {
                    let _permit = gate.acquire().await;
                    connect(&url, &pin, hello).await?
                };
                if remote && let Some(id) = serde_json::from_str::<Value>(&welcome)?["you"]["id"].as_str() {
                    ours.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(format!("r-{id}"));
                }
                // The second path is opened while the first is read, as the clients do: a student
                // is never deaf while its second path's handshake crosses a lossy link, and one that
                // cannot be opened leaves the first alone.
                let second: Option<Opening> = if two {
                    let token = serde_json::from_str::<Value>(&welcome)?["token"].clone();
                    let hello = json!({"t":"hello","v":1,"role":"student","resume":token,"device":device,"second":true});
                    Some(Box::pin(async move { Ok(connect(&url, &pin, hello).await?.0) }))
                } else {
                    None
                };
                student(socket, second, welcome, stop, check, sent, t0, total).await
            }),
        ));
    }
    // Every student is in once its welcome came (the tasks read on); wait a moment for the last.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before: Vec<ProcStat> =
        pids(&args).iter().map(|p| proc_stat(&p.to_string()).unwrap_or_default()).collect();
    let started = Instant::now();
    // The teacher's roster while changes flow: every remote student it shows offline (issue 24: none
    // may be while packets still flow, even in the poor cell).
    let offline = Arc::new(std::sync::Mutex::new(std::collections::HashSet::<String>::new()));
    let drain = tokio::spawn({
        let offline = offline.clone();
        async move {
            while let Some(Ok(msg)) = teacher.next().await {
                if let Message::Text(text) = msg {
                    let ids = shown_offline(&text);
                    offline.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(ids);
                }
            }
        }
    });
    let mut sink = connect_sink(netns, &ws, &fp, &key).await?;
    for k in 0..total {
        tokio::time::sleep_until((started + Duration::from_secs_f64(k as f64 / f64::from(args.rate))).into())
            .await;
        let x = (k + 1) as f64 / 1_000_000.0;
        sent[k].store(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
        sink.send(Message::text(json!({"t":"set","patch":{"pos":{"x":x,"y":0.5}}}).to_string())).await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let after: Vec<ProcStat> =
        pids(&args).iter().map(|p| proc_stat(&p.to_string()).unwrap_or_default()).collect();
    // Stopped before the students leave, so their leaving is not counted. A teacher's connection that
    // ended before this saw only part of the run: its count is not reported.
    let teacher_stayed = !drain.is_finished();
    drain.abort();
    let _ = drain.await;
    let offline = offline.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let ours = ours.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let others = offline.iter().filter(|id| !ours.contains(*id)).count();
    let offline = teacher_stayed.then_some(offline.len() - others);
    let _ = stop_tx.send(true);

    let mut local = Group { histogram: Histogram::new(3)?, received: 0, bytes: 0 };
    let mut remote = Group { histogram: Histogram::new(3)?, received: 0, bytes: 0 };
    for (is_remote, task) in students {
        // Told to stop, a student hands over what it read (a student that failed counts nothing,
        // and says why).
        let (h, n, bytes) = match task.await {
            Ok(Ok(read)) => read,
            Ok(Err(e)) => {
                eprintln!("a student failed: {e:#}");
                continue;
            }
            Err(e) => {
                eprintln!("a student's task failed: {e}");
                continue;
            }
        };
        let g = if is_remote { &mut remote } else { &mut local };
        g.histogram.add(&h)?;
        g.received += n;
        g.bytes += bytes;
    }
    let (sign_us, verify_us) = signing_cost();
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let procs: Vec<Value> = pids(&args)
        .iter()
        .zip(before.iter().zip(&after))
        .map(|(pid, (b, a))| {
            json!({"pid": pid, "cpu_percent": (a.cpu_seconds - b.cpu_seconds) / elapsed * 100.0, "rss_mib": a.rss_kib as f64 / 1024.0})
        })
        .collect();
    let line = json!({
        "label": args.label, "rate": args.rate, "seconds": args.seconds, "verify": args.verify,
        "local": {"students": args.local, "expected": total * args.local, "received": local.received,
                  "p50_ms": ms(&local.histogram, 0.5), "p99_ms": ms(&local.histogram, 0.99), "max_ms": ms(&local.histogram, 1.0)},
        "remote": {"students": args.remote, "expected": total * args.remote, "received": remote.received,
                   "p50_ms": ms(&remote.histogram, 0.5), "p99_ms": ms(&remote.histogram, 0.99), "max_ms": ms(&remote.histogram, 1.0),
                   "second_path": args.second_path,
                   "bytes_per_change": remote.bytes as f64 / remote.received.max(1) as f64},
        "processes": procs, "sign_us": sign_us, "verify_us": verify_us, "shown_offline": offline,
        "shown_offline_of_earlier_runs": others,
    });
    println!("{line}");
    Ok(())
}

/// The remote students a teacher's frame shows going offline (a `roster` change with
/// `"online":false`), by id.
fn shown_offline(frame: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<Value>(frame) else { return Vec::new() };
    if v["t"] != "roster" {
        return Vec::new();
    }
    let changes = v["changes"].as_array().map(Vec::as_slice).unwrap_or_default();
    changes
        .iter()
        .filter(|c| c["online"] == false && c["remote"] == true)
        .map(|c| c["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The processes measured: the server, then the relays.
fn pids(args: &Args) -> Vec<u32> {
    args.server_pid.into_iter().chain(args.relay_pids.iter().copied()).collect()
}

type Socket = lectern::client::Socket;

/// Connects, says hello, and waits for the welcome (returned with the socket: it holds the state a
/// student checks the next changes from).
async fn connect(url: &str, fp: &str, hello: Value) -> anyhow::Result<(Socket, String)> {
    connect_from(None, url, fp, hello).await
}

/// [`connect`], from inside network namespace `netns` when one is named.
async fn connect_from(
    netns: Option<&str>,
    url: &str,
    fp: &str,
    hello: Value,
) -> anyhow::Result<(Socket, String)> {
    let mut s = crate::netns::connect(netns, url, fp).await?;
    s.send(Message::text(hello.to_string())).await?;
    while let Some(m) = s.next().await {
        if let Message::Text(t) = m? {
            let v: Value = serde_json::from_str(&t)?;
            match v["t"].as_str() {
                Some("welcome") => return Ok((s, t.to_string())),
                Some("error") => anyhow::bail!("refused: {v}"),
                _ => {}
            }
        }
    }
    anyhow::bail!("closed before the welcome")
}

/// A second teacher connection that only sends (the first one's reader drains replies).
async fn connect_sink(netns: Option<&str>, url: &str, fp: &str, key: &str) -> anyhow::Result<Socket> {
    let hello = json!({"t":"hello","v":1,"role":"teacher","key":key,"device":"bench-teacher-2"});
    Ok(connect_from(netns, url, fp, hello).await?.0)
}

/// The next frame of either path (`None` once a path has closed: it is then left alone). A second
/// path that fails is closed, as the clients do: the student reads on from its first.
async fn next_of(
    path: &mut Option<Socket>,
    second: bool,
) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
    match path {
        Some(s) => {
            let next = s.next().await;
            if next.is_none() || (second && matches!(next, Some(Err(_)))) {
                *path = None;
                return None;
            }
            next
        }
        None => std::future::pending().await,
    }
}

/// Reads a student's frames, from its one or two paths, until aborted: the latency of every
/// pointer move, in µs. A frame whose seq the student has already is a copy from the slower path,
/// and is dropped unread, as the project's clients do.
#[allow(clippy::too_many_arguments)]
async fn student(
    first: Socket,
    mut opening: Option<Opening>,
    welcome: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
    mut check: Option<RelayCheck>,
    sent: Arc<Vec<AtomicU64>>,
    t0: Instant,
    total: usize,
) -> anyhow::Result<Read> {
    let mut histogram = Histogram::<u64>::new(3)?;
    let mut received = 0u64;
    let mut bytes = welcome.len() as u64;
    let mut seq = 0u64;
    let mut state: Option<LessonState> = None;
    let two = opening.is_some();
    let mut paths = [Some(first), None];
    let mut welcome = Some(welcome);
    loop {
        let text = match welcome.take() {
            Some(w) => w,
            None => {
                let [a, b] = &mut paths;
                let woke = tokio::select! {
                    _ = stop.changed() => Woke::Stop,
                    m = next_of(a, false) => Woke::Frame(m),
                    m = next_of(b, true) => Woke::Frame(m),
                    s = async { opening.as_mut().expect("guarded").await }, if opening.is_some() => Woke::Second(Box::new(s)),
                };
                let next = match woke {
                    Woke::Stop => break,
                    Woke::Second(opened) => {
                        opening = None;
                        paths[1] = (*opened).ok();
                        continue;
                    }
                    Woke::Frame(next) => next,
                };
                match next {
                    None if paths.iter().all(Option::is_none) => break,
                    None => continue,
                    Some(m) => match m? {
                        Message::Text(t) => {
                            bytes += t.len() as u64;
                            t.to_string()
                        }
                        _ => continue,
                    },
                }
            }
        };
        let Ok(msg) = serde_json::from_str::<ServerMsg>(&text) else { continue };
        // With two paths a patch past the next one is the faster path running ahead of a snapshot
        // the student does not have (the second path's welcome, read when it opened): it is left
        // for the first path, which brings every change in order, as the clients leave it.
        let copy = match &msg {
            ServerMsg::Patch { seq: s, .. } => state.is_some() && (*s <= seq || (two && *s > seq + 1)),
            ServerMsg::Sync { seq: s, .. } => *s <= seq && state.is_some(),
            ServerMsg::Welcome { .. } => state.is_some(),
            _ => false,
        };
        if copy {
            continue;
        }
        if let Some(c) = check.as_mut()
            && let Err(reason) = c.check(&msg, seq, state.as_ref(), lectern::now_ms())
        {
            anyhow::bail!("{reason}");
        }
        match msg {
            ServerMsg::Welcome { seq: s, state: st, .. } | ServerMsg::Sync { seq: s, state: st, .. } => {
                seq = s;
                state = Some(st);
            }
            ServerMsg::Patch { seq: s, patch, .. } => {
                if let Some(st) = state.as_mut() {
                    st.apply(&patch);
                }
                seq = s;
                if let Some(Some(Pos { x, .. })) = patch.pos {
                    let k = (x * 1_000_000.0).round() as usize;
                    if (1..=total).contains(&k) {
                        let at = sent[k - 1].load(Ordering::Relaxed);
                        let now = t0.elapsed().as_nanos() as u64;
                        histogram.record(now.saturating_sub(at) / 1000)?;
                        received += 1;
                    }
                }
            }
            _ => {}
        }
    }
    Ok((histogram, received, bytes))
}

/// Microseconds to sign a change, and to check one, on this machine (2,000 of each).
fn signing_cost() -> (f64, f64) {
    let signer = Signer::from_secret([7; 32]);
    let verifier = Verifier::new(&signer.public(), "room").unwrap_or_else(|| unreachable!());
    let mut state = LessonState::new(None);
    state.apply(&Patch { page: Some(12), pos: Some(Some(Pos { x: 0.25, y: 0.5 })), ..Patch::default() });
    let n = 2000;
    let t = Instant::now();
    let sigs: Vec<_> = (0..n).map(|i| signer.sign(Kind::State, "room", 1, i, 0, &state)).collect();
    let sign = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let t = Instant::now();
    let ok =
        sigs.iter().enumerate().filter(|(i, s)| verifier.check(Kind::State, *i as u64, 0, &state, s)).count();
    let verify = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    assert_eq!(ok, n as usize);
    (sign, verify)
}
