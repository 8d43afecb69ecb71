//! The bodies of the HTTP API (PROTOCOL.md §9 and the additions in docs/) and the ready line that
//! `lectern serve --json` and the app print for scripts.
//!
//! Each is a plain serde type, so the server writes them and every client reads them from one
//! definition; the console's TypeScript types are generated from the same ones.

use serde::{Deserialize, Serialize};

use crate::state::Doc;

/// `GET /v1/info`: what anyone may know about a classroom before joining. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct Info {
    /// The classroom's name (the mDNS instance name).
    pub name: String,
    /// The running lesson's room id.
    pub room: String,
    /// The running lesson's title.
    pub title: String,
    /// From a relay: the teacher's signature of the title (see `RoomInfo::title_sig`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub title_sig: Option<String>,
    /// From a relay: the epoch `title_sig` was made in (section E: a title holds for one epoch of
    /// the teacher's server, so a renamed title cannot be put back in a later one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional, type = "number"))]
    pub title_epoch: Option<u64>,
    /// Protocol version.
    pub v: u32,
    /// The certificate fingerprint to pin.
    pub fingerprint: String,
    /// Students need a join code (always true in v1).
    pub needs_code: bool,
    /// Students without a code may knock and wait for the teacher (docs/PROTOCOL-ADDITIONS.md).
    #[serde(default)]
    pub knock: bool,
}

/// `GET /v1/lesson` (teacher): the running lesson and what a join link or QR code needs.
/// `POST /v1/lessons` answers the same body for the lesson it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct Lesson {
    /// Room id.
    pub room: String,
    /// Title.
    pub title: String,
    /// Join code.
    pub code: String,
    /// Certificate fingerprint.
    pub fingerprint: String,
    /// The classroom's name.
    pub name: String,
    /// The teacher's server's signing key (base64url), for relays' join links (PROTOCOL-ADDITIONS.md, E).
    pub pk: String,
    /// Where remote students reach the relays (`https://HOST[:PORT]`, with `#fp=…` when the relays'
    /// fingerprint is configured), when the lesson is bridged to Redis and the address is configured:
    /// the console makes the remote join link from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub relay_url: Option<String>,
}

/// `GET /v1/docs` (teacher): the documents the server holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct DocList {
    /// Every document, by title.
    pub docs: Vec<Doc>,
}

/// `GET /v1/docs/{id}/scan`: the pages of a document that are one full-page JPEG, so a device can
/// draw them from that image's bytes alone (docs/PROTOCOL-ADDITIONS.md, section D).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct ScanIndex {
    /// One entry per page, in order: `[offset, length, width, height]` of the page's JPEG (its
    /// byte range in the document, and the page's size in points), or null when pdf.js must draw it.
    #[cfg_attr(feature = "ts", ts(type = "Array<[number, number, number, number] | null>"))]
    pub pages: Vec<Option<[u64; 4]>>,
}

/// One lesson of the session log, as `GET /v1/lessons` and `lectern sessions list --json` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct LessonSummary {
    /// Log id (what `lectern sessions show` and the attendance URL take).
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub id: i64,
    /// Room id.
    pub room: String,
    /// Title.
    pub title: String,
    /// Start, Unix ms.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub started_ms: u64,
    /// End, Unix ms, once ended.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub ended_ms: Option<u64>,
    /// Students who joined.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub students: u64,
    /// Significant teacher changes (ending the lesson is not counted).
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub changes: u64,
    /// Pointer moves.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub pointer_moves: u64,
}

/// `GET /v1/lessons` (teacher): every lesson, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct LessonList {
    /// The lessons.
    pub lessons: Vec<LessonSummary>,
}

/// `GET /healthz`: `ok`, or `degraded` with the reason (the session log cannot write, say).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct Health {
    /// `"ok"` or `"degraded"`.
    pub status: String,
    /// Why it is degraded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The body of every 4xx and 5xx answer: what to fix (4xx), or nothing internal (5xx).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct ApiError {
    /// The message.
    pub error: String,
}

/// The one JSON line a server prints once it accepts connections (`lectern serve --json`, and the
/// app's `--json` in teacher mode), for scripts and tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct Ready {
    /// Always true.
    pub ready: bool,
    /// WebSocket URL on this machine.
    pub ws: String,
    /// HTTPS base URL on this machine.
    pub http: String,
    /// Certificate fingerprint.
    pub fingerprint: String,
    /// Join code.
    pub code: String,
    /// Teacher key.
    pub teacher_key: String,
    /// Room id.
    pub room: String,
}

/// `GET /v1/lessons/{id}/timeline.json` (teacher): what was shown when, who came and went, and hands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct Timeline {
    /// The lesson.
    pub lesson: LessonSummary,
    /// The documents shown, in the order first shown.
    pub documents: Vec<Doc>,
    /// Every event, in time order.
    pub events: Vec<TimelineEvent>,
}

/// One event of a lesson's timeline. Times are Unix ms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TimelineEvent {
    /// A participant connected.
    Join {
        /// When.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        time: u64,
        /// Participant id.
        participant: String,
        /// Name.
        name: String,
        /// Network address, when known.
        addr: Option<String>,
    },
    /// A participant's connection ended.
    Leave {
        /// When.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        time: u64,
        /// Participant id.
        participant: String,
        /// Name.
        name: String,
    },
    /// A change the teacher made (pointer moves are summarized instead).
    Change {
        /// When.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        time: u64,
        /// Its seq.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        seq: u64,
        /// The patch as logged.
        patch: Box<crate::state::Patch>,
    },
    /// The pointer moves of one 10-second window.
    Pointer {
        /// The first move's time.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        time: u64,
        /// The first move's seq.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        from_seq: u64,
        /// The last move's seq.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        to_seq: u64,
        /// How many moves.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        moves: u64,
    },
    /// A hand raised or lowered.
    Hand {
        /// When.
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        time: u64,
        /// Participant id.
        participant: String,
        /// Name.
        name: String,
        /// Raised?
        up: bool,
    },
}

impl TimelineEvent {
    /// When it happened.
    pub fn time(&self) -> u64 {
        match self {
            TimelineEvent::Join { time, .. }
            | TimelineEvent::Leave { time, .. }
            | TimelineEvent::Change { time, .. }
            | TimelineEvent::Pointer { time, .. }
            | TimelineEvent::Hand { time, .. } => *time,
        }
    }
}
