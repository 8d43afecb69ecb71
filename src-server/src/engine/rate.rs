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

/// The part of an address one device controls, which limits count as one: the address itself for
/// IPv4 (and IPv4-mapped IPv6), the /64 prefix for IPv6, where one device may pick any of 2^64
/// addresses (so a student cannot escape a limit by rotating them).
pub fn address_bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut o = v6.octets();
                o[8..].fill(0);
                IpAddr::V6(o.into())
            }
        },
    }
}

/// The address bucket a seat or a knock counts against, or `None` for this machine's own
/// connections (127.0.0.1 and ::1: the teacher's console, a local relay), which are not counted per
/// address. Other loopback addresses count as addresses of their own, so tests can be many hosts.
pub fn counted(ip: IpAddr) -> Option<IpAddr> {
    let ip = ip.to_canonical();
    let this_machine = ip == IpAddr::from(std::net::Ipv4Addr::LOCALHOST)
        || ip == IpAddr::from(std::net::Ipv6Addr::LOCALHOST);
    (!this_machine).then(|| address_bucket(ip))
}

/// A connection's frame limiter.
pub fn frame_limiter(per_second: u32, burst: u32) -> DefaultDirectRateLimiter {
    RateLimiter::direct(Quota::per_second(nz(per_second)).allow_burst(nz(burst)))
}

/// Counts events (failed hellos, knocks) per address bucket and blocks a bucket over its quota.
#[derive(Debug)]
pub struct FailedHellos {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    clock: DefaultClock,
}

impl FailedHellos {
    /// Allows `per_minute` failures per address per minute.
    pub fn new(per_minute: u32) -> FailedHellos {
        FailedHellos::with_quota(Quota::per_minute(nz(per_minute)))
    }

    /// Allows `per_hour` failures per address per hour, all at once if they come so.
    pub fn per_hour(per_hour: u32) -> FailedHellos {
        FailedHellos::with_quota(Quota::per_hour(nz(per_hour)).allow_burst(nz(per_hour)))
    }

    fn with_quota(quota: Quota) -> FailedHellos {
        FailedHellos {
            limiter: RateLimiter::keyed(quota),
            blocked: Mutex::new(HashMap::new()),
            clock: DefaultClock::default(),
        }
    }

    /// Whether the address (its bucket, see [`address_bucket`]) is blocked now.
    pub fn is_blocked(&self, ip: IpAddr) -> bool {
        let ip = address_bucket(ip);
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

    /// Counts one more event from `ip` unless it is blocked already: whether it is (now) over its
    /// quota.
    pub fn over(&self, ip: IpAddr) -> bool {
        self.is_blocked(ip) || self.fail(ip)
    }

    /// Records a failure; returns true when the address is now over its quota (and blocked).
    pub fn fail(&self, ip: IpAddr) -> bool {
        let ip = address_bucket(ip);
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

    /// How many addresses it holds (counting, or blocked).
    pub fn len(&self) -> usize {
        self.limiter.len() + self.blocked.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether it holds no address.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
    fn an_ipv6_slash_64_is_one_bucket_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_bucket(a), address_bucket(b));
        assert_ne!(address_bucket(a), address_bucket(c));
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert_eq!(address_bucket(v4), address_bucket(mapped));
        assert_ne!(address_bucket(v4), address_bucket(other));
    }

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

    #[test]
    fn rotating_ipv6_addresses_in_one_slash_64_does_not_escape_the_quota() {
        let f = FailedHellos::new(3);
        let addr = |n: u16| IpAddr::from([0x2001, 0xdb8, 1, 2, n, n, n, n]);
        for n in 0..3 {
            assert!(!f.fail(addr(n)));
        }
        assert!(f.fail(addr(99)), "the fourth guess from the same /64 is over the quota");
        assert!(f.is_blocked(addr(1234)));
    }
}
