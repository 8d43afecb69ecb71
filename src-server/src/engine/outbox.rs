//! A connection's bounded send queue, with conflation (DESIGN.md principle 2).
//!
//! The room pushes already-encoded frames (UTF-8 JSON text, as `Bytes` so that every outbox shares
//! one copy; the transport makes them a WebSocket text message or an SSE event); the connection's
//! writer task drains them. Pushing never waits
//! and never allocates per frame beyond the queue slot: a patch's bytes are shared by every outbox. When the
//! queue is full, the queued patches are dropped and replaced by one flag, "send a snapshot", so a slow
//! student gets the latest state instead of a backlog and is never disconnected for being slow. Roster
//! updates for a slow teacher are conflated the same way into "send the whole roster".

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::Notify;

/// One queued frame.
#[derive(Debug, Clone)]
pub enum Item {
    /// A state patch: droppable, replaced by a [`Item::Sync`] when the queue overflows.
    Patch {
        /// Its seq, so the writer can skip patches a snapshot already covers.
        seq: u64,
        /// The encoded frame, shared with every other connection.
        bytes: Bytes,
        /// When the room accepted it, for the fan-out latency histogram.
        accepted: Instant,
    },
    /// A roster update: droppable, replaced by a [`Item::FullRoster`] when the queue overflows.
    Roster(Bytes),
    /// Anything else (welcome, ok, error, pong, teacher online): never dropped.
    Msg(Bytes),
    /// Send a snapshot of the state as it is when the writer gets here, in place of conflated patches:
    /// to a client that merges them, only the pages whose marks it lacks (PROTOCOL-ADDITIONS O).
    Sync,
    /// Send the whole state as it is when the writer gets here (the answer to `resync`).
    Resync,
    /// Send the whole roster (conflated roster updates).
    FullRoster,
    /// Send the list of students waiting to be let in, as it is when the writer gets here.
    Knocks,
}

impl Item {
    fn is_patch(&self) -> bool {
        matches!(self, Item::Patch { .. })
    }
    fn is_roster(&self) -> bool {
        matches!(self, Item::Roster(_))
    }
}

/// What the writer takes from the queue in one go.
#[derive(Debug, Default)]
pub struct Batch {
    /// Frames in order.
    pub items: Vec<Item>,
    /// Close with this code and reason after sending the items.
    pub close: Option<(u16, String)>,
    /// The reader has stopped: the writer ends without a close frame of its own.
    pub stop: bool,
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<Item>,
    close: Option<(u16, String)>,
    stop: bool,
}

impl Queue {
    /// Replaces every item of one kind by a single marker, kept where the first of them was (so a
    /// snapshot never overtakes a `welcome` queued before the patches it replaces). Returns whether
    /// anything was dropped.
    fn conflate(&mut self, kind: fn(&Item) -> bool, marker: Item, is_marker: fn(&Item) -> bool) -> bool {
        let Some(first) = self.items.iter().position(kind) else { return false };
        let has_marker = self.items.iter().any(is_marker);
        self.items.retain(|item| !kind(item));
        if !has_marker {
            self.items.insert(first.min(self.items.len()), marker);
        }
        true
    }
}

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued.
    Queued,
    /// The queue was full: droppable frames were replaced by a snapshot or roster marker.
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
            if q.items.len() < self.capacity {
                q.items.push_back(item);
                Pushed::Queued
            } else {
                let patches = q.conflate(Item::is_patch, Item::Sync, |i| matches!(i, Item::Sync));
                let rosters =
                    q.conflate(Item::is_roster, Item::FullRoster, |i| matches!(i, Item::FullRoster));
                match item {
                    // The new patch is covered by the snapshot marker (added now if there was none).
                    Item::Patch { .. } => {
                        if !q.items.iter().any(|i| matches!(i, Item::Sync)) {
                            q.items.push_back(Item::Sync);
                        }
                        Pushed::Conflated
                    }
                    Item::Roster(_) => {
                        if !q.items.iter().any(|i| matches!(i, Item::FullRoster)) {
                            q.items.push_back(Item::FullRoster);
                        }
                        Pushed::Conflated
                    }
                    item if patches || rosters || q.items.len() < self.capacity => {
                        q.items.push_back(item);
                        Pushed::Conflated
                    }
                    _ => Pushed::Overflow,
                }
            }
        };
        if result != Pushed::Overflow {
            self.notify.notify_one();
        }
        result
    }

    /// Queues a frame that must not be dropped; a peer that lets such frames pile up (it sends but never
    /// reads) is closed with 4029.
    pub fn push_or_close(&self, item: Item) {
        if self.push(item) == Pushed::Overflow {
            self.close(crate::protocol::close::RATE_LIMITED, "sending faster than reading replies");
        }
    }

    /// Queues a marker the writer renders from current state ([`Item::Knocks`]), unless one is
    /// already waiting: a marker is never dropped and never piles up.
    pub fn push_marker(&self, marker: Item) {
        {
            let mut q = self.lock();
            if q.close.is_some()
                || q.items.iter().any(|i| std::mem::discriminant(i) == std::mem::discriminant(&marker))
            {
                return;
            }
            q.items.push_back(marker);
        }
        self.notify.notify_one();
    }

    /// Asks the writer to send the whole state (a `resync` answer) after what is queued. A snapshot
    /// marker already waiting becomes the whole state, where it is: one snapshot answers both, and
    /// the client is not sent the state twice.
    pub fn request_sync(&self) {
        {
            let mut q = self.lock();
            if let Some(marker) = q.items.iter_mut().find(|i| matches!(i, Item::Sync)) {
                *marker = Item::Resync;
            } else if !matches!(q.items.back(), Some(Item::Resync)) {
                q.items.push_back(Item::Resync);
            }
        }
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

    /// Tells the writer to end (the connection is gone). Cheaper for the writer to watch than a
    /// cancellation token, which takes a lock on every poll.
    pub fn stop(&self) {
        self.lock().stop = true;
        self.notify.notify_one();
    }

    /// True once a close was requested.
    pub fn is_closing(&self) -> bool {
        self.lock().close.is_some()
    }

    /// Takes everything queued.
    pub fn take(&self) -> Batch {
        let mut batch = Batch::default();
        self.take_into(&mut batch);
        batch
    }

    /// Takes everything queued into `batch` (cleared first), reusing its allocation.
    pub fn take_into(&self, batch: &mut Batch) {
        batch.items.clear();
        let mut q = self.lock();
        batch.items.extend(q.items.drain(..));
        batch.close.clone_from(&q.close);
        batch.stop = q.stop;
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
        Item::Patch { seq, bytes: Bytes::from(format!("p{seq}")), accepted: Instant::now() }
    }

    fn kinds(b: &Batch) -> Vec<String> {
        b.items
            .iter()
            .map(|i| match i {
                Item::Patch { seq, .. } => format!("p{seq}"),
                Item::Msg(m) | Item::Roster(m) => String::from_utf8_lossy(m).into_owned(),
                Item::Sync => "SYNC".into(),
                Item::Resync => "RESYNC".into(),
                Item::FullRoster => "ROSTER".into(),
                Item::Knocks => "KNOCKS".into(),
            })
            .collect()
    }

    #[test]
    fn a_full_queue_of_patches_becomes_one_snapshot_where_the_patches_were() {
        let o = Outbox::new(4);
        o.push(Item::Msg(Bytes::from("welcome")));
        for seq in 1..=3 {
            assert_eq!(o.push(patch(seq)), Pushed::Queued);
        }
        assert_eq!(o.push(patch(4)), Pushed::Conflated);
        o.push(Item::Msg(Bytes::from("pong")));
        o.push(patch(5));
        assert_eq!(
            kinds(&o.take()),
            ["welcome", "SYNC", "pong", "p5"],
            "the snapshot never overtakes the welcome"
        );
    }

    #[test]
    fn undroppable_frames_overflow_instead_of_growing() {
        let o = Outbox::new(2);
        o.push(Item::Msg(Bytes::from("a")));
        o.push(Item::Msg(Bytes::from("b")));
        assert_eq!(o.push(Item::Msg(Bytes::from("c"))), Pushed::Overflow);
        assert_eq!(o.push(patch(1)), Pushed::Conflated, "a patch still gets a snapshot marker");
        assert_eq!(kinds(&o.take()), ["a", "b", "SYNC"]);
    }

    #[test]
    fn a_resync_behind_a_snapshot_marker_is_answered_once_with_the_whole_state() {
        let o = Outbox::new(2);
        for seq in 1..=3 {
            o.push(patch(seq));
        }
        o.request_sync();
        o.request_sync();
        assert_eq!(kinds(&o.take()), ["RESYNC"], "one whole state, not a partial one and then the whole");
        o.push(Item::Msg(Bytes::from("pong")));
        o.request_sync();
        assert_eq!(kinds(&o.take()), ["pong", "RESYNC"], "with no marker waiting, after what is queued");
    }

    #[test]
    fn roster_updates_conflate_into_the_full_roster() {
        let o = Outbox::new(2);
        o.push(Item::Roster(Bytes::from("r1")));
        o.push(Item::Roster(Bytes::from("r2")));
        o.push(Item::Roster(Bytes::from("r3")));
        assert_eq!(kinds(&o.take()), ["ROSTER"]);
    }

    #[test]
    fn nothing_is_queued_after_close() {
        let o = Outbox::new(2);
        o.close(4003, "kicked");
        assert_eq!(o.push(patch(1)), Pushed::Closed);
        assert_eq!(o.take().close, Some((4003, "kicked".into())));
    }
}
