//! A teacher's change (`set`): validated against the state, stamped with the next seq, encoded once
//! and pushed to every connection, reported to the session log, and answered `ok` once it is durable
//! where the store confirms.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::{Inner, RECENT_DOCS, Room, encode};
use crate::engine::outbox::{Item, Outbox, Pushed};
use crate::engine::report::{Done, Event};
use crate::now_ms;
use crate::protocol::{ErrorCode, Patch, ServerMsg, SetPatch};

impl Room {
    /// Encodes a patch once and pushes its bytes to every connection; the caller holds the lock.
    pub(super) fn fan_out(&self, inner: &mut Inner, seq: u64, patch: &Patch, time: u64) {
        let accepted = Instant::now();
        let bytes = Bytes::from(crate::protocol::frame::patch_frame(seq, time, patch));
        let mut conflated = 0;
        for m in &inner.members {
            if m.outbox.push(Item::Patch { seq, bytes: bytes.clone(), accepted }) == Pushed::Conflated {
                conflated += 1;
            }
        }
        inner.sync_cache = None;
        self.metrics.patches.increment(1);
        if conflated > 0 {
            self.metrics.conflations.increment(conflated);
        }
    }

    /// A teacher's `set`: validates, stamps, fans out, and answers `ok` (once the patch is durable, when
    /// the store confirms) or `error` into `reply`.
    pub fn set(&self, id: Option<u32>, set: SetPatch, reply: &Arc<Outbox>) {
        let mut inner = self.lock();
        let patch = match inner.state.validate(set, |doc| self.docs.get(doc)) {
            Ok(p) => p,
            Err(message) => {
                self.metrics.reject(crate::metrics::Rejected::BadRequest);
                reply.push_or_close(Item::Msg(encode(&ServerMsg::error(id, ErrorCode::BadRequest, message))));
                return;
            }
        };
        inner.seq += 1;
        let seq = inner.seq;
        let time = now_ms();
        // Only a change of document looks at the one before (pointer moves stay free of it).
        let before = patch.doc.as_ref().and(inner.state.doc.as_ref()).map(|d| d.id.clone());
        inner.state.apply(&patch);
        inner.marks_at.record(seq, &patch);
        // The documents shown lately stay fetchable by students for a while: a download under way
        // when the teacher turns to another document is not cut off.
        if let Some(before) = before.filter(|b| inner.state.doc.as_ref().is_none_or(|d| d.id != *b)) {
            inner.recent_docs.retain(|d| *d != before);
            inner.recent_docs.push(before);
            if inner.recent_docs.len() > RECENT_DOCS {
                inner.recent_docs.remove(0);
            }
        }
        if !patch.is_motion() {
            inner.significant.push(seq);
        }
        self.fan_out(&mut inner, seq, &patch, time);
        let done = self.ok_when_durable(id, seq, reply, None);
        self.report(Event::Patch { seq, time, patch, done });
    }

    /// The `ok` for a patch: now if the store does not confirm, else when it has written the patch.
    /// `then_close` closes the connection after the `ok` (for `end`).
    pub(super) fn ok_when_durable(
        &self,
        id: Option<u32>,
        seq: u64,
        reply: &Arc<Outbox>,
        then_close: Option<u16>,
    ) -> Option<Done> {
        let send = {
            let reply = reply.clone();
            move |durable: bool| {
                let ok = ServerMsg::Ok { id, seq: Some(seq), durable: (!durable).then_some(false) };
                reply.push_or_close(Item::Msg(encode(&ok)));
                if let Some(code) = then_close {
                    reply.close(code, "the lesson has ended");
                }
            }
        };
        if self.reporter.confirms() {
            Some(Done::new(send))
        } else {
            send(true);
            None
        }
    }
}
