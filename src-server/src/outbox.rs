//! A connection's bounded send queue, with conflation (DESIGN.md principle 2).
//!
//! The room pushes already-encoded frames; the connection's writer task drains them. Pushing never waits
//! and never allocates per frame beyond the queue slot: a patch's bytes are shared by every outbox. When the
//! queue is full, the queued patches are dropped and replaced by one flag, "send a snapshot", so a slow
//! student gets the latest state instead of a backlog and is never disconnected for being slow. Roster
//! updates for a slow teacher are conflated the same way into "send the whole roster".

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::Notify;

/// One queued frame.
#[derive(Debug, Clone)]
pub enum Item {
    /// A state patch: droppable, replaced by a snapshot when the queue overflows.
    Patch {
        /// Its seq, so the writer can skip patches a snapshot already covers.
        seq: u64,
        /// The encoded frame, shared with every other connection.
        bytes: Utf8Bytes,
        /// When the room accepted it, for the fan-out latency histogram.
        accepted: Instant,
    },
    /// A roster update: droppable, replaced by the full roster when the queue overflows.
    Roster(Utf8Bytes),
    /// Anything else (welcome, ok, error, pong, teacher online): never dropped.
    Msg(Utf8Bytes),
}

/// What the writer takes from the queue in one go.
#[derive(Debug, Default)]
pub struct Batch {
    /// Frames in order.
    pub items: Vec<Item>,
    /// Send a snapshot first: patches were dropped.
    pub need_sync: bool,
    /// Send the whole roster: roster updates were dropped.
    pub need_roster: bool,
    /// Close with this code and reason after sending the items.
    pub close: Option<(u16, String)>,
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<Item>,
    need_sync: bool,
    need_roster: bool,
    close: Option<(u16, String)>,
}

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued.
    Queued,
    /// The queue was full: droppable frames were replaced by a snapshot or roster flag.
    Conflated,
    /// The queue is full of frames that cannot be dropped: the peer sends but does not read.
    Overflow,
    /// The connection is closing; the frame was dropped.
    Closed,
}

/// The bounded queue plus its wake-up.
#[derive(Debug)]
pub struct Outbox {
    queue: Mutex<Queue>,
    notify: Notify,
    capacity: usize,
}

impl Outbox {
    /// An empty outbox holding at most `capacity` frames.
    pub fn new(capacity: usize) -> Outbox {
        Outbox { queue: Mutex::new(Queue::default()), notify: Notify::new(), capacity: capacity.max(1) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // A panic while holding this lock cannot leave the queue inconsistent (every operation is a
        // single push or drain), so a poisoned lock is still usable.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a frame, conflating when full. Never waits.
    pub fn push(&self, item: Item) -> Pushed {
        let result = {
            let mut q = self.lock();
            if q.close.is_some() {
                return Pushed::Closed;
            }
            let mut result = Pushed::Queued;
            if q.items.len() >= self.capacity {
                let before = q.items.len();
                let mut dropped_patch = false;
                let mut dropped_roster = false;
                q.items.retain(|i| match i {
                    Item::Patch { .. } => {
                        dropped_patch = true;
                        false
                    }
                    Item::Roster(_) => {
                        dropped_roster = true;
                        false
                    }
                    Item::Msg(_) => true,
                });
                q.need_sync |= dropped_patch;
                q.need_roster |= dropped_roster;
                result = if q.items.len() < before { Pushed::Conflated } else { Pushed::Overflow };
            }
            match (&item, result) {
                (Item::Patch { .. }, Pushed::Conflated | Pushed::Overflow) => {
                    q.need_sync = true;
                    result = Pushed::Conflated;
                }
                (Item::Roster(_), Pushed::Conflated | Pushed::Overflow) => {
                    q.need_roster = true;
                    result = Pushed::Conflated;
                }
                (Item::Msg(_), Pushed::Overflow) => {}
                _ => q.items.push_back(item),
            }
            result
        };
        if result != Pushed::Overflow {
            self.notify.notify_one();
        }
        result
    }

    /// Asks the writer to send a snapshot (a `resync` answer) at its next turn.
    pub fn request_sync(&self) {
        self.lock().need_sync = true;
        self.notify.notify_one();
    }

    /// Asks the writer to close the connection after what is queued. The first close wins.
    pub fn close(&self, code: u16, reason: impl Into<String>) {
        {
            let mut q = self.lock();
            if q.close.is_none() {
                q.close = Some((code, reason.into()));
            }
        }
        self.notify.notify_one();
    }

    /// True once a close was requested.
    pub fn is_closing(&self) -> bool {
        self.lock().close.is_some()
    }

    /// Takes everything queued.
    pub fn take(&self) -> Batch {
        let mut q = self.lock();
        Batch {
            items: q.items.drain(..).collect(),
            need_sync: std::mem::take(&mut q.need_sync),
            need_roster: std::mem::take(&mut q.need_roster),
            close: q.close.clone(),
        }
    }

    /// Waits until something is queued (or a close requested).
    pub async fn wait(&self) {
        self.notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(seq: u64) -> Item {
        Item::Patch { seq, bytes: Utf8Bytes::from(format!("p{seq}")), accepted: Instant::now() }
    }

    #[test]
    fn a_full_queue_of_patches_becomes_one_snapshot() {
        let o = Outbox::new(4);
        for seq in 1..=4 {
            assert_eq!(o.push(patch(seq)), Pushed::Queued);
        }
        o.push(Item::Msg(Utf8Bytes::from("pong")));
        let b = o.take();
        assert!(b.need_sync);
        assert_eq!(b.items.len(), 1, "only the pong survives: {:?}", b.items);
        assert!(matches!(&b.items[0], Item::Msg(m) if m.as_str() == "pong"));
    }

    #[test]
    fn undroppable_frames_overflow_instead_of_growing() {
        let o = Outbox::new(2);
        o.push(Item::Msg(Utf8Bytes::from("a")));
        o.push(Item::Msg(Utf8Bytes::from("b")));
        assert_eq!(o.push(Item::Msg(Utf8Bytes::from("c"))), Pushed::Overflow);
        assert_eq!(o.take().items.len(), 2);
    }

    #[test]
    fn nothing_is_queued_after_close() {
        let o = Outbox::new(2);
        o.close(4003, "kicked");
        assert_eq!(o.push(patch(1)), Pushed::Closed);
        assert_eq!(o.take().close, Some((4003, "kicked".into())));
    }
}
