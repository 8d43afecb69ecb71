//! Unit tests of a room's rules: who is seated, who waits, who is let in as whom, who guesses and
//! who is removed. They drive a [`Room`] through the API its transports use (a `hello` goes to
//! `join` or `knock`, a teacher's request to `decide`, `kick`, `set_waiting_room`, `new_code`) with
//! no socket, and read what each client would have been sent from its [`Outbox`]. Time is tokio's
//! paused clock, moved with `tokio::time::advance`.
//!
//! The rules the transport keeps before a `hello` reaches the room (failed hellos and knocks per
//! address a minute, the knock timeout, turning a code claim into a knock) are tested through a
//! real server in `tests/`.

mod admission;
mod guard;
mod knocks;
mod removal;
mod roster;
mod second;
mod twins;

use std::net::IpAddr;
use std::sync::Arc;

use futures_util::FutureExt;

use super::join::{JoinError, Joined};
use super::knock::{Came, Verdict, Waiting};
use super::{Room, RoomParts};
use crate::config::Limits;
use crate::engine::lesson::NoDocuments;
use crate::engine::outbox::{Item, Outbox};
use crate::engine::report::{LessonRecord, Reporter};
use crate::metrics::Metrics;
use crate::protocol::{ErrorCode, Hello, KnockEntry, LessonState, Role, RosterEntry, ServerMsg, You};

/// The join code of a test room (six digits, as the server makes them).
const CODE: &str = "482913";

/// The teacher key of a test room.
const KEY: &str = "the-teacher-key-of-a-test-room";

/// A room with a six-digit code and the default limits.
fn room() -> Arc<Room> {
    room_with(CODE, |_| {})
}

/// A room with this join code and the default limits changed by `limits`.
fn room_with(code: &str, limits: impl FnOnce(&mut Limits)) -> Arc<Room> {
    build(code, false, limits)
}

/// A relay's copy of a room (no teacher joins it, and it can hold no one).
fn mirror() -> Arc<Room> {
    build(CODE, true, |_| {})
}

fn build(code: &str, mirror: bool, limits: impl FnOnce(&mut Limits)) -> Arc<Room> {
    let mut l = Limits::default();
    limits(&mut l);
    Arc::new(Room::new(RoomParts {
        lesson: LessonRecord {
            room: "r-test".into(),
            title: "Quran, level 2".into(),
            code: code.into(),
            started_ms: crate::now_ms(),
            ended_ms: None,
            doc: None,
            revoked: Vec::new(),
            waiting_room: false,
        },
        state: LessonState::new(None),
        seq: 0,
        teacher_key: KEY.into(),
        docs: Arc::new(NoDocuments),
        reporter: Reporter::default(),
        metrics: Metrics::new(),
        limits: l,
        heartbeat_ms: 10_000,
        mirror,
        title_sig: None,
    }))
}

/// A device id (8 to 64 of `[A-Za-z0-9_-]`).
fn device(n: usize) -> String {
    format!("device-{n:04}")
}

/// An address on the school's network, its own for limits.
fn lan(n: u8) -> Option<IpAddr> {
    Some(IpAddr::from([192, 168, 1, n]))
}

/// A student's `hello` with a join code.
fn student(code: &str, name: &str, device: &str) -> Hello {
    Hello {
        v: Some(1.into()),
        role: Some("student".into()),
        code: Some(code.into()),
        name: Some(name.into()),
        device: Some(device.into()),
        ..Hello::default()
    }
}

/// A student's `hello` that knocks (or a code claim the transport turned into a knock).
fn knocking(name: &str, device: &str) -> Hello {
    Hello { code: None, knock: true, ..student("", name, device) }
}

/// A `hello` with a resume token.
fn resume(token: &str, device: &str) -> Hello {
    Hello { code: None, name: None, resume: Some(token.into()), ..student("", "", device) }
}

/// The teacher's `hello` with the key.
fn teacher_hello() -> Hello {
    Hello {
        v: Some(1.into()),
        role: Some("teacher".into()),
        key: Some(KEY.into()),
        device: Some("teacher-tablet".into()),
        ..Hello::default()
    }
}

/// A teacher joined with the key, its welcome already read.
fn teacher(room: &Room) -> Joined {
    let teacher = room.join(teacher_hello(), None, false).unwrap();
    let _ = sent(room, &teacher.outbox);
    teacher
}

/// A student seated with the right code (its welcome still in its outbox).
fn seated(room: &Room, name: &str, device: &str, addr: Option<IpAddr>) -> Joined {
    room.join(student(CODE, name, device), addr, false).unwrap()
}

/// A student's token, from its welcome (which is read).
fn token_of(room: &Room, joined: &Joined) -> String {
    sent(room, &joined.outbox).welcome().1
}

/// A knock without a code.
fn asks(room: &Arc<Room>, name: &str, device: &str, addr: Option<IpAddr>) -> Result<Waiting, JoinError> {
    room.knock(&knocking(name, device), addr, Came::Asking)
}

/// A knock with the right code, in the waiting room.
fn with_code(room: &Arc<Room>, name: &str, device: &str, addr: Option<IpAddr>) -> Result<Waiting, JoinError> {
    room.knock(&knocking(name, device), addr, Came::WithCode)
}

/// What became of a knock so far (`None`: it still waits).
fn verdict(waiting: &mut Waiting) -> Option<Verdict> {
    waiting.verdict().now_or_never()
}

/// The ids of a teacher's list of knocks.
fn ids(list: &[KnockEntry]) -> Vec<String> {
    list.iter().map(|k| k.id.clone()).collect()
}

/// What a client was sent since it was last read: its frames in order, markers rendered as its
/// writer would render them now, and the close its writer was asked for.
struct Sent {
    frames: Vec<ServerMsg>,
    close: Option<(u16, String)>,
}

/// Takes everything queued in `outbox`.
fn sent(room: &Room, outbox: &Outbox) -> Sent {
    let batch = outbox.take();
    let frames = batch
        .items
        .iter()
        .map(|item| {
            let bytes = match item {
                Item::Msg(b) | Item::Roster(b) | Item::Patch { bytes: b, .. } => b.clone(),
                Item::Sync | Item::Resync => room.sync_frame().1,
                Item::FullRoster => room.roster_frame(),
                Item::Knocks => room.knocks_frame(),
            };
            serde_json::from_slice(&bytes).unwrap()
        })
        .collect();
    Sent { frames, close: batch.close }
}

impl Sent {
    /// The `welcome`'s `you` and token; panics when there was none.
    fn welcome(&self) -> (You, String) {
        self.frames
            .iter()
            .find_map(|f| match f {
                ServerMsg::Welcome { you, token, .. } => Some((you.clone(), token.clone())),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no welcome in {:?}", self.frames))
    }

    /// The last list of knocks sent, if any was.
    fn knocks(&self) -> Option<Vec<KnockEntry>> {
        self.frames.iter().rev().find_map(|f| match f {
            ServerMsg::Knocks { knocks } => Some(knocks.clone()),
            _ => None,
        })
    }

    /// Every roster change, in order.
    fn roster(&self) -> Vec<RosterEntry> {
        let changes = self.frames.iter().filter_map(|f| match f {
            ServerMsg::Roster { changes } => Some(changes.clone()),
            _ => None,
        });
        changes.flatten().collect()
    }

    /// The latest roster change for participant `pid`.
    fn entry(&self, pid: &str) -> Option<RosterEntry> {
        self.roster().into_iter().rev().find(|e| e.id == pid)
    }

    /// Every `guessing` alert, as (wrong, waiting_room).
    fn guessing(&self) -> Vec<(u64, bool)> {
        let alerts = self.frames.iter().filter_map(|f| match f {
            ServerMsg::Guessing { wrong, waiting_room } => Some((*wrong, *waiting_room)),
            _ => None,
        });
        alerts.collect()
    }

    /// The ids of every `ok`.
    fn oks(&self) -> Vec<Option<u32>> {
        self.frames
            .iter()
            .filter_map(|f| if let ServerMsg::Ok { id, .. } = f { Some(*id) } else { None })
            .collect()
    }

    /// Every `error`, as (id, code).
    fn errors(&self) -> Vec<(Option<u32>, ErrorCode)> {
        let errors = self.frames.iter().filter_map(|f| match f {
            ServerMsg::Error { id, code, .. } => Some((*id, *code)),
            _ => None,
        });
        errors.collect()
    }

    /// Every `waiting_room` frame's setting.
    fn waiting_room(&self) -> Vec<bool> {
        let frames = self.frames.iter().filter_map(|f| match f {
            ServerMsg::WaitingRoom { on } => Some(*on),
            _ => None,
        });
        frames.collect()
    }

    /// Every `teacher` frame's presence.
    fn teacher_online(&self) -> Vec<bool> {
        let frames = self.frames.iter().filter_map(|f| match f {
            ServerMsg::Teacher { online } => Some(*online),
            _ => None,
        });
        frames.collect()
    }

    /// The close code the connection's writer was asked for.
    fn closed(&self) -> Option<u16> {
        self.close.as_ref().map(|(code, _)| *code)
    }
}
