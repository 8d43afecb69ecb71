//! A `sync` that carries only the pages whose marks changed (docs/PROTOCOL-ADDITIONS.md, section O).
//!
//! A student on a weak link whose send queue fills is sent a snapshot instead of the changes it missed
//! (PROTOCOL.md §5). With a lesson full of ink that snapshot is the whole layer, up to 3 MB, to the very
//! student whose link could not keep up. A client that says `partial_sync` in its hello is sent instead
//! the state with only the pages whose marks changed since a seq it has already; it keeps every other
//! page as it holds it.

use serde::{Deserialize, Serialize};

use crate::LessonState;

/// What a partial `sync` says of its marks: which pages it carries, and since when the others stand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct PartialSync {
    /// Every page not in `pages` has the marks it had at this seq, which the client has already.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub since: u64,
    /// The pages whose marks changed after `since`, ascending; the state's `marks` hold each of them
    /// that has marks now, and a page named here but absent there has none.
    pub pages: Vec<u32>,
}

/// The state a partial sync sends: `state` with only `pages`' marks.
pub fn trimmed(state: &LessonState, pages: &[u32]) -> LessonState {
    let mut out = state.clone();
    out.marks = crate::Marks::default().replaced(pages, &state.marks);
    out
}

/// The whole state a client holds after a partial sync: `sent`, with every page's marks from `mine`
/// but the pages the sync carries. The caller has checked that `mine` is at the sync's `since` or
/// later (and of the same epoch, behind a relay).
pub fn merged(mine: &LessonState, sent: LessonState, partial: &PartialSync) -> LessonState {
    let marks = mine.marks.replaced(&partial.pages, &sent.marks);
    LessonState { marks, ..sent }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Mark, MarkOp};

    fn mark(id: u32) -> Mark {
        serde_json::from_value(serde_json::json!({"id": id, "x": 0.1, "y": 0.1, "w": 0.2, "h": 0.05}))
            .unwrap_or_else(|e| panic!("a mark: {e}"))
    }

    fn add(page: u32, id: u32) -> MarkOp {
        MarkOp::Add { page, mark: mark(id) }
    }

    #[test]
    fn a_client_that_merges_the_changed_pages_holds_the_servers_state_and_its_signature_checks() {
        let mut server = LessonState::new(None);
        server.marks.apply(&[add(1, 1), add(2, 2), add(3, 3), add(4, 4)]);
        // The client has the lesson at this point.
        let client = server.clone();
        // Then: page 2 gains a mark, page 3 is cleared, page 5 gets its first, the teacher turns.
        server.marks.apply(&[add(2, 5), MarkOp::Clear { page: 3 }, add(5, 6)]);
        server.page = 5;
        let partial = PartialSync { since: 10, pages: vec![2, 3, 5] };
        let sent = trimmed(&server, &partial.pages);
        assert_eq!(sent.marks.len(), 3, "only pages 2 and 5's marks travel: {:?}", sent.marks);
        assert!(sent.marks.page(1).is_empty() && sent.marks.page(4).is_empty());
        // Through JSON, as on the wire.
        let wire: LessonState = serde_json::from_str(&serde_json::to_string(&sent).unwrap_or_default())
            .unwrap_or_else(|e| panic!("the trimmed state reads back: {e}"));
        let whole = merged(&client, wire, &partial);
        assert_eq!(whole, server);
        assert_eq!(whole.marks.layer_digest(), server.marks.layer_digest());
        assert_eq!(crate::sign::state_hash(&whole), crate::sign::state_hash(&server));
        assert_eq!((whole.marks.len(), whole.marks.points()), (server.marks.len(), server.marks.points()));
    }

    #[test]
    fn a_partial_sync_in_json_names_its_pages_and_reads_back() {
        let frame = crate::ServerMsg::Sync {
            seq: 12,
            state: LessonState::new(None),
            signed: None,
            partial: Some(PartialSync { since: 9, pages: vec![3, 7] }),
        };
        let json = serde_json::to_value(&frame).unwrap_or_default();
        assert_eq!(json["partial"], serde_json::json!({"since": 9, "pages": [3, 7]}));
        let back: crate::ServerMsg = serde_json::from_value(json).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(back, crate::ServerMsg::Sync { partial: Some(p), .. } if p.pages == [3, 7]));
    }

    #[test]
    fn a_frame_whose_state_holds_marks_reads_as_a_frame_and_page_keys_are_canonical() {
        // serde buffers a tagged frame to find its `t`; the marks' keys must read from that buffer too
        // (the Rust client read no welcome or sync of a lesson with marks before this).
        let mut state = LessonState::new(None);
        state.marks.apply(&[add(3, 1), add(12, 2)]);
        let frame = crate::ServerMsg::Sync { seq: 4, state: state.clone(), signed: None, partial: None };
        let text = serde_json::to_string(&frame).unwrap_or_default();
        match serde_json::from_str::<crate::ServerMsg>(&text) {
            Ok(crate::ServerMsg::Sync { state: back, .. }) => assert_eq!(back, state),
            other => panic!("a sync with marks: {other:?}"),
        }
        for bad in ["0", "03", "+3", "-1", "3.0", " 3", "4294967296", "x"] {
            let text = format!(r#"{{"{bad}":[{{"id":1,"x":0.1,"y":0.1,"w":0.2,"h":0.05}}]}}"#);
            assert!(serde_json::from_str::<crate::Marks>(&text).is_err(), "{bad:?} is not a page");
        }
    }
}
