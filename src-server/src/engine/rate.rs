//! Rate limits: frames per connection, and failed hellos per address (§10).
//!
//! Both use `governor` (GCRA). The failed-hello limit blocks an address once it has failed more than the
//! quota within a minute, before its code is even checked, so guessing join codes gets nowhere.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

/// A connection's frame limiter.
pub fn frame_limiter(per_second: u32, burst: u32) -> DefaultDirectRateLimiter {
    RateLimiter::direct(Quota::per_second(nz(per_second)).allow_burst(nz(burst)))
}

/// Tracks failed hellos per address.
#[derive(Debug)]
pub struct FailedHellos {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    clock: DefaultClock,
}

impl FailedHellos {
    /// Allows `per_minute` failures per address per minute.
    pub fn new(per_minute: u32) -> FailedHellos {
        FailedHellos {
            limiter: RateLimiter::keyed(Quota::per_minute(nz(per_minute))),
            blocked: Mutex::new(HashMap::new()),
            clock: DefaultClock::default(),
        }
    }

    /// Whether the address is blocked now.
    pub fn is_blocked(&self, ip: IpAddr) -> bool {
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        match blocked.get(&ip) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                blocked.remove(&ip);
                false
            }
            None => false,
        }
    }

    /// Records a failure; returns true when the address is now over its quota (and blocked).
    pub fn fail(&self, ip: IpAddr) -> bool {
        match self.limiter.check_key(&ip) {
            Ok(()) => false,
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now()).max(Duration::from_secs(1));
                let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
                blocked.insert(ip, Instant::now() + wait);
                true
            }
        }
    }

    /// Forgets addresses that have not failed recently, so memory stays bounded.
    pub fn prune(&self) {
        self.limiter.retain_recent();
        let now = Instant::now();
        self.blocked.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, until| *until > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_its_quota_and_others_are_not() {
        let f = FailedHellos::new(3);
        let a = IpAddr::from([10, 0, 0, 1]);
        assert!(!f.fail(a) && !f.fail(a) && !f.fail(a));
        assert!(!f.is_blocked(a));
        assert!(f.fail(a));
        assert!(f.is_blocked(a));
        assert!(!f.is_blocked(IpAddr::from([10, 0, 0, 2])));
    }
}
