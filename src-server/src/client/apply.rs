//! What a session keeps, and what one server frame does to it: the state and its seq, the welcome, the
//! answers to requests, and the events the user sees (§5 to §7). The session task ([`super::session`])
//! owns the connection and calls [`on_frame`] for every frame that passed the relay's checks.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::SinkExt;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::connect::Socket;
use super::trust::RelayCheck;
use super::types::{Cause, ClientOptions, Event, Reply, RequestError};
use crate::protocol::{ClientMsg, LessonState, ServerMsg};

/// What the user did while offline, sent once the client is back.
#[derive(Default)]
pub(super) struct Offline {
    pub(super) hand: Option<bool>,
    pub(super) view: Option<Option<u32>>,
    pub(super) ack: Option<u64>,
}

/// What survives a reconnect: the resume token, the state and its seq, and offline actions.
pub(super) struct Session {
    pub(super) token: Option<String>,
    pub(super) seq: u64,
    pub(super) state: Option<LessonState>,
    pub(super) offline: Offline,
    /// Behind a relay: the teacher's key, and what the relay has shown so far.
    pub(super) relay: Option<RelayCheck>,
    /// Behind a relay: the epoch of `state` (section E), which a partial sync must share.
    pub(super) epoch: Option<u64>,
}

/// A frame as it goes on the wire.
pub(super) fn frame(msg: &ClientMsg) -> Message {
    // Serializing these types cannot fail (string keys, finite numbers); an empty frame would be
    // answered with 4400 rather than panic.
    Message::text(serde_json::to_string(msg).unwrap_or_default())
}

/// Turns a partial `sync` (PROTOCOL-ADDITIONS O) into the whole state it stands for, over the state the
/// session holds; any other frame is left as it is. `false`: the session cannot merge it (no state, one
/// older than the sync's `since`, or of another epoch behind a relay), and must ask for a whole one.
pub(super) fn expand(msg: &mut ServerMsg, s: &Session) -> bool {
    let ServerMsg::Sync { state, partial, signed, .. } = msg else { return true };
    let Some(p) = partial.take() else { return true };
    let epoch_ok = match (&s.relay, signed.as_ref()) {
        (Some(_), Some(signed)) => s.epoch == Some(signed.epoch),
        (Some(_), None) => false,
        (None, _) => true,
    };
    let pages_ok = p.pages.iter().all(|page| *page > 0);
    let Some(mine) = s.state.as_ref().filter(|_| s.seq >= p.since && epoch_ok && pages_ok) else {
        return false;
    };
    let sent = std::mem::replace(state, LessonState::new(None));
    *state = crate::protocol::partial::merged(mine, sent, &p);
    true
}

/// One connection's loop state.
pub(super) struct Link {
    pub(super) resumed: bool,
    pub(super) welcomed: bool,
    pub(super) heartbeat: Duration,
    pub(super) pending: HashMap<u32, Reply>,
    pub(super) next_id: u32,
    pub(super) ping_outstanding: Option<u32>,
    pub(super) ping: tokio::time::Interval,
    pub(super) acked: u64,
    pub(super) want_ack: Option<u64>,
    pub(super) resync_sent: bool,
    /// A `waiting` frame came: the welcome may take this long more.
    pub(super) waiting_until: Option<tokio::time::Instant>,
    /// Something arrived since the last ping tick: a pong held up by loss while frames still arrive
    /// is a lossy link, not a dead one.
    pub(super) heard: bool,
}

impl Link {
    pub(super) fn next_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }
}

/// Applies one server frame; an error is a failed send (the link is gone).
pub(super) async fn on_frame(
    msg: ServerMsg,
    ws: &mut Socket,
    link: &mut Link,
    s: &mut Session,
    options: &ClientOptions,
    events: &mpsc::Sender<Event>,
    attempt: &mut u32,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    match msg {
        ServerMsg::Welcome {
            you,
            token,
            room,
            seq,
            state,
            heartbeat_ms,
            teacher_online,
            roster,
            signed,
            ..
        } => {
            link.welcomed = true;
            *attempt = 0;
            s.token = Some(token);
            s.seq = seq;
            s.epoch = signed.map(|s| s.epoch);
            s.state = Some(state.clone());
            link.heartbeat = Duration::from_millis(heartbeat_ms.clamp(100, 120_000));
            link.ping =
                tokio::time::interval_at(tokio::time::Instant::now() + link.heartbeat, link.heartbeat);
            let resumed = link.resumed;
            let mut room = *room;
            // Behind a relay the title came from Redis: it is shown only as the teacher signed it,
            // in the epoch of the state it comes with.
            let epoch = s.epoch.unwrap_or_default();
            if options.relay.as_ref().is_some_and(|r| !super::trust::title_signed(r, &room, epoch)) {
                room.title = String::new();
            }
            let _ = events.send(Event::Connected { you, room, resumed, teacher_online, roster }).await;
            let _ = events.send(Event::State { seq, state: Box::new(state), cause: Cause::Welcome }).await;
            if options.auto_ack {
                link.want_ack = Some(seq);
            }
            let o = std::mem::take(&mut s.offline);
            if let Some(up) = o.hand {
                ws.feed(frame(&ClientMsg::Hand { up })).await?;
            }
            if let Some(page) = o.view {
                ws.feed(frame(&ClientMsg::View { page })).await?;
            }
            if let Some(a) = o.ack {
                link.want_ack = Some(link.want_ack.unwrap_or(0).max(a.min(seq)));
            }
            ws.flush().await?;
        }
        ServerMsg::Patch { seq, patch, .. } => {
            let Some(state) = s.state.as_mut() else { return Ok(()) };
            if seq <= s.seq {
                return Ok(());
            }
            if seq == s.seq + 1 {
                state.apply(&patch);
                s.seq = seq;
                let _ = events
                    .send(Event::State { seq, state: Box::new(state.clone()), cause: Cause::Patch })
                    .await;
                if options.auto_ack {
                    link.want_ack = Some(seq);
                }
            } else if !link.resync_sent {
                link.resync_sent = true;
                ws.send(frame(&ClientMsg::Resync { id: None })).await?;
            }
        }
        ServerMsg::Sync { seq, state, signed, .. } => {
            // Behind a relay a newer epoch starts afresh, whatever its seq (the relay's checks took it).
            let epoch = signed.map(|s| s.epoch);
            if seq >= s.seq || epoch > s.epoch {
                link.resync_sent = false;
                s.seq = seq;
                s.epoch = epoch;
                s.state = Some(state.clone());
                let _ = events.send(Event::State { seq, state: Box::new(state), cause: Cause::Sync }).await;
                if options.auto_ack {
                    link.want_ack = Some(seq);
                }
            }
        }
        ServerMsg::Ok { id, seq, .. } => {
            if let Some(reply) = id.and_then(|id| link.pending.remove(&id)) {
                let _ = reply.send(Ok(seq));
            }
        }
        ServerMsg::Error { id, code, message } => {
            // Behind a relay an error's text is the relay's word, not the teacher's server's: only
            // its code is passed on.
            let message = if options.relay.is_some() { String::new() } else { message };
            match id.and_then(|id| link.pending.remove(&id)) {
                Some(reply) => {
                    let _ = reply.send(Err(RequestError::Refused { code, message }));
                }
                None => {
                    let _ = events.send(Event::Error { code, message }).await;
                }
            }
        }
        ServerMsg::Roster { changes } => {
            let _ = events.send(Event::Roster(changes)).await;
        }
        ServerMsg::Teacher { online } => {
            let _ = events.send(Event::Teacher { online }).await;
        }
        ServerMsg::Waiting { heartbeat_ms } => {
            // Two heartbeats without a word while waiting is as dead as two without a pong.
            let beat = Duration::from_millis(heartbeat_ms.clamp(100, 120_000));
            link.waiting_until = Some(tokio::time::Instant::now() + 2 * beat);
            let _ = events.send(Event::Waiting).await;
        }
        ServerMsg::Knocks { knocks } => {
            let _ = events.send(Event::Knocks(knocks)).await;
        }
        ServerMsg::Guessing { wrong, waiting_room } => {
            let _ = events.send(Event::Guessing { wrong, waiting_room }).await;
        }
        ServerMsg::WaitingRoom { on } => {
            let _ = events.send(Event::WaitingRoom { on }).await;
        }
        ServerMsg::Beat { .. } => {} // checked before (see `trust`)
        ServerMsg::Pong { id, .. } => {
            if id.is_some() && id == link.ping_outstanding {
                link.ping_outstanding = None;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::partial::PartialSync;
    use crate::protocol::sign::Signer;
    use crate::protocol::{Mark, MarkOp, Signed};

    fn mark(page: u32) -> MarkOp {
        let mark: Mark =
            serde_json::from_value(serde_json::json!({"id": page, "x": 0.1, "y": 0.1, "w": 0.2, "h": 0.05}))
                .unwrap_or_else(|e| panic!("{e}"));
        MarkOp::Add { page, mark }
    }

    fn session(relay: bool) -> Session {
        let mut state = LessonState::new(None);
        state.marks.apply(&[mark(1), mark(2)]);
        let pk = Signer::from_secret([7; 32]).public();
        Session {
            token: None,
            seq: 7,
            state: Some(state),
            offline: Offline::default(),
            relay: relay.then(|| RelayCheck::new(&pk, "r1")).flatten(),
            epoch: relay.then_some(5),
        }
    }

    fn partial(since: u64, pages: Vec<u32>, epoch: Option<u64>) -> ServerMsg {
        let mut state = LessonState::new(None);
        state.marks.apply(&[mark(3)]);
        let signed = epoch.map(|epoch| Signed { epoch, sig: String::new() });
        ServerMsg::Sync { seq: 9, state, signed, partial: Some(PartialSync { since, pages }) }
    }

    #[test]
    fn a_partial_sync_is_merged_only_over_a_state_it_can_stand_on() {
        // Merged: pages 1 and 2 kept, 3 taken, and the frame is whole from then on.
        let mut msg = partial(6, vec![2, 3], None);
        assert!(expand(&mut msg, &session(false)));
        let ServerMsg::Sync { state, partial: left, .. } = msg else { panic!("a sync") };
        assert_eq!(
            (left, state.marks.page(1).len(), state.marks.page(2).len(), state.marks.page(3).len()),
            (None, 1, 0, 1)
        );
        // Not merged: a seq the session lacks, a page 0, another epoch behind a relay, or none.
        for (mut msg, relay) in [
            (partial(8, vec![3], None), false),
            (partial(6, vec![0], None), false),
            (partial(6, vec![3], Some(6)), true),
            (partial(6, vec![3], None), true),
        ] {
            assert!(!expand(&mut msg, &session(relay)), "{msg:?}");
        }
        assert!(expand(&mut partial(6, vec![3], Some(5)), &session(true)), "the session's own epoch");
    }
}
