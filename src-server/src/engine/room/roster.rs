//! The participants a room knows and the teacher's roster (§6): acks, hands, views and round trips,
//! sent to teachers at once (joins, leaves, hands) or coalesced to one update per roster interval.

use bytes::Bytes;

use super::participant::Participant;
use super::{Inner, Room, encode};
use crate::engine::outbox::{Item, Outbox};
use crate::engine::report::Event;
use crate::now_ms;
use crate::protocol::{ErrorCode, Role, ServerMsg};

impl Room {
    /// A student's cumulative `ack`. It is logged only when it crosses a significant change not yet
    /// logged for this student, which is all follow times need (pointer moves are not followed).
    pub fn ack(&self, pid: &str, seq: u64, reply: &Outbox) {
        let mut inner = self.lock();
        if seq > inner.seq {
            let msg = format!("ack {seq} is ahead of the lesson (seq {})", inner.seq);
            reply.push_or_close(Item::Msg(encode(&ServerMsg::error(None, ErrorCode::BadRequest, msg))));
            return;
        }
        let Inner { participants, significant, .. } = &mut *inner;
        let Some(p) = participants.get_mut(pid) else { return };
        if p.acked.is_some_and(|a| a >= seq) {
            return;
        }
        p.acked = Some(seq);
        // The newest significant change this ack reaches, if the log has not seen this student reach it.
        let reached = significant.partition_point(|s| *s <= seq);
        if reached > 0 && significant.get(reached - 1).is_some_and(|s| *s > p.logged_ack) {
            p.logged_ack = seq;
            self.report(Event::Ack { pid: pid.to_string(), seq, time: now_ms() });
        }
        self.mark(&mut inner, pid);
    }

    /// A student's `hand`: the teacher sees it at once.
    pub fn hand(&self, pid: &str, up: bool) {
        let mut inner = self.lock();
        let Some(p) = inner.participants.get_mut(pid) else { return };
        if p.hand == up {
            return;
        }
        p.hand = up;
        self.report(Event::Hand { pid: pid.to_string(), up, time: now_ms() });
        self.mark(&mut inner, pid);
        self.flush_roster_locked(&mut inner);
    }

    /// A student's `view` (the page shown in free mode).
    pub fn view(&self, pid: &str, page: Option<u32>, reply: &Outbox) {
        let mut inner = self.lock();
        let pages = inner.state.doc.as_ref().map_or(0, |d| d.pages);
        if let Some(page) = page
            && (page == 0 || page > pages)
        {
            let msg = format!("view page {page} is outside 1 to {pages}");
            reply.push_or_close(Item::Msg(encode(&ServerMsg::error(None, ErrorCode::BadRequest, msg))));
            return;
        }
        let Some(p) = inner.participants.get_mut(pid) else { return };
        if p.view != page {
            p.view = page;
            self.mark(&mut inner, pid);
        }
    }

    /// A measured round trip for a participant.
    pub fn rtt(&self, pid: &str, rtt_ms: u32) {
        let mut inner = self.lock();
        let Some(p) = inner.participants.get_mut(pid) else { return };
        if p.role == Role::Student && p.rtt_ms != Some(rtt_ms) {
            p.rtt_ms = Some(rtt_ms);
            self.mark(&mut inner, pid);
        }
    }

    pub(super) fn mark(&self, inner: &mut Inner, pid: &str) {
        if let Some(p) = inner.participants.get_mut(pid)
            && !p.dirty
        {
            p.dirty = true;
            inner.roster_dirty.push(pid.to_string());
        }
    }

    pub(super) fn flush_roster_locked(&self, inner: &mut Inner) {
        if inner.roster_dirty.is_empty() {
            return;
        }
        let dirty = std::mem::take(&mut inner.roster_dirty);
        let mut changes = Vec::with_capacity(dirty.len());
        for pid in dirty {
            if let Some(p) = inner.participants.get_mut(&pid) {
                p.dirty = false;
                changes.push(p.entry());
            }
        }
        let bytes = encode(&ServerMsg::Roster { changes });
        for m in inner.members.iter().filter(|m| m.role == Role::Teacher) {
            m.outbox.push(Item::Roster(bytes.clone()));
        }
    }

    /// Sends pending ack, round-trip and view changes to teachers; called every roster interval.
    pub fn flush_roster(&self) {
        let mut inner = self.lock();
        self.flush_roster_locked(&mut inner);
    }

    /// The whole roster as one `roster` frame (for a teacher whose roster updates were conflated).
    pub fn roster_frame(&self) -> Bytes {
        let inner = self.lock();
        let changes =
            inner.participants.values().filter(|p| p.role == Role::Student).map(Participant::entry).collect();
        encode(&ServerMsg::Roster { changes })
    }
}
