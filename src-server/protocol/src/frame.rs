//! Every frame a client or server sends (PROTOCOL.md §3 to §7), and the error codes of §10.
//!
//! Parsing of client frames is two-step (a generic JSON object first,
//! then the typed body) so that "not JSON" (close 4400) and "JSON with a bad field" (`bad_request`) stay
//! distinguishable, as §2 and §10 require.

use serde::{Deserialize, Serialize};

pub use crate::people::{KnockEntry, Role, RoomInfo, RosterEntry, You};
use crate::signed::Signed;

use crate::state::{LessonState, Patch, SetPatch};

/// Error codes carried by `{"t":"error"}` (§10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is malformed or a field is invalid.
    BadRequest,
    /// The sender's role may not do this.
    Forbidden,
    /// The sender is over its frame rate.
    RateLimited,
    /// The named thing does not exist.
    NotFound,
    /// The server failed; nothing the client did.
    Internal,
}

/// The `hello` a client sends first (§3). Fields are optional here so that the server can answer a
/// missing one with a precise `bad_request` instead of a generic parse error.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct Hello {
    /// Protocol version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub v: Option<serde_json::Value>,
    /// `"student"` or `"teacher"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The room's join code (students).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The teacher key (teachers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// A resume token from an earlier `welcome`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<String>,
    /// The participant's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A stable per-device identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Behind a relay: the room to join (a relay serves many). The teacher's server ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// Students without a code: ask the teacher to be let in (docs/PROTOCOL-ADDITIONS.md, "Asking to
    /// join"). A `code` or `resume` in the same hello wins.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub knock: bool,
    /// With `resume`: this connection is a second path for a student who is online, which only
    /// listens (docs/PROTOCOL-ADDITIONS.md, N).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub second: bool,
    /// The client merges a `sync` that carries only the pages whose marks changed
    /// (docs/PROTOCOL-ADDITIONS.md, O), so a student who falls behind is not sent the whole layer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial_sync: bool,
}

/// Every frame a client may send after `hello`, typed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ClientMsg {
    /// First frame of every connection.
    Hello(Hello),
    /// Teacher: change the lesson state.
    Set {
        /// Request id.
        id: Option<u32>,
        /// The change.
        patch: SetPatch,
    },
    /// Any client: ask for a snapshot.
    Resync {
        /// Optional request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u32>,
    },
    /// Student: the state at `seq` is on screen.
    Ack {
        /// Highest seq on screen.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        seq: u64,
    },
    /// Student: raise or lower the hand.
    Hand {
        /// Raised?
        up: bool,
    },
    /// Student: the page shown in free mode.
    View {
        /// The page, or null.
        page: Option<u32>,
    },
    /// Teacher: remove a student.
    Kick {
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u32>,
        /// Participant id.
        who: String,
    },
    /// Teacher: end the lesson.
    End {
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u32>,
    },
    /// Any client: liveness probe.
    Ping {
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u32>,
    },
    /// Teacher: let in students who knocked.
    Admit {
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u32>,
        /// Knock ids, from `knocks`; ids no longer waiting are ignored.
        knocks: Vec<String>,
    },
    /// Teacher: turn away students who knocked.
    Deny {
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u32>,
        /// Knock ids, from `knocks`; ids no longer waiting are ignored.
        knocks: Vec<String>,
    },
    /// Teacher: a new join code for the lesson, now (docs/PROTOCOL-ADDITIONS.md, G). Students
    /// already in stay; the old code no longer lets anyone in.
    NewCode {
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u32>,
    },
    /// Teacher: turn the waiting room on or off (docs/PROTOCOL-ADDITIONS.md, H). While it is on,
    /// a student with the right join code waits for the teacher to let it in, as a knock does.
    WaitingRoom {
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u32>,
        /// On or off.
        on: bool,
    },
}

/// A signed beat as a welcome carries it (the fields of [`ServerMsg::Beat`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct Beat {
    /// The teacher's server's seq then.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub seq: u64,
    /// The beat's counter.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub n: u64,
    /// The teacher's server's clock, Unix ms.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub at: u64,
    /// Whether a teacher was connected there.
    pub teacher: bool,
    /// The signature.
    pub signed: Signed,
}

impl Beat {
    /// The beat as a frame of its own.
    pub fn frame(&self) -> ServerMsg {
        let Beat { seq, n, at, teacher, signed } = self.clone();
        ServerMsg::Beat { seq, n, at, teacher, signed }
    }
}

/// Every frame the server sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ServerMsg {
    /// Answer to a good `hello`.
    Welcome {
        /// Protocol version.
        v: u32,
        /// Who the client is.
        you: You,
        /// Resume token.
        token: String,
        /// The room.
        room: Box<RoomInfo>,
        /// Seq of `state`.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        seq: u64,
        /// Full snapshot.
        state: LessonState,
        /// Client ping interval.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        heartbeat_ms: u64,
        /// Server clock, Unix ms.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        time: u64,
        /// Whether a teacher is connected.
        teacher_online: bool,
        /// Teachers only: every student.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        roster: Option<Vec<RosterEntry>>,
        /// Behind a relay: the teacher's server's signature of `state` (PROTOCOL-ADDITIONS.md, E).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signed: Option<Signed>,
        /// Behind a relay: the teacher's latest beat, which says how fresh `state` is and whether
        /// the teacher is there.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        beat: Option<Box<Beat>>,
        /// Students: this server takes a second path (docs/PROTOCOL-ADDITIONS.md, N).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        second: bool,
    },
    /// An accepted change.
    Patch {
        /// Its seq.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        seq: u64,
        /// Server clock when accepted, Unix ms.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        time: u64,
        /// The change, with `doc` as the whole document object.
        patch: Patch,
        /// Behind a relay: the signature of the state this patch leads to (PROTOCOL-ADDITIONS.md, E).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signed: Option<Signed>,
    },
    /// A snapshot (answer to `resync`, or conflation of a full queue).
    Sync {
        /// Seq of `state`.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        seq: u64,
        /// The state; with `partial`, its `marks` hold only the pages `partial` names.
        state: LessonState,
        /// Behind a relay: the teacher's server's signature of `state` (PROTOCOL-ADDITIONS.md, E),
        /// with `partial`, of the state the client holds once it has merged the pages in.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signed: Option<Signed>,
        /// To a client that asked for them (`partial_sync` in its hello): only the pages whose marks
        /// changed since a seq it has (PROTOCOL-ADDITIONS.md, O). Absent: `state` is whole.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        partial: Option<crate::partial::PartialSync>,
    },
    /// Behind a relay, every heartbeat and whenever the teacher comes or goes: the teacher's
    /// server's latest seq at a time on its clock, and whether a teacher is there, signed with a
    /// counter that only grows, so a client notices a relay that withholds changes and never takes
    /// a stale state as current (PROTOCOL-ADDITIONS.md, E).
    Beat {
        /// The latest seq.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        seq: u64,
        /// The beat's counter.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        n: u64,
        /// The teacher's server's clock, Unix ms.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        #[serde(default)]
        at: u64,
        /// Whether a teacher is connected to the teacher's server.
        #[serde(default)]
        teacher: bool,
        /// The signature of (seq, counter, time, presence).
        signed: Signed,
    },
    /// Success of a request.
    Ok {
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u32>,
        /// For `set`: the seq assigned.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(type = "number | null"))]
        seq: Option<u64>,
        /// `false` when the change is applied and sent but could not be written to the session log yet
        /// (an addition to §5; absent means it is durable).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        durable: Option<bool>,
    },
    /// Failure of a request, or a complaint about a frame.
    Error {
        /// Request id, when the frame had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u32>,
        /// Machine-readable code.
        code: ErrorCode,
        /// What to fix.
        message: String,
    },
    /// Roster changes, for teachers.
    Roster {
        /// Upserts by participant id.
        changes: Vec<RosterEntry>,
    },
    /// Whether a teacher is connected.
    Teacher {
        /// Online?
        online: bool,
    },
    /// To a student that knocked: still waiting for the teacher (sent at once, then every heartbeat).
    Waiting {
        /// How often this frame repeats while waiting, in ms.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        heartbeat_ms: u64,
    },
    /// To teachers: someone is trying wrong join codes (docs/PROTOCOL-ADDITIONS.md, G). Sent when
    /// it starts and at most every few seconds while it goes on.
    Guessing {
        /// Wrong codes since the lesson's code was last set.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        wrong: u64,
        /// Whether students joining with the code now wait for the teacher (the room's budget of
        /// wrong codes is spent) instead of being let in.
        waiting_room: bool,
    },
    /// To teachers: whether the waiting room is on; after `welcome`, and whenever a teacher turns it
    /// on or off.
    WaitingRoom {
        /// On or off.
        on: bool,
    },
    /// To teachers: every student waiting to be let in, in knock order (whenever it changes).
    Knocks {
        /// The whole list.
        knocks: Vec<KnockEntry>,
    },
    /// Answer to `ping`.
    Pong {
        /// Request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u32>,
        /// Server clock, Unix ms.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        time: u64,
    },
}

impl ServerMsg {
    /// Encodes the message as one text frame.
    pub fn encode(&self) -> String {
        // Serializing these types cannot fail: every map key is a string and every float is finite
        // (validated on the way in), so the fallback is unreachable in practice but never panics.
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(r#"{{"t":"error","code":"internal","message":"encoding failed: {e}"}}"#)
        })
    }

    /// Builds an `error` frame.
    pub fn error(id: Option<u32>, code: ErrorCode, message: impl Into<String>) -> ServerMsg {
        ServerMsg::Error { id, code, message: message.into() }
    }
}

/// Encodes a `patch` frame from a borrowed patch: the same bytes as [`ServerMsg::Patch`], without
/// cloning the patch on the fan-out path.
pub fn patch_frame(seq: u64, time: u64, patch: &Patch) -> String {
    #[derive(Serialize)]
    struct Frame<'a> {
        t: &'static str,
        seq: u64,
        time: u64,
        patch: &'a Patch,
    }
    serde_json::to_string(&Frame { t: "patch", seq, time, patch })
        .unwrap_or_else(|e| format!(r#"{{"t":"error","code":"internal","message":"encoding failed: {e}"}}"#))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::ParseError;

    #[test]
    fn not_json_is_a_protocol_violation() {
        assert!(matches!(ClientMsg::parse("{nope"), Err(ParseError::NotJson(_))));
        assert!(matches!(ClientMsg::parse("[1,2]"), Err(ParseError::NotJson(_))));
    }

    #[test]
    fn unknown_type_is_bad_request_with_id() {
        let err = ClientMsg::parse(r#"{"t":"dance","id":4}"#).unwrap_err();
        assert_eq!(
            err,
            ParseError::BadRequest { id: Some(4), message: "unknown message type \"dance\"".into() }
        );
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let msg = ClientMsg::parse(r#"{"t":"hand","up":true,"future":{"x":1}}"#).unwrap();
        assert!(matches!(msg, ClientMsg::Hand { up: true }));
    }

    #[test]
    fn null_and_absent_differ_in_set() {
        let ClientMsg::Set { patch, .. } =
            ClientMsg::parse(r#"{"t":"set","id":1,"patch":{"pos":null}}"#).unwrap()
        else {
            panic!("not a set")
        };
        assert_eq!(patch.pos, Some(None));
        assert_eq!(patch.highlight, None);
    }

    #[test]
    fn the_borrowed_patch_frame_is_the_patch_message() {
        let patch = Patch { page: Some(3), pos: Some(None), ..Patch::default() };
        let owned = ServerMsg::Patch { seq: 7, time: 9, patch: patch.clone(), signed: None }.encode();
        assert_eq!(patch_frame(7, 9, &patch), owned);
    }

    #[test]
    fn bad_field_type_is_bad_request() {
        let err = ClientMsg::parse(r#"{"t":"set","id":2,"patch":{"page":"two"}}"#).unwrap_err();
        assert!(matches!(err, ParseError::BadRequest { id: Some(2), .. }), "{err:?}");
    }
}
