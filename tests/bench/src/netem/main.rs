//! `lectern-netem`: one direction of an emulated internet link, for the WAN rig (docs/RELAY.md,
//! "The internet rig"). This kernel has no `netem`, so packets are held in user space: an iptables
//! rule sends the packets that arrive on a veth to NFQUEUE queue `--queue`, and this program gives
//! each its verdict when the link would have delivered it:
//!
//! - a rate (`--rate-mbit`): packets leave one after another, each taking its size at that rate,
//!   behind a buffer of `--buffer-ms` at the rate (tail drop past it, as a home router does);
//! - a delay (`--delay-ms`) with jitter (`--jitter-ms`, uniform within ±), kept in order, as real
//!   paths mostly are: a packet never leaves before the one ahead of it in its flow. With
//!   `--order flow` a flow is one TCP or UDP connection (addresses and ports), so the students a home
//!   cell stands for are as many homes, each on its own path; with `--order link` (the default) the
//!   whole link keeps one order;
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
    /// What jitter keeps in order: the whole link, or each flow (connection) on its own.
    #[arg(long, value_enum, default_value_t = Order::Link)]
    order: Order,
}

/// What jitter keeps in order.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    /// Every packet on the link, one path.
    Link,
    /// Each connection, as many paths of the same shape.
    Flow,
}

/// A packet's flow: its IPv4 addresses and protocol, and for TCP and UDP its ports (for a fragment,
/// its datagram's id). Anything else (and what cannot be read) is flow 0.
fn flow_of(packet: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    if packet.len() < 20 || packet[0] >> 4 != 4 {
        return 0;
    }
    let header = usize::from(packet[0] & 0x0f) * 4;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    packet[9..10].hash(&mut h);
    packet[12..20].hash(&mut h);
    // A fragment (more to come, or an offset) has no ports of its own: its datagram's id keeps all
    // its fragments in one flow.
    let fragment = u16::from_be_bytes([packet[6], packet[7]]) & 0x3fff != 0;
    if fragment {
        packet[4..6].hash(&mut h);
    } else if matches!(packet[9], 6 | 17) && packet.len() >= header + 4 {
        packet[header..header + 4].hash(&mut h);
    }
    h.finish()
}

/// A packet waiting for its time, the earliest first (and, at the same time, the first taken).
struct Held {
    leave: Instant,
    n: u64,
    msg: nfq::Message,
}

impl PartialEq for Held {
    fn eq(&self, other: &Held) -> bool {
        (self.leave, self.n) == (other.leave, other.n)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Held) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    fn cmp(&self, other: &Held) -> std::cmp::Ordering {
        (other.leave, other.n).cmp(&(self.leave, self.n))
    }
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
    let mut held = std::collections::BinaryHeap::new();
    let mut taken = 0u64;
    eprintln!("lectern-netem: queue {} ready", args.queue);
    while !stop.load(Ordering::Relaxed) {
        // Everything that has arrived: scheduled (or dropped) as it comes.
        while let Some(msg) = queue.try_recv()? {
            let now = Instant::now();
            let flow = if args.order == Order::Flow { flow_of(msg.get_payload()) } else { 0 };
            match link.admit(now, msg.get_original_len(), flow) {
                Some(leave) => {
                    taken += 1;
                    held.push(Held { leave, n: taken, msg });
                }
                None => queue.verdict(msg, nfq::Verdict::Drop)?,
            }
        }
        // Everything due: let go, in order.
        let now = Instant::now();
        while held.peek().is_some_and(|h| h.leave <= now) {
            if let Some(Held { leave, msg, .. }) = held.pop() {
                link.released(now.duration_since(leave));
                queue.verdict(msg, nfq::Verdict::Accept)?;
            }
        }
        let wait = held.peek().map(|h| h.leave.saturating_duration_since(Instant::now()));
        queue.wait(wait.unwrap_or(Duration::from_millis(100)))?;
    }
    for Held { msg, .. } in held.into_sorted_vec().into_iter().rev() {
        queue.verdict(msg, nfq::Verdict::Accept)?;
    }
    println!(
        "{}",
        serde_json::json!({"queue": args.queue, "args": format!("{args:?}"), "stats": link.stats()})
    );
    Ok(())
}
