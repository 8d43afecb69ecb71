//! Checking a relay (docs/PROTOCOL-ADDITIONS.md, section E): behind a relay, every state the client
//! takes must carry the teacher's server's signature, in seq order, and the signed beats must keep
//! coming and must not run ahead of what the relay delivers.
//!
//! A frame that fails is never applied: the link is dropped and the client reconnects (behind a load
//! balancer, perhaps to an honest relay). A relay can delay a lesson; it cannot change, reorder or
//! replay it.

use std::time::Duration;

use tokio::time::Instant;

use crate::protocol::sign::Verifier;
use crate::protocol::signed::Kind;
use crate::protocol::{LessonState, ServerMsg};

/// The teacher's key and room a client checks a relay against, and what it has seen so far.
#[derive(Debug, Clone)]
pub struct RelayCheck {
    verifier: Verifier,
    /// The epoch of the last state taken.
    epoch: Option<u64>,
    /// The highest beat counter taken.
    beat: u64,
    /// When the last good beat came (or the link started).
    heard_beat: Instant,
    /// Since when a beat has said the teacher is further on than what the relay delivered.
    behind_since: Option<Instant>,
}

/// Beats a relay may miss before it counts as withholding them.
const MISSED_BEATS: u32 = 3;
/// Heartbeats a relay may stay behind a beat before it counts as withholding changes.
const BEHIND_BEATS: u32 = 2;
/// The longest heartbeat a relay's welcome is believed for (a relay could name an hour, to withhold
/// unnoticed).
const MAX_HEARTBEAT: Duration = Duration::from_secs(30);

impl RelayCheck {
    /// Checks against public key `pk` (base64url) for room `room`; `None` if `pk` is not a key.
    pub fn new(pk: &str, room: &str) -> Option<RelayCheck> {
        Some(RelayCheck {
            verifier: Verifier::new(pk, room)?,
            epoch: None,
            beat: 0,
            heard_beat: Instant::now(),
            behind_since: None,
        })
    }

    /// A new link: beats are counted from now.
    pub fn linked(&mut self) {
        self.heard_beat = Instant::now();
        self.behind_since = None;
    }

    /// Checks a frame before it is applied, given the client's seq and state; the reason if it must
    /// be refused.
    pub fn check(&mut self, msg: &ServerMsg, seq: u64, state: Option<&LessonState>) -> Result<(), String> {
        let forged =
            |what: &str| Err(format!("the relay sent {what} that the teacher's server did not sign"));
        match msg {
            ServerMsg::Welcome { seq: at, state, signed, .. }
            | ServerMsg::Sync { seq: at, state, signed } => {
                let Some(signed) = signed else { return forged("a lesson state") };
                if !self.verifier.check(Kind::State, *at, 0, state, signed) {
                    return forged("a lesson state");
                }
                // Epochs only grow, and within one the seq only grows: an older state, however well
                // signed, is a replay.
                let older = match self.epoch {
                    Some(e) if signed.epoch < e => true,
                    Some(e) if signed.epoch == e => *at < seq,
                    _ => false,
                };
                if older {
                    return Err("the relay sent an older lesson state again".into());
                }
                if self.epoch != Some(signed.epoch) {
                    self.beat = 0; // a new epoch counts its beats afresh
                }
                self.epoch = Some(signed.epoch);
                self.behind_since = None;
            }
            ServerMsg::Patch { seq: next, patch, signed, .. } => {
                let Some(signed) = signed else { return forged("a change") };
                // An old seq is ignored by the session without being applied; a gap asks for a sync.
                if *next != seq + 1 {
                    return Ok(());
                }
                let Some(mut after) = state.cloned() else { return Ok(()) };
                after.apply(patch);
                if self.epoch != Some(signed.epoch)
                    || !self.verifier.check(Kind::State, *next, 0, &after, signed)
                {
                    return forged("a change");
                }
            }
            ServerMsg::Beat { seq: at, n, signed } => {
                if *n <= self.beat || self.epoch != Some(signed.epoch) || *at < seq {
                    return Ok(()); // old, of another epoch, or behind us: it proves nothing
                }
                if *at > seq {
                    // Signed over a state this client does not have yet: it cannot be checked, and
                    // counts only as a claim that the relay is behind. The claim must resolve soon.
                    self.behind_since.get_or_insert_with(Instant::now);
                    return Ok(());
                }
                let Some(state) = state else { return Ok(()) };
                if !self.verifier.check(Kind::Beat, *at, *n, state, signed) {
                    return forged("a heartbeat");
                }
                // Only a beat checked against this client's own state counts as heard.
                self.behind_since = None;
                self.beat = *n;
                self.heard_beat = Instant::now();
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether the relay is withholding: no good beat for three heartbeats, or behind a beat for two.
    /// The heartbeat is the relay's word, so it is held to at most [`MAX_HEARTBEAT`].
    pub fn withholding(&self, heartbeat: Duration) -> Option<String> {
        let heartbeat = heartbeat.min(MAX_HEARTBEAT);
        let now = Instant::now();
        if now.duration_since(self.heard_beat) > heartbeat * MISSED_BEATS {
            return Some("the relay stopped passing on the teacher's heartbeats".into());
        }
        if self.behind_since.is_some_and(|t| now.duration_since(t) > heartbeat * BEHIND_BEATS) {
            return Some("the relay is holding back the teacher's changes".into());
        }
        None
    }
}
