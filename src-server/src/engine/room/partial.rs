//! Partial syncs (docs/PROTOCOL-ADDITIONS.md, O): which pages' marks changed at which seq, so a client
//! that fell behind is sent only the pages it lacks, never the whole layer again.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::{Room, encode};
use crate::protocol::partial::{PartialSync, trimmed};
use crate::protocol::{Patch, ServerMsg};

/// The most pages whose changes are kept apart; past it the room forgets them, and sends whole states
/// until the next change (a document has far fewer pages: this only bounds a peer's patches).
const MAX_PAGES: usize = 10_000;

/// Since when the room knows the marks' history, and each page's last change after that.
#[derive(Debug, Default)]
pub(super) struct MarksAt {
    /// A client at this seq or later can be sent only the pages changed after its seq.
    base: u64,
    /// Each page whose marks changed after `base`: the seq of its last change.
    pages: BTreeMap<u32, u64>,
}

impl MarksAt {
    /// A history that starts at `seq` (a new room, or a copy rebuilt from a snapshot).
    pub(super) fn from(seq: u64) -> MarksAt {
        MarksAt { base: seq, pages: BTreeMap::new() }
    }

    /// Notes what the patch at `seq` did to the marks.
    pub(super) fn record(&mut self, seq: u64, patch: &Patch) {
        if patch.doc.is_some() {
            // A new document clears every page: what a client had before is no base.
            *self = MarksAt::from(seq);
        }
        for op in patch.marks.iter().flatten() {
            self.pages.insert(op.page(), seq);
        }
        if self.pages.len() > MAX_PAGES {
            *self = MarksAt::from(seq);
        }
    }

    /// The pages whose marks changed after `since`, if a client at `since` can be sent only those.
    fn after(&self, since: u64) -> Option<Vec<u32>> {
        (since > 0 && since >= self.base)
            .then(|| self.pages.iter().filter(|(_, at)| **at > since).map(|(page, _)| *page).collect())
    }
}

impl Room {
    /// The `sync` frame for a connection that has every change up to `covered` and merges partial
    /// syncs: only the pages whose marks changed since, when the room knows which and they hold less
    /// than half the lesson's marks; else the whole state ([`Room::sync_frame`]).
    pub fn sync_frame_after(&self, covered: u64) -> (u64, Bytes) {
        let partial = {
            let inner = self.lock();
            let seq = inner.seq;
            // When the pages changed hold half the lesson's marks or more, the whole state (one frame,
            // cached for every connection) costs little more to send and nothing to make again.
            let most =
                |pages: &[u32]| pages.iter().map(|p| inner.state.marks.page(*p).len()).sum::<usize>() * 2;
            match inner.marks_at.after(covered) {
                Some(pages) if covered <= seq && most(&pages) < inner.state.marks.len() => {
                    let state = trimmed(&inner.state, &pages);
                    let signed = inner.signed.clone();
                    Some((
                        seq,
                        ServerMsg::Sync {
                            seq,
                            state,
                            signed,
                            partial: Some(PartialSync { since: covered, pages }),
                        },
                    ))
                }
                _ => None,
            }
        };
        match partial {
            Some((seq, msg)) => {
                self.metrics.partial_syncs.increment(1);
                (seq, encode(&msg))
            }
            None => self.sync_frame(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Mark, MarkOp};

    fn marks(ops: Vec<MarkOp>) -> Patch {
        Patch { marks: Some(ops), ..Patch::default() }
    }

    fn add(page: u32) -> MarkOp {
        let mark: Mark =
            serde_json::from_value(serde_json::json!({"id": 1, "x": 0.1, "y": 0.1, "w": 0.1, "h": 0.1}))
                .unwrap_or_else(|e| panic!("{e}"));
        MarkOp::Add { page, mark }
    }

    #[test]
    fn a_client_is_sent_the_pages_changed_after_its_seq_and_a_new_document_or_an_old_seq_gets_all() {
        let mut at = MarksAt::from(10);
        at.record(11, &marks(vec![add(3)]));
        at.record(12, &Patch { page: Some(4), ..Patch::default() });
        at.record(13, &marks(vec![add(5), MarkOp::Clear { page: 3 }]));
        at.record(14, &marks(vec![add(7)]));
        assert_eq!(at.after(12), Some(vec![3, 5, 7]), "page 3 was cleared after 12: it is named");
        assert_eq!(at.after(13), Some(vec![7]));
        assert_eq!(at.after(14), Some(vec![]));
        assert_eq!(at.after(9), None, "before the room's history began");
        assert_eq!(at.after(0), None, "a connection that has nothing yet");
        at.record(15, &Patch { doc: Some(None), ..Patch::default() });
        assert_eq!(at.after(14), None, "a new document: the old pages are no base");
        assert_eq!(at.after(15), Some(vec![]));
    }
}
