//! Who is in a lesson, as frames carry it: the client itself (`you`), the room, the teacher's
//! roster and the list of those waiting to be let in (§3, §6, and PROTOCOL-ADDITIONS.md A and H).

use serde::{Deserialize, Serialize};

/// A participant's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Leads the lesson: sends `set`, `kick`, `end`; sees the roster.
    Teacher,
    /// Follows the lesson: sends `ack`, `hand`, `view`.
    Student,
}

impl Role {
    /// The role's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Teacher => "teacher",
            Role::Student => "student",
        }
    }
}

/// `you` in `welcome`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct You {
    /// Participant id, stable for the device during the lesson.
    pub id: String,
    /// Role.
    pub role: Role,
    /// Display name.
    pub name: String,
}

/// `room` in `welcome`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct RoomInfo {
    /// Room id.
    pub id: String,
    /// Lesson title.
    pub title: String,
    /// Through a relay: the teacher's signature of the title (kind 5, PROTOCOL-ADDITIONS.md section
    /// E). A client behind a relay shows the title only when it checks against the link's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub title_sig: Option<String>,
}

/// One student as the teacher's roster shows it (§6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct RosterEntry {
    /// Participant id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Connected now.
    pub online: bool,
    /// Joined through a cloud relay.
    pub remote: bool,
    /// Highest seq the student has on screen, if it acked anything.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub acked: Option<u64>,
    /// Last measured round trip, in ms.
    pub rtt_ms: Option<u32>,
    /// Hand raised.
    pub hand: bool,
    /// Page shown in free mode.
    pub view: Option<u32>,
    /// Removed by the teacher (an addition to §6: lets a console grey the tile out).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub kicked: bool,
    /// Joined after a removal under a name, or from an address of its own, that a removed student
    /// had: perhaps the same student on a new device (docs/PROTOCOL-ADDITIONS.md, H).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub like_removed: bool,
}

/// A student waiting to be let in, as the teacher sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct KnockEntry {
    /// Knock id, for `admit` and `deny`.
    pub id: String,
    /// The name the student gave.
    pub name: String,
    /// The student's device id (not a secret, and not proof of anything).
    pub device: String,
    /// The student gave the right join code: it waits because the waiting room is on, or because
    /// someone is guessing codes (its code was then checked for the teacher's eyes only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub has_code: bool,
    /// It came with a join code that is wrong (held while someone is guessing): most likely the
    /// guesser. Neither this nor `has_code`: it asked without a code, or its code was not checked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wrong_code: bool,
    /// Its name, or an address of its own, is a removed student's (see [`RosterEntry::like_removed`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub like_removed: bool,
}
