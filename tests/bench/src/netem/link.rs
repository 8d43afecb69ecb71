//! When an emulated link delivers each packet: loss as it arrives, then a rate with a bounded
//! buffer, then a delay with jitter, never out of order within a flow (or, with one flow for all, on
//! the whole link). Pure arithmetic on the times it is given, so it is tested without a network.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What the link does to packets.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// One-way delay.
    pub delay: Duration,
    /// Each packet's delay is `delay` plus or minus up to this much.
    pub jitter: Duration,
    /// The chance a packet is lost, 0 to 1.
    pub loss: f64,
    /// The rate, bytes a second (0: unlimited).
    pub bytes_per_sec: f64,
    /// The most a packet may wait to be sent at the rate before it is dropped.
    pub buffer: Duration,
}

/// One direction of a link, as it schedules packets.
pub struct Link {
    shape: Shape,
    rng: StdRng,
    /// When the link has sent everything it has taken so far.
    sent_by: Option<Instant>,
    /// When each flow's last packet taken leaves (no packet of that flow leaves before it).
    last_leave: HashMap<u64, Instant>,
    stats: Stats,
}

/// Past this many flows held apart, the ones with nothing in flight are forgotten.
const FLOWS_KEPT: usize = 4096;

/// What a link did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Stats {
    /// Packets that arrived.
    pub packets: u64,
    /// Lost at random.
    pub lost: u64,
    /// Dropped because the buffer was full.
    pub overflowed: u64,
    /// Let go.
    pub delivered: u64,
    /// How late verdicts came against their schedule: the mean and the largest, µs.
    pub late_mean_us: f64,
    /// The largest.
    pub late_max_us: u64,
    late_total_us: u64,
}

impl Link {
    /// A link of this shape; `seed` makes its loss and jitter repeatable.
    pub fn new(shape: Shape, seed: u64) -> Link {
        Link {
            shape,
            rng: StdRng::seed_from_u64(seed),
            sent_by: None,
            last_leave: HashMap::new(),
            stats: Stats::default(),
        }
    }

    /// A packet of `len` bytes of flow `flow` arrived at `now`: when it leaves, or `None` when it is
    /// lost or the buffer is full. Packets of one flow leave in the order they came; the rate and
    /// the buffer are the whole link's.
    pub fn admit(&mut self, now: Instant, len: usize, flow: u64) -> Option<Instant> {
        self.stats.packets += 1;
        if self.shape.loss > 0.0 && self.rng.random_bool(self.shape.loss) {
            self.stats.lost += 1;
            return None;
        }
        let mut sent = now;
        if self.shape.bytes_per_sec > 0.0 {
            let start = self.sent_by.map_or(now, |s| s.max(now));
            if start.duration_since(now) > self.shape.buffer {
                self.stats.overflowed += 1;
                return None;
            }
            sent = start + Duration::from_secs_f64(len as f64 / self.shape.bytes_per_sec);
            self.sent_by = Some(sent);
        }
        let jitter = self.shape.jitter.as_secs_f64();
        let delay = (self.shape.delay.as_secs_f64() + self.rng.random_range(-jitter..=jitter)).max(0.0);
        if self.last_leave.len() >= FLOWS_KEPT {
            self.last_leave.retain(|_, t| *t > now);
        }
        let ahead = self.last_leave.entry(flow).or_insert(sent);
        let leave = (sent + Duration::from_secs_f64(delay)).max(*ahead);
        *ahead = leave;
        Some(leave)
    }

    /// A packet was let go `late` after its time.
    pub fn released(&mut self, late: Duration) {
        let us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        self.stats.delivered += 1;
        self.stats.late_total_us = self.stats.late_total_us.saturating_add(us);
        self.stats.late_max_us = self.stats.late_max_us.max(us);
    }

    /// What it did so far.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.late_mean_us = s.late_total_us as f64 / s.delivered.max(1) as f64;
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> Shape {
        Shape {
            delay: Duration::from_millis(60),
            jitter: Duration::ZERO,
            loss: 0.0,
            bytes_per_sec: 0.0,
            buffer: Duration::from_millis(200),
        }
    }

    #[test]
    fn a_packet_leaves_after_the_delay_and_jitter_never_reorders() {
        let t0 = Instant::now();
        let mut link = Link::new(Shape { jitter: Duration::from_millis(15), ..shape() }, 7);
        let mut last = t0;
        for i in 0..1000 {
            let now = t0 + Duration::from_micros(i * 300);
            let leave = link.admit(now, 100, 1).unwrap();
            let held = leave.duration_since(now);
            assert!(held >= Duration::from_millis(45), "{held:?}");
            assert!(leave >= last, "packet {i} overtook the one ahead");
            last = leave;
        }
    }

    #[test]
    fn a_flow_is_held_only_behind_its_own_packets() {
        let t0 = Instant::now();
        let mut link = Link::new(Shape { jitter: Duration::from_millis(15), ..shape() }, 11);
        // Thirty homes' packets arrive together: each home's leave in order, but a home is not held
        // behind the slowest draw of the thirty (which one link for all would do).
        let mut last: HashMap<u64, Instant> = HashMap::new();
        let mut held = Vec::new();
        for i in 0..3000u64 {
            let now = t0 + Duration::from_millis(i / 30 * 250);
            let leave = link.admit(now, 100, i % 30).unwrap();
            assert!(leave >= *last.get(&(i % 30)).unwrap_or(&t0), "packet {i} overtook its flow");
            last.insert(i % 30, leave);
            held.push(leave.duration_since(now));
        }
        held.sort();
        let median = held[held.len() / 2];
        assert!(median < Duration::from_millis(63), "the median packet waits its own draw: {median:?}");
    }

    #[test]
    fn the_rate_spaces_packets_and_a_full_buffer_drops() {
        let t0 = Instant::now();
        // 1 Mbit/s: a 1,250-byte packet takes 10 ms; a 200 ms buffer holds 20 of them.
        let mut link = Link::new(Shape { delay: Duration::ZERO, bytes_per_sec: 125_000.0, ..shape() }, 1);
        let leaves: Vec<_> = (0..30).map(|i| link.admit(t0, 1250, i % 3)).collect();
        assert_eq!(leaves[0], Some(t0 + Duration::from_millis(10)));
        assert_eq!(leaves[1], Some(t0 + Duration::from_millis(20)));
        assert_eq!(leaves.iter().filter(|l| l.is_none()).count(), 9, "{leaves:?}");
        assert_eq!(link.stats().overflowed, 9);
    }

    #[test]
    fn loss_is_near_what_was_asked() {
        let t0 = Instant::now();
        let mut link = Link::new(Shape { loss: 0.05, ..shape() }, 3);
        let lost = (0..100_000).filter(|_| link.admit(t0, 100, 1).is_none()).count();
        assert!((4_500..5_500).contains(&lost), "{lost} of 100,000 lost at 5%");
    }
}
