//! How the bridge and the relay wait before trying Redis again.

use std::time::Duration;

/// How long to wait before connecting to Redis again: doubling from 125 ms to 1 s, with jitter (a
/// connection attempt costs Redis little, and remote students wait for the next one that works).
pub fn retry_after(attempt: u32) -> Duration {
    let base = Duration::from_millis(125).saturating_mul(1 << attempt.min(3)).min(Duration::from_secs(1));
    base.mul_f64(rand::random_range(0.5..=1.0))
}
