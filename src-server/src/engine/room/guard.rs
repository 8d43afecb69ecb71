//! Guessing the join code (docs/PROTOCOL-ADDITIONS.md, G). Whatever the number of addresses a
//! guesser has, the room answers at most so many wrong codes an hour: one in a thousand of all the
//! codes there are (1,000 for 6 digits), so the chance of guessing the code in an hour stays at most
//! 0.1%. Beyond that, a student joining with a code waits for the teacher (a knock), whether the code
//! is right or not: the guesser learns nothing. Its code is still checked, for the teacher's eyes
//! only (a few wrong ones an hour per address, then no more from that address), so a classmate
//! with the right code shows as such and the teacher lets everyone with it in at one tap. The
//! teacher is told the moment the budget is spent. A new code shuts the old one out but adds no
//! budget: the hour's guesses count against every code it has.

use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::{Inner, Room};
use crate::engine::outbox::{Item, Outbox};
use crate::engine::report::Event;
use crate::protocol::{Role, ServerMsg};

/// The most chance of guessing the code in one hour the room allows.
const ODDS_PER_HOUR: f64 = 0.001;

/// Wrong codes before the teacher is told (a few are typos).
const ALERT_AFTER: u64 = 5;

/// The shortest time between two alerts to the teachers (the budget running out is said at once).
const ALERT_EVERY: Duration = Duration::from_secs(5);

/// Wrong codes an address may have checked while the budget is spent (for the teacher's eyes only):
/// three at once, then one every 20 minutes. Its claims beyond wait unchecked, so a guesser's
/// guesses among the claims the teacher lets in at one tap stay a handful an hour per address.
const HELD_WRONG_PER_HOUR: u32 = 3;

/// The room's budget of wrong codes: a bucket holding a tenth of an hour's budget, refilled with
/// the other nine tenths over the hour, so no hour ever sees more than the budget.
#[derive(Debug)]
pub(super) struct Guard {
    tokens: f64,
    capacity: f64,
    per_second: f64,
    refilled: Instant,
    /// Wrong codes since the code was set.
    pub(super) wrong: u64,
    alerted: Option<Instant>,
    /// The teachers were told the budget is spent (said again after it refills and runs out).
    told_spent: bool,
    /// Wrong held codes per address (see [`HELD_WRONG_PER_HOUR`]).
    held: crate::engine::rate::FailedHellos,
    /// Held codes checked (every so many, addresses that stopped guessing are forgotten).
    held_checks: u64,
}

/// The budget of wrong codes for a code of `digits` digits: the bucket's capacity, and how many it
/// refills a second. A room keeps one of its own, and with a bridge one more is shared in Redis by
/// the teacher's server and its relays (`cloud::guesses`).
pub fn budget(digits: usize) -> (f64, f64) {
    let per_hour = (10f64.powi(i32::try_from(digits.min(12)).unwrap_or(6)) * ODDS_PER_HOUR).max(1.0);
    let capacity = (per_hour / 10.0).max(1.0);
    (capacity, (per_hour - capacity).max(0.0) / 3600.0)
}

impl Guard {
    /// A full budget for a code of `digits` digits.
    pub(super) fn new(digits: usize) -> Guard {
        let (capacity, per_second) = budget(digits);
        Guard {
            tokens: capacity,
            capacity,
            per_second,
            refilled: Instant::now(),
            wrong: 0,
            alerted: None,
            told_spent: false,
            held: crate::engine::rate::FailedHellos::per_hour(HELD_WRONG_PER_HOUR),
            held_checks: 0,
        }
    }

    /// A new code: the count of wrong codes starts again, the budget does not (a guesser's hour is
    /// the same hour whatever the code).
    pub(super) fn new_code(&mut self) {
        self.wrong = 0;
        self.alerted = None;
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.refilled = now;
    }

    /// Whether a code may be checked now.
    pub(super) fn open(&mut self) -> bool {
        self.refill();
        if self.tokens >= 1.0 {
            self.told_spent = false;
        }
        self.tokens >= 1.0
    }

    /// A wrong code was checked: one less in the budget. Whether the teachers should be told now.
    pub(super) fn wrong(&mut self) -> bool {
        self.refill();
        self.tokens = (self.tokens - 1.0).max(0.0);
        self.tell_of_wrong()
    }

    /// A wrong code counted (`wrong`), and whether the teachers should be told now: after a few
    /// (fewer are typos), then at most every [`ALERT_EVERY`]; the budget running out at once.
    fn tell_of_wrong(&mut self) -> bool {
        self.wrong += 1;
        let spent_now = self.tokens < 1.0 && !self.told_spent;
        let due = self.alerted.is_none_or(|at| at.elapsed() >= ALERT_EVERY);
        if spent_now || (self.wrong >= ALERT_AFTER && due) {
            self.told_spent |= self.tokens < 1.0;
            self.alerted = Some(Instant::now());
            return true;
        }
        false
    }
}

impl Room {
    /// Whether a student's code may be checked now; when not, students joining with a code wait for
    /// the teacher (the room's budget of wrong codes is spent).
    pub fn code_checks_open(&self) -> bool {
        self.lock().guard.open()
    }

    /// Checks a student's code against the lesson's, within the room's budget of wrong codes: `None`
    /// when the budget is spent (the student must knock), else whether it is right.
    pub fn check_code(&self, code: &str) -> Option<bool> {
        let mut inner = self.lock();
        if !inner.guard.open() {
            return None;
        }
        if crate::engine::token::constant_time_eq(code.trim(), &inner.lesson.code) {
            return Some(true);
        }
        if inner.guard.wrong() {
            self.tell_teachers(&inner);
        }
        Some(false)
    }

    /// Checks a held code claim's code (the budget is spent, or its address is over its own quota),
    /// for the teacher's eyes only: `None` when its address has had its few wrong ones this hour.
    pub fn check_held_code(&self, code: &str, addr: Option<IpAddr>) -> Option<bool> {
        let mut inner = self.lock();
        if addr.is_some_and(|a| inner.guard.held.is_blocked(a)) {
            return None;
        }
        let right = crate::engine::token::constant_time_eq(code.trim(), &inner.lesson.code);
        inner.guard.held_checks = inner.guard.held_checks.wrapping_add(1);
        if inner.guard.held_checks.is_multiple_of(256) {
            inner.guard.held.prune();
        }
        if right {
            return Some(true);
        }
        if inner.guard.tell_of_wrong() {
            self.tell_teachers(&inner);
        }
        // Past its quota, an address's wrong code is not marked either (the answer is the same).
        let over = addr.is_some_and(|a| inner.guard.held.fail(a));
        (!over).then_some(false)
    }

    fn tell_teachers(&self, inner: &Inner) {
        let msg = ServerMsg::Guessing { wrong: inner.guard.wrong, waiting_room: inner.guard.tokens < 1.0 };
        let bytes = super::encode(&msg);
        for m in inner.members.iter().filter(|m| m.role == Role::Teacher) {
            m.outbox.push_or_close(Item::Msg(bytes.clone()));
        }
    }

    /// The teacher's `new_code`: a new random code of the same length, the count of wrong codes
    /// started again (not the budget), and the lesson record saved (and published to relays).
    /// Students already in stay.
    pub fn new_code(&self, id: Option<u32>, reply: &Outbox) {
        let mut inner = self.lock();
        let digits = inner.lesson.code.len().clamp(4, 12);
        let code: String = (0..digits).map(|_| char::from(b'0' + rand::random_range(0..10u8))).collect();
        inner.lesson.code = code;
        inner.guard.new_code();
        // Those who wait with the old code have no code now: the teacher decides for each.
        if inner.knocks.iter().any(|k| k.has_code()) {
            self.forget_codes(&mut inner);
        }
        self.tell_teachers(&inner);
        self.report(Event::Lesson { lesson: inner.lesson.clone(), state: None });
        drop(inner);
        reply.push(Item::Msg(super::encode(&ServerMsg::Ok { id, seq: None, durable: None })));
    }
}

#[cfg(test)]
mod tests {
    use super::Guard;

    /// However the guesses are spread (or whatever the number of addresses), no hour sees more
    /// wrong codes checked than a thousandth of the codes there are.
    #[tokio::test(start_paused = true)]
    async fn no_hour_checks_more_than_a_thousandth_of_the_codes() {
        let mut guard = Guard::new(6);
        let mut checked = 0;
        let start = tokio::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_secs(3600) {
            while guard.open() {
                guard.wrong();
                checked += 1;
            }
            tokio::time::advance(std::time::Duration::from_millis(500)).await;
        }
        assert!(checked <= 1000, "{checked} wrong codes checked in an hour");
        assert!(checked >= 900, "the budget is used, not wasted: {checked}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_few_typos_tell_nobody_and_a_guesser_is_reported() {
        let mut guard = Guard::new(6);
        assert!(!(0..4).any(|_| guard.wrong()), "four typos are not a guesser");
        assert!(Guard::new(4).wrong(), "a spent budget is said at once");
        assert!(guard.wrong(), "the fifth wrong code tells the teacher");
        assert!(!guard.wrong(), "not again at once");
        tokio::time::advance(std::time::Duration::from_secs(6)).await;
        assert!(guard.wrong(), "and again a few seconds later");
    }
}
