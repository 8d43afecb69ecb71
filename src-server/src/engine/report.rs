//! What a room reports about itself: every change, join, leave, ack, hand and revocation, and the
//! lesson's identity, for the consumers that keep or forward them (the session log now, the Redis bridge
//! later).
//!
//! A room hands each report to every [`ReportSink`] without waiting: a sink is a bounded channel into
//! its consumer's own task or thread, and `offer` either queues the report or gives it back. The fan-out
//! therefore never waits on a disk or a network (DESIGN.md principle 3). One sink may *confirm*: it gets
//! the patch's [`Done`] and calls it once the patch is durable, which is when the teacher gets its `ok`.

use std::net::IpAddr;
use std::sync::Arc;

pub use super::lesson::LessonRecord;
use crate::protocol::{LessonState, Patch, Role};

/// Called once a patch is durable (`true`), or at once with `false` when it cannot be made durable now.
pub struct Done(Box<dyn FnOnce(bool) + Send>);

impl Done {
    /// Wraps a callback.
    pub fn new(f: impl FnOnce(bool) + Send + 'static) -> Done {
        Done(Box::new(f))
    }
    /// Calls it.
    pub fn call(self, durable: bool) {
        (self.0)(durable)
    }
}

impl std::fmt::Debug for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Done")
    }
}

/// One thing that happened in a room.
#[derive(Debug)]
pub enum Event {
    /// The lesson began, or its record changed (title, end); `state` is its state at `seq` when it begins.
    Lesson {
        /// The record.
        lesson: LessonRecord,
        /// The starting state, for a lesson that begins.
        state: Option<(u64, LessonState)>,
    },
    /// A connection joined.
    Joined {
        /// Server-local connection id.
        conn: u64,
        /// Participant id.
        pid: String,
        /// Role.
        role: Role,
        /// Name.
        name: String,
        /// Device id.
        device: String,
        /// Through a relay.
        remote: bool,
        /// SHA-256 (hex) of the participant's resume token: the token itself is never kept.
        token_hash: String,
        /// Peer address.
        addr: Option<IpAddr>,
        /// Unix ms.
        time: u64,
    },
    /// A connection left.
    Left {
        /// Server-local connection id.
        conn: u64,
        /// Unix ms.
        time: u64,
    },
    /// An accepted patch.
    Patch {
        /// Seq.
        seq: u64,
        /// Unix ms.
        time: u64,
        /// The change.
        patch: Patch,
        /// For the confirming sink: tell the teacher once durable.
        done: Option<Done>,
    },
    /// A student's ack that crossed a significant change.
    Ack {
        /// Participant id.
        pid: String,
        /// Seq on screen.
        seq: u64,
        /// Unix ms.
        time: u64,
    },
    /// A hand raised or lowered.
    Hand {
        /// Participant id.
        pid: String,
        /// Raised?
        up: bool,
        /// Unix ms.
        time: u64,
    },
    /// A participant was kicked.
    Revoked {
        /// Participant id.
        pid: String,
    },
    /// The first teacher connected, or the last one left (relays' students hear of it signed).
    Teacher {
        /// Whether a teacher is connected now.
        online: bool,
    },
}

impl Event {
    /// A copy for a sink that does not confirm (it never gets the `Done`).
    fn share(&self) -> Event {
        match self {
            Event::Lesson { lesson, state } => Event::Lesson { lesson: lesson.clone(), state: state.clone() },
            Event::Joined { conn, pid, role, name, device, remote, token_hash, addr, time } => {
                Event::Joined {
                    conn: *conn,
                    pid: pid.clone(),
                    role: *role,
                    name: name.clone(),
                    device: device.clone(),
                    remote: *remote,
                    token_hash: token_hash.clone(),
                    addr: *addr,
                    time: *time,
                }
            }
            Event::Left { conn, time } => Event::Left { conn: *conn, time: *time },
            Event::Patch { seq, time, patch, .. } => {
                Event::Patch { seq: *seq, time: *time, patch: patch.clone(), done: None }
            }
            Event::Ack { pid, seq, time } => Event::Ack { pid: pid.clone(), seq: *seq, time: *time },
            Event::Hand { pid, up, time } => Event::Hand { pid: pid.clone(), up: *up, time: *time },
            Event::Revoked { pid } => Event::Revoked { pid: pid.clone() },
            Event::Teacher { online } => Event::Teacher { online: *online },
        }
    }
}

/// A report: which room, and what happened in it.
#[derive(Debug)]
pub struct Report {
    /// Room id.
    pub room: Arc<str>,
    /// What happened.
    pub event: Event,
}

/// A consumer's end of a bounded channel of reports. `offer` never blocks: it queues the report, or
/// gives it back when the consumer is too far behind or gone.
pub trait ReportSink: Send + Sync {
    /// Queues a report, or returns it.
    // Giving the report back by value costs a copy, not an allocation, on the fan-out path.
    #[allow(clippy::result_large_err)]
    fn offer(&self, report: Report) -> Result<(), Report>;
    /// Whether this sink calls a patch's [`Done`] once it is durable.
    fn confirms(&self) -> bool;
}

/// Hands a room's reports to every sink.
#[derive(Clone, Default)]
pub struct Reporter {
    sinks: Arc<[Arc<dyn ReportSink>]>,
    /// The sink that gets a patch's `Done`: the confirming one, else the last.
    owner: usize,
    confirms: bool,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter").field("sinks", &self.sinks.len()).finish()
    }
}

impl Reporter {
    /// Reports to these sinks; at most one of them should confirm.
    pub fn new(sinks: Vec<Arc<dyn ReportSink>>) -> Reporter {
        let confirming = sinks.iter().position(|s| s.confirms());
        let owner = confirming.unwrap_or(sinks.len().saturating_sub(1));
        Reporter { sinks: sinks.into(), owner, confirms: confirming.is_some() }
    }

    /// Whether some sink confirms durability (else a room answers `ok` at once).
    pub fn confirms(&self) -> bool {
        self.confirms
    }

    /// Offers an event to every sink, without waiting. The confirming sink gets the `Done`; a `Done`
    /// that no sink takes is called with `false` (not durable).
    pub fn emit(&self, room: &Arc<str>, event: Event) {
        let owner = self.owner;
        for (i, sink) in self.sinks.iter().enumerate() {
            if i != owner {
                // An observer that cannot keep up loses this report; the lesson does not wait for it.
                let _ = sink.offer(Report { room: room.clone(), event: event.share() });
            }
        }
        let refused = match self.sinks.get(owner) {
            Some(sink) => sink.offer(Report { room: room.clone(), event }).err().map(|r| r.event),
            None => Some(event),
        };
        if let Some(Event::Patch { done: Some(done), .. }) = refused {
            done.call(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    struct Bounded {
        queue: Mutex<Vec<Report>>,
        capacity: usize,
        confirms: bool,
    }

    impl ReportSink for Bounded {
        fn offer(&self, report: Report) -> Result<(), Report> {
            let mut q = self.queue.lock().unwrap();
            if q.len() >= self.capacity {
                return Err(report);
            }
            q.push(report);
            Ok(())
        }
        fn confirms(&self) -> bool {
            self.confirms
        }
    }

    fn patch(done: Option<Done>) -> Event {
        Event::Patch { seq: 1, time: 0, patch: Patch::default(), done }
    }

    #[test]
    fn the_confirming_sink_gets_the_done_and_observers_get_copies() {
        let log = Arc::new(Bounded { queue: Mutex::new(vec![]), capacity: 8, confirms: true });
        let bridge = Arc::new(Bounded { queue: Mutex::new(vec![]), capacity: 8, confirms: false });
        let r = Reporter::new(vec![bridge.clone(), log.clone()]);
        assert!(r.confirms());
        r.emit(&Arc::from("r1"), patch(Some(Done::new(|_| {}))));
        let with_done =
            |s: &Bounded| matches!(s.queue.lock().unwrap()[0].event, Event::Patch { done: Some(_), .. });
        assert!(with_done(&log) && !with_done(&bridge));
    }

    #[test]
    fn a_full_sink_never_blocks_and_the_teacher_hears_not_durable() {
        let log = Arc::new(Bounded { queue: Mutex::new(vec![]), capacity: 0, confirms: true });
        let r = Reporter::new(vec![log]);
        let durable = Arc::new(AtomicBool::new(true));
        let d = durable.clone();
        r.emit(&Arc::from("r1"), patch(Some(Done::new(move |ok| d.store(ok, Ordering::SeqCst)))));
        assert!(!durable.load(Ordering::SeqCst));
    }
}
