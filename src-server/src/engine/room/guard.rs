//! Guessing the join code (docs/PROTOCOL-ADDITIONS.md, G). Whatever the number of addresses a
//! guesser has, the room checks at most so many wrong codes an hour: one in a thousand of all the
//! codes there are (1,000 for 6 digits), so the chance of guessing the code in an hour stays at most
//! 0.1%. Beyond that, a student joining with a code waits for the teacher (a knock), whether the code
//! is right or not: the guesser learns nothing, and a classmate still gets in when the teacher lets
//! them. The teacher is told, and a new code in one tap starts a fresh budget.

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

/// The shortest time between two alerts to the teachers.
const ALERT_EVERY: Duration = Duration::from_secs(5);

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
}

impl Guard {
    /// A full budget for a code of `digits` digits.
    pub(super) fn new(digits: usize) -> Guard {
        let per_hour = (10f64.powi(i32::try_from(digits).unwrap_or(6)) * ODDS_PER_HOUR).max(1.0);
        let capacity = (per_hour / 10.0).max(1.0);
        Guard {
            tokens: capacity,
            capacity,
            per_second: (per_hour - capacity).max(0.0) / 3600.0,
            refilled: Instant::now(),
            wrong: 0,
            alerted: None,
        }
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
        self.tokens >= 1.0
    }

    /// A wrong code was checked: one less in the budget. Whether the teachers should be told now.
    pub(super) fn wrong(&mut self) -> bool {
        self.refill();
        self.tokens = (self.tokens - 1.0).max(0.0);
        self.wrong += 1;
        let due = self.alerted.is_none_or(|at| at.elapsed() >= ALERT_EVERY);
        // A few wrong codes are typos; a spent budget is worth saying at once.
        if (self.wrong >= ALERT_AFTER || self.tokens < 1.0) && due {
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

    fn tell_teachers(&self, inner: &Inner) {
        let msg = ServerMsg::Guessing { wrong: inner.guard.wrong, waiting_room: inner.guard.tokens < 1.0 };
        let bytes = super::encode(&msg);
        for m in inner.members.iter().filter(|m| m.role == Role::Teacher) {
            m.outbox.push_or_close(Item::Msg(bytes.clone()));
        }
    }

    /// The teacher's `new_code`: a new random code of the same length, a fresh budget of wrong
    /// codes, and the lesson record saved (and published to relays). Students already in stay.
    pub fn new_code(&self, id: Option<u32>, reply: &Outbox) {
        let mut inner = self.lock();
        let digits = inner.lesson.code.len().clamp(4, 12);
        let code: String = (0..digits).map(|_| char::from(b'0' + rand::random_range(0..10u8))).collect();
        inner.lesson.code = code;
        inner.guard = Guard::new(digits);
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
