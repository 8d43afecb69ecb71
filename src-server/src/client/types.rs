//! The client's vocabulary: how it proves who it is, its settings, what it reports, and what its handle
//! asks of the session task.

use std::time::Duration;

use tokio::sync::oneshot;

use crate::protocol::{ClientMsg, ErrorCode, KnockEntry, LessonState, RoomInfo, RosterEntry, SetPatch, You};

/// How a client proves who it is.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// A student with the join code and a display name.
    Student {
        /// Join code.
        code: String,
        /// Display name.
        name: String,
    },
    /// A student without the code, who asks the teacher to be let in (a knock) and waits.
    Knock {
        /// Display name.
        name: String,
    },
    /// A teacher with the teacher key.
    Teacher {
        /// Teacher key.
        key: String,
    },
}

/// Settings of a [`Client`](super::Client).
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `wss://HOST:PORT/v1/ws`.
    pub url: String,
    /// The pinned certificate fingerprint.
    pub fingerprint: String,
    /// Code or key.
    pub credentials: Credentials,
    /// Stable device id (8 to 64 of `[A-Za-z0-9_-]`).
    pub device: String,
    /// Ack every state on arrival (at most 10 a second), as a display that shows it at once would.
    pub auto_ack: bool,
    /// Longest wait between reconnection attempts.
    pub max_backoff: Duration,
    /// Joining through a relay: the room, and the teacher's public key every state must be signed
    /// with (docs/PROTOCOL-ADDITIONS.md, section E).
    pub relay: Option<RelayTrust>,
}

/// What a client behind a relay checks the relay against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayTrust {
    /// The room on the teacher's server.
    pub room: String,
    /// The teacher's server's Ed25519 public key, base64url (`pk` in a join link).
    pub pk: String,
}

impl ClientOptions {
    /// Options with the protocol's defaults: auto-ack on, backoff capped at 5 s.
    pub fn new(
        url: impl Into<String>,
        fingerprint: impl Into<String>,
        credentials: Credentials,
        device: impl Into<String>,
    ) -> Self {
        ClientOptions {
            url: url.into(),
            fingerprint: fingerprint.into(),
            credentials,
            device: device.into(),
            auto_ack: true,
            max_backoff: Duration::from_secs(5),
            relay: None,
        }
    }
}

/// What produced a new state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The snapshot in `welcome`.
    Welcome,
    /// A patch applied in order.
    Patch,
    /// A snapshot after a gap or a full queue.
    Sync,
}

/// Something the client saw.
#[derive(Debug, Clone)]
pub enum Event {
    /// A `welcome`: connected (or reconnected).
    Connected {
        /// Who we are.
        you: You,
        /// The room.
        room: RoomInfo,
        /// True when this was a resume.
        resumed: bool,
        /// Whether a teacher is online.
        teacher_online: bool,
        /// Teachers: the whole roster.
        roster: Option<Vec<RosterEntry>>,
    },
    /// The lesson state changed.
    State {
        /// Seq of the state.
        seq: u64,
        /// The state.
        state: Box<LessonState>,
        /// What changed it.
        cause: Cause,
    },
    /// Roster changes (teachers).
    Roster(Vec<RosterEntry>),
    /// A knock is on the teacher's list and waits (students who knocked; repeated every heartbeat).
    Waiting,
    /// Every student waiting to be let in (teachers; the whole list, whenever it changes).
    Knocks(Vec<KnockEntry>),
    /// Someone is trying wrong join codes (teachers; PROTOCOL-ADDITIONS.md, G).
    Guessing {
        /// Wrong codes since the code was set.
        wrong: u64,
        /// Whether students joining with the code now wait to be let in.
        waiting_room: bool,
    },
    /// The waiting room is on or off (teachers; after connecting, and whenever it changes).
    WaitingRoom {
        /// On or off.
        on: bool,
    },
    /// The teacher came or went.
    Teacher {
        /// Online?
        online: bool,
    },
    /// An `error` not tied to a request of ours.
    Error {
        /// Error code.
        code: ErrorCode,
        /// Message.
        message: String,
    },
    /// The link dropped; the client will reconnect.
    Disconnected {
        /// Close code, if the server sent one.
        code: Option<u16>,
        /// Why.
        reason: String,
    },
    /// The client stopped for good (lesson ended, kicked, bad credentials, replaced, closed).
    Stopped {
        /// Close code, if any.
        code: Option<u16>,
        /// Why.
        reason: String,
    },
}

/// A request that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The server answered `error`.
    #[error("{code:?}: {message}")]
    Refused {
        /// Error code.
        code: ErrorCode,
        /// Message.
        message: String,
    },
    /// Not connected now.
    #[error("not connected")]
    Offline,
    /// The connection dropped before the answer.
    #[error("connection lost before the answer")]
    Lost,
}

/// A teacher's request, which the server answers with `ok` or `error`.
#[derive(Debug)]
pub(crate) enum Request {
    Set(Box<SetPatch>),
    Kick(String),
    End,
    Admit(Vec<String>),
    Deny(Vec<String>),
}

impl Request {
    /// The frame, with the request id the answer will carry.
    pub(crate) fn frame(self, id: u32) -> ClientMsg {
        match self {
            Request::Set(patch) => ClientMsg::Set { id: Some(id), patch: *patch },
            Request::Kick(who) => ClientMsg::Kick { id: Some(id), who },
            Request::End => ClientMsg::End { id: Some(id) },
            Request::Admit(knocks) => ClientMsg::Admit { id: Some(id), knocks },
            Request::Deny(knocks) => ClientMsg::Deny { id: Some(id), knocks },
        }
    }
}

/// The answer to a request: the seq of a `set`.
pub(crate) type Reply = oneshot::Sender<Result<Option<u64>, RequestError>>;

/// What the [`Client`](super::Client) handle asks of its session task.
#[derive(Debug)]
pub(crate) enum Command {
    Request { request: Box<Request>, reply: Reply },
    Ack(u64),
    Hand(bool),
    View(Option<u32>),
    Resync,
    Close,
}
