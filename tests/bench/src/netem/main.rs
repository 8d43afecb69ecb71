//! `lectern-netem`: one direction of an emulated internet link, for the WAN rig (docs/RELAY.md,
//! "The internet rig"). This kernel has no `netem`, so packets are held in user space: an iptables
//! rule sends the packets that arrive on a veth to NFQUEUE queue `--queue`, and this program gives
//! each its verdict when the link would have delivered it:
//!
//! - a rate (`--rate-mbit`): packets leave one after another, each taking its size at that rate,
//!   behind a buffer of `--buffer-ms` at the rate (tail drop past it, as a home router does);
//! - a delay (`--delay-ms`) with jitter (`--jitter-ms`, uniform within ±), kept in order, as real
//!   paths mostly are: a packet never leaves before the one ahead of it;
//! - random loss (`--loss`, percent), decided as each packet arrives.
//!
//! It runs in the namespace the packets arrive in (each namespace has its own queues), best under
//! `chrt -f 5`. On SIGINT or SIGTERM it lets every held packet go and prints what it did as one JSON
//! line: packets, lost, dropped at the buffer, and how late verdicts came against their schedule.

mod link;
mod queue;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;

/// One direction of an emulated link.
#[derive(Parser, Debug)]
#[command(name = "lectern-netem", about = "One direction of an emulated internet link, through NFQUEUE")]
struct Args {
    /// The NFQUEUE queue number the iptables rule sends this direction's packets to.
    #[arg(long)]
    queue: u16,
    /// One-way delay, ms.
    #[arg(long, default_value_t = 0.0)]
    delay_ms: f64,
    /// Jitter, ms: each packet's delay is the delay plus or minus up to this much (in order).
    #[arg(long, default_value_t = 0.0)]
    jitter_ms: f64,
    /// Random loss, percent of packets.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Rate, Mbit/s (0: unlimited).
    #[arg(long, default_value_t = 0.0)]
    rate_mbit: f64,
    /// The link's buffer, in ms of its rate: a packet that would wait longer to be sent is dropped.
    #[arg(long, default_value_t = 200.0)]
    buffer_ms: f64,
    /// Seed of the loss and jitter (for a run that can be repeated).
    #[arg(long)]
    seed: Option<u64>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Within what a link can be (and never a number a Duration cannot hold).
    let ms =
        |v: f64| Duration::from_secs_f64(if v.is_finite() { v.clamp(0.0, 600_000.0) / 1000.0 } else { 0.0 });
    let shape = link::Shape {
        delay: ms(args.delay_ms),
        jitter: ms(args.jitter_ms),
        loss: if args.loss.is_finite() { (args.loss / 100.0).clamp(0.0, 1.0) } else { 0.0 },
        bytes_per_sec: if args.rate_mbit.is_finite() {
            args.rate_mbit.clamp(0.0, 1e6) * 1e6 / 8.0
        } else {
            0.0
        },
        buffer: ms(args.buffer_ms),
    };
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;
    let mut queue = queue::Nfq::open(args.queue)?;
    let mut link = link::Link::new(shape, args.seed.unwrap_or_else(rand::random));
    let mut held = std::collections::VecDeque::new();
    eprintln!("lectern-netem: queue {} ready", args.queue);
    while !stop.load(Ordering::Relaxed) {
        // Everything that has arrived: scheduled (or dropped) as it comes.
        while let Some(msg) = queue.try_recv()? {
            let now = Instant::now();
            match link.admit(now, msg.get_original_len()) {
                Some(leave) => held.push_back((leave, msg)),
                None => queue.verdict(msg, nfq::Verdict::Drop)?,
            }
        }
        // Everything due: let go, in order.
        let now = Instant::now();
        while held.front().is_some_and(|(leave, _)| *leave <= now) {
            if let Some((leave, msg)) = held.pop_front() {
                link.released(now.duration_since(leave));
                queue.verdict(msg, nfq::Verdict::Accept)?;
            }
        }
        let wait = held.front().map(|(leave, _)| leave.saturating_duration_since(Instant::now()));
        queue.wait(wait.unwrap_or(Duration::from_millis(100)))?;
    }
    for (_, msg) in held {
        queue.verdict(msg, nfq::Verdict::Accept)?;
    }
    println!(
        "{}",
        serde_json::json!({"queue": args.queue, "args": format!("{args:?}"), "stats": link.stats()})
    );
    Ok(())
}
