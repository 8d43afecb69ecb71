//! A relay's copy of a room on a teacher's server (docs/RELAY.md).
//!
//! Its students join it like any room (the same hello, limits, close codes and writer), but nobody
//! changes it here: its changes arrive from Redis as the teacher's server made and signed them, and
//! are applied in seq order, with the signature of the state they lead to kept for the `welcome` and
//! `sync` frames made here. A gap in the seqs is refused, and the caller starts again from the
//! teacher's latest snapshot.

use std::time::Instant;

use bytes::Bytes;

use super::partial;
use super::{Inner, Room, encode};
use crate::engine::outbox::Item;
use crate::protocol::{LessonState, Patch, RoomInfo, ServerMsg, Signed, close};

/// A mirror's change did not follow its last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the relay's copy is at seq {have}; seq {got} does not follow it")]
pub struct Gap {
    /// The copy's seq.
    pub have: u64,
    /// The change's.
    pub got: u64,
}

impl Room {
    /// Whether this room is a relay's copy (see [`crate::engine::room::RoomParts::mirror`]).
    pub fn is_mirror(&self) -> bool {
        self.mirror
    }

    /// Applies a signed change from the teacher's server and sends it, byte for byte as signed, to
    /// every member. A seq already applied is ignored; one that skips ahead is refused.
    pub fn mirror_patch(&self, seq: u64, time: u64, patch: Patch, signed: Signed) -> Result<(), Gap> {
        let mut inner = self.lock();
        if seq <= inner.seq {
            return Ok(());
        }
        if seq != inner.seq + 1 || inner.signed.as_ref().is_some_and(|s| s.epoch != signed.epoch) {
            return Err(Gap { have: inner.seq, got: seq });
        }
        inner.state.apply(&patch);
        inner.marks_at.record(seq, &patch);
        inner.seq = seq;
        // Students' acks of it reach the teacher's server, as they would in the room.
        if !patch.is_motion() {
            inner.significant.push(seq);
        }
        let ended = inner.state.ended;
        let bytes = encode(&ServerMsg::Patch { seq, time, patch, signed: Some(signed.clone()) });
        inner.signed = Some(signed);
        inner.sync_cache = None;
        let accepted = Instant::now();
        for m in &inner.members {
            m.outbox.push(Item::Patch { seq, bytes: bytes.clone(), accepted });
            if ended {
                m.outbox.close(close::ENDED, "the lesson has ended");
            }
        }
        self.metrics.patches.increment(1);
        Ok(())
    }

    /// Starts again from a signed snapshot (a new epoch, or after a gap): every member gets it as a
    /// `sync`. An older snapshot (an older epoch, or a lower seq in this one) is ignored: `None`.
    /// Otherwise the students online now, as (id, name, device), when the epoch is new, for the
    /// teacher's server to hear of again (it may have lost them), or none.
    pub fn mirror_reset(
        &self,
        seq: u64,
        state: LessonState,
        signed: Signed,
    ) -> Option<Vec<(String, String, String)>> {
        let mut inner = self.lock();
        // An older snapshot, or the one the room has already (a `sync` written into the stream
        // again): nothing to send.
        if let Some(current) = &inner.signed
            && (signed.epoch < current.epoch || (signed.epoch == current.epoch && seq <= inner.seq))
        {
            return None;
        }
        let new_epoch = inner.signed.as_ref().is_some_and(|c| c.epoch != signed.epoch);
        if inner.beat.as_ref().is_some_and(|b| b.signed.epoch != signed.epoch) {
            inner.beat = None; // the last epoch's word says nothing of this one
        }
        let bytes = encode(&ServerMsg::Sync {
            seq,
            state: state.clone(),
            signed: Some(signed.clone()),
            partial: None,
        });
        inner.state = state;
        inner.marks_at = partial::MarksAt::from(seq);
        inner.seq = seq;
        inner.signed = Some(signed);
        inner.sync_cache = Some(bytes.clone());
        if inner.significant.last().is_none_or(|s| *s < seq) {
            inner.significant.push(seq);
        }
        for m in &inner.members {
            m.outbox.push_or_close(Item::Msg(bytes.clone()));
        }
        let here = inner
            .participants
            .values()
            .filter(|p| new_epoch && p.conn.is_some() && p.role == crate::protocol::Role::Student)
            .map(|p| (p.id.clone(), p.name.clone(), p.device.clone()))
            .collect();
        Some(here)
    }

    /// Sends a frame from the teacher's server to every member.
    pub fn mirror_send(&self, bytes: Bytes) {
        let inner = self.lock();
        for m in &inner.members {
            m.outbox.push_or_close(Item::Msg(bytes.clone()));
        }
    }

    /// Keeps the teacher's signed beat (checked by the caller) for the welcomes made here, and sends
    /// it to every member when `send`. A beat of another epoch than the copy's, or older than the
    /// one kept, is not kept.
    pub fn mirror_beat(&self, beat: crate::protocol::Beat, send: bool) {
        let mut inner = self.lock();
        if inner.signed.as_ref().is_none_or(|s| s.epoch != beat.signed.epoch)
            || inner.beat.as_ref().is_some_and(|b| b.signed.epoch == beat.signed.epoch && b.n >= beat.n)
        {
            return;
        }
        if send {
            let bytes = encode(&beat.frame());
            for m in &inner.members {
                m.outbox.push_or_close(Item::Msg(bytes.clone()));
            }
        }
        inner.beat = Some(beat);
    }

    /// The teacher removed this student (its id on this relay): it is closed with 4003, and neither
    /// it nor another id of its device may join this copy again.
    pub fn mirror_kick(&self, pid: &str) {
        let mut inner = self.lock();
        let Some(p) = inner.participants.get_mut(pid) else {
            inner.revoked.insert(pid.to_string());
            return;
        };
        p.kicked = true;
        let (conn, device) = (p.conn, p.device.clone());
        let ids: Vec<String> = std::iter::once(pid.to_string()).chain(self.twins(&device)).collect();
        inner.revoked.extend(ids);
        if let Some(m) = conn.and_then(|c| inner.members.iter().find(|m| m.conn == c)) {
            m.outbox.close(close::KICKED, "removed from this lesson by the teacher");
        }
        Self::close_second(&mut inner, pid, close::KICKED, "removed from this lesson by the teacher");
    }

    /// The teacher's server refused this student's connection `conn` (its room is full, say): it
    /// is closed with 4029 and may try again later. Another connection is left alone.
    pub fn mirror_refuse(&self, pid: &str, conn: u64) {
        let inner = self.lock();
        if inner.participants.get(pid).and_then(|p| p.conn) != Some(conn) {
            return;
        }
        if let Some(m) = inner.members.iter().find(|m| m.conn == conn) {
            m.outbox.close(close::RATE_LIMITED, "the room is full");
        }
    }

    /// The copy's seq and epoch, to know where its feed stands.
    pub fn mirror_position(&self) -> (u64, Option<u64>) {
        let inner = self.lock();
        (inner.seq, inner.signed.as_ref().map(|s| s.epoch))
    }

    /// A relay's copy of the room takes the title the teacher's server publishes and its signature,
    /// made for the epoch the copy takes next (renamed when that server restarted with another).
    pub fn mirror_title(&self, title: &str, title_sig: Option<String>) {
        let mut inner = self.lock();
        inner.lesson.title = title.to_string();
        inner.title_sig = title_sig;
    }

    /// The room as welcomes and join pages show it now: its title, and on a relay's copy the
    /// teacher's signature of it, with the epoch of the signed state the copy has, which the
    /// signature must hold for (section E; never the epoch Redis says).
    pub fn titled(&self) -> (RoomInfo, Option<u64>) {
        let inner = self.lock();
        (self.room_info(&inner), inner.signed.as_ref().map(|s| s.epoch))
    }

    /// The room as a welcome names it; the caller holds the lock.
    pub(super) fn room_info(&self, inner: &Inner) -> RoomInfo {
        RoomInfo {
            id: self.info.id.clone(),
            title: inner.lesson.title.clone(),
            title_sig: inner.title_sig.clone(),
        }
    }
}
