//! Checking a relay (docs/PROTOCOL-ADDITIONS.md, section E): behind a relay, every state the client
//! takes must carry the teacher's server's signature, in seq order, and the signed beats must keep
//! coming, must be fresh on the teacher's clock, and must not run ahead of what the relay delivers.
//! Whether the teacher is there is taken from those beats only, never from the relay's word.
//!
//! A frame that fails is never applied: the link is dropped and the client reconnects (behind a load
//! balancer, perhaps to an honest relay). A relay can delay a lesson; it cannot change, reorder or
//! replay it.

use std::time::Duration;

use tokio::time::Instant;

use super::types::RelayTrust;
use crate::protocol::sign::Verifier;
use crate::protocol::signed::Kind;
use crate::protocol::{LessonState, ServerMsg};

/// Whether the room's title in a relay's welcome carries the teacher's signature (kind 5) for the
/// link's room and key, made in `epoch` (the welcome's state's): the title comes from Redis, and is
/// shown only then. A title signed in an earlier epoch (before the teacher's server restarted with
/// another title) is not shown.
pub fn title_signed(relay: &RelayTrust, room: &crate::protocol::RoomInfo, epoch: u64) -> bool {
    let (Some(verifier), Some(sig)) = (Verifier::new(&relay.pk, &relay.room), room.title_sig.as_ref()) else {
        return false;
    };
    let signed = crate::protocol::Signed { epoch, sig: sig.clone() };
    verifier.check_digest(Kind::Title, 0, 0, &crate::protocol::signed::title_digest(&room.title), &signed)
}

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
    /// Whether the teacher is there, as the last good beat said.
    teacher: Option<bool>,
    /// The teacher's clock in the last good beat (Unix ms).
    beat_at: Option<u64>,
}

/// Beats a relay may miss before it counts as withholding them.
const MISSED_BEATS: u32 = 3;
/// Heartbeats a relay may stay behind a beat before it counts as withholding changes.
const BEHIND_BEATS: u32 = 2;
/// The longest heartbeat a relay's welcome is believed for (a relay could name an hour, to withhold
/// unnoticed).
const MAX_HEARTBEAT: Duration = Duration::from_secs(30);
/// How old the teacher's latest word may be on this device's clock (or how far ahead of it): two
/// default heartbeats (20 s) and 30 s for the two clocks to disagree (both are normally set by the
/// network). Fixed, not the relay's word. A relay that replays an old snapshot, or withholds beats,
/// can show a state as current for at most this long after the teacher moved on.
pub const FRESHNESS: Duration = Duration::from_secs(50);

impl RelayCheck {
    /// Checks against public key `pk` (base64url) for room `room`; `None` if `pk` is not a key.
    pub fn new(pk: &str, room: &str) -> Option<RelayCheck> {
        Some(RelayCheck {
            verifier: Verifier::new(pk, room)?,
            epoch: None,
            beat: 0,
            heard_beat: Instant::now(),
            behind_since: None,
            teacher: None,
            beat_at: None,
        })
    }

    /// A new link: beats are counted from now.
    pub fn linked(&mut self) {
        self.heard_beat = Instant::now();
        self.behind_since = None;
    }

    /// Checks a frame before it is applied, given the client's seq and state and this device's clock
    /// (Unix ms); the reason if it must be refused. `Ok(Some(online))` when a checked beat says the
    /// teacher is there or not (at a welcome, and whenever it changes).
    pub fn check(
        &mut self,
        msg: &ServerMsg,
        seq: u64,
        state: Option<&LessonState>,
        now_ms: u64,
    ) -> Result<Option<bool>, String> {
        let forged =
            |what: &str| Err(format!("the relay sent {what} that the teacher's server did not sign"));
        match msg {
            ServerMsg::Welcome { seq: at, state, signed, beat, .. } => {
                let Some(signed) = signed else { return forged("a lesson state") };
                // Everything is checked before anything is taken.
                self.check_state(*at, state, signed, seq)?;
                // A welcome must say how fresh its state is: the teacher's latest beat, of its epoch,
                // for its seq or an earlier one (a later state is newer than the beat), and no older
                // than a beat already taken in this epoch.
                let Some(beat) = beat.as_ref().filter(|b| b.signed.epoch == signed.epoch) else {
                    return Err(
                        "the relay has no current word from the teacher of how current the lesson is".into(),
                    );
                };
                if !self.verifier.check_beat(beat.seq, beat.n, beat.at, beat.teacher, &beat.signed) {
                    return forged("a heartbeat");
                }
                if beat.seq > *at {
                    return Err(
                        "the relay sent a lesson state older than the teacher's latest heartbeat".into()
                    );
                }
                if self.epoch == Some(signed.epoch) && beat.n < self.beat {
                    return Err("the relay sent an older heartbeat of the teacher's again".into());
                }
                stale(beat.at, now_ms)?;
                self.take_state(signed.epoch);
                self.beat = beat.n;
                self.beat_at = Some(beat.at);
                self.heard_beat = Instant::now();
                self.teacher = Some(beat.teacher);
                return Ok(Some(beat.teacher));
            }
            ServerMsg::Sync { seq: at, state, signed, partial } => {
                // A partial sync is merged into a whole state before it is checked (`apply::expand`).
                let (Some(signed), None) = (signed, partial) else { return forged("a lesson state") };
                self.check_state(*at, state, signed, seq)?;
                self.take_state(signed.epoch);
            }
            ServerMsg::Patch { seq: next, patch, signed, .. } => {
                let Some(signed) = signed else { return forged("a change") };
                // An old seq is ignored by the session without being applied; a gap asks for a sync.
                if *next != seq + 1 {
                    return Ok(None);
                }
                let Some(mut after) = state.cloned() else { return Ok(None) };
                // More changes than a teacher's server sends at once is no patch of it: refused
                // before any is applied.
                if !after.marks.within_caps(patch.marks.as_deref()) {
                    return forged("a change");
                }
                after.apply(patch);
                if !after.marks.within_caps(None) {
                    return forged("a change");
                }
                if self.epoch != Some(signed.epoch)
                    || !self.verifier.check(Kind::State, *next, 0, &after, signed)
                {
                    return forged("a change");
                }
            }
            ServerMsg::Beat { seq: at, n, at: time, teacher, signed } => {
                if *n <= self.beat || self.epoch != Some(signed.epoch) {
                    return Ok(None); // old, or of another epoch: it proves nothing
                }
                if !self.verifier.check_beat(*at, *n, *time, *teacher, signed) {
                    return forged("a heartbeat");
                }
                // A relay that holds beats back until they are stale is withholding.
                stale(*time, now_ms)?;
                self.beat = *n;
                self.beat_at = Some(*time);
                if *at > seq {
                    // The teacher is further on than the relay delivered: it must catch up soon.
                    self.behind_since.get_or_insert_with(Instant::now);
                } else {
                    self.behind_since = None;
                    self.heard_beat = Instant::now();
                }
                if self.teacher != Some(*teacher) {
                    self.teacher = Some(*teacher);
                    return Ok(Some(*teacher));
                }
            }
            _ => {}
        }
        Ok(None)
    }

    /// Checks a signed state (a welcome's or a sync's) at `at`, the client being at `seq`.
    fn check_state(
        &self,
        at: u64,
        state: &LessonState,
        signed: &crate::protocol::Signed,
        seq: u64,
    ) -> Result<(), String> {
        if !self.verifier.check(Kind::State, at, 0, state, signed) {
            return Err("the relay sent a lesson state that the teacher's server did not sign".into());
        }
        // Epochs only grow, and within one the seq only grows: an older state, however well signed,
        // is a replay.
        let older = match self.epoch {
            Some(e) if signed.epoch < e => true,
            Some(e) if signed.epoch == e => at < seq,
            _ => false,
        };
        if older {
            return Err("the relay sent an older lesson state again".into());
        }
        Ok(())
    }

    /// Takes a checked state's epoch.
    fn take_state(&mut self, epoch: u64) {
        if self.epoch != Some(epoch) {
            self.beat = 0; // a new epoch counts its beats afresh
        }
        self.epoch = Some(epoch);
        self.behind_since = None;
    }

    /// Whether the relay is withholding: no good beat for three heartbeats, behind a beat for two,
    /// or the teacher's last word older than [`FRESHNESS`] on this device's clock (`now_ms`). The
    /// heartbeat is the relay's word, so it is held to at most [`MAX_HEARTBEAT`].
    pub fn withholding(&self, heartbeat: Duration, now_ms: u64) -> Option<String> {
        if let Some(at) = self.beat_at
            && let Err(stale) = stale(at, now_ms)
        {
            return Some(stale);
        }
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

/// Refuses a beat from longer ago than [`FRESHNESS`] on this device's clock, or as far ahead: the
/// reason, which names both clocks, since one of them may be wrong.
fn stale(at: u64, now_ms: u64) -> Result<(), String> {
    let off = Duration::from_millis(now_ms.abs_diff(at));
    if off <= FRESHNESS {
        return Ok(());
    }
    let s = off.as_secs();
    Err(if at < now_ms {
        format!(
            "the teacher's last word through the relay is {s} s old by this device's clock: the lesson \
             shown may not be current (or this device's clock, or the teacher's, is wrong)"
        )
    } else {
        format!(
            "the teacher's last word through the relay is {s} s ahead of this device's clock: set this \
             device's date and time (or the teacher's) right"
        )
    })
}

#[cfg(test)]
#[path = "trust_tests.rs"]
mod tests;
