//! The hello phase (§3): the first frame must be a `hello`, in time; it is checked, and the connection
//! joins its room or is refused with the close code §10 gives.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use futures_util::StreamExt;
use futures_util::stream::{SplitSink, SplitStream};

use super::knock;
use super::refusal::{Refusal, join_refusal, refusal};
use super::socket::{is_malformed, is_too_big};
use crate::engine::room::Room;
use crate::engine::room::join::{JoinError, Joined};
use crate::engine::room::knock::Came;
use crate::metrics::Rejected;
use crate::protocol::{ClientMsg, ErrorCode, Hello, ParseError, ServerMsg, close};
use crate::transport::host::{Host, NoRoom};

/// Reads and answers the `hello`: the joined participant and its room, and whether the client merges
/// partial syncs (PROTOCOL-ADDITIONS O), or `None` once refused.
pub(super) async fn hello(
    sink: &mut SplitSink<WebSocket, Message>,
    stream: &mut SplitStream<WebSocket>,
    app: &Host,
    addr: Option<IpAddr>,
) -> Option<(Joined, Arc<Room>, bool)> {
    let mut partial = false;
    let outcome = match first_text(stream, app).await {
        Ok(text) => match parse(&text).inspect(|h| partial = h.partial_sync) {
            // A second path (PROTOCOL-ADDITIONS N) is never a knock nor a claim: without its
            // token it is refused as the room sees it.
            Ok(hello) if hello.second => admit(hello, app, addr).await,
            Ok(hello)
                if hello.knock && hello.code.is_none() && hello.key.is_none() && hello.resume.is_none() =>
            {
                Box::pin(ask(sink, stream, hello, app, addr)).await
            }
            Ok(hello) if is_code_claim(&hello) => Box::pin(claim(sink, stream, hello, app, addr)).await,
            Ok(hello) => admit(hello, app, addr).await,
            Err(r) => Err(r),
        },
        Err(r) => Err(r),
    };
    match outcome {
        Ok((joined, room)) => Some((joined, room, partial)),
        Err(None) => None,
        Err(Some(r)) => {
            if let Some(counted) = r.counted {
                app.metrics.reject(counted);
            }
            r.send(sink).await;
            None
        }
    }
}

/// The first data frame, which must come within the hello timeout and be text.
async fn first_text(
    stream: &mut SplitStream<WebSocket>,
    app: &Host,
) -> Result<Utf8Bytes, Option<Box<Refusal>>> {
    let deadline = tokio::time::Instant::now() + app.timing.hello_timeout;
    loop {
        let next = tokio::select! {
            _ = app.shutdown.cancelled() => return Err(refusal(None, close::RESTARTING, "server shutting down")),
            next = tokio::time::timeout_at(deadline, stream.next()) => next,
        };
        return match next {
            Err(_) => Err(refusal(Rejected::Protocol, close::HELLO_TIMEOUT, "no hello in time")),
            Ok(None) | Ok(Some(Ok(Message::Close(_)))) => Err(None),
            Ok(Some(Err(e))) if is_too_big(&e) => {
                Err(refusal(Rejected::TooBig, close::TOO_BIG, "frame over the size limit"))
            }
            Ok(Some(Err(e))) if is_malformed(&e) => {
                Err(refusal(Rejected::Protocol, close::PROTOCOL, "malformed WebSocket frame"))
            }
            Ok(Some(Err(_))) => Err(None),
            Ok(Some(Ok(Message::Binary(_)))) => {
                Err(refusal(Rejected::Binary, close::UNSUPPORTED_DATA, "binary frames are not accepted"))
            }
            Ok(Some(Ok(Message::Text(t)))) => Ok(t),
            Ok(Some(Ok(_))) => continue,
        };
    }
}

/// A hello that claims a seat with the join code (not a resume token, not the teacher key: wrong
/// codes never keep those out).
fn is_code_claim(hello: &Hello) -> bool {
    hello.code.is_some() && hello.resume.is_none() && hello.key.is_none()
}

/// The refusal of an address that asks to join too often.
fn too_many_joins() -> Option<Box<Refusal>> {
    refusal(Rejected::RateLimited, close::RATE_LIMITED, "too many requests to join; wait a minute")
}

/// A knock without a code (section A): a few a minute from one address, then refused.
async fn ask(
    sink: &mut SplitSink<WebSocket, Message>,
    stream: &mut SplitStream<WebSocket>,
    hello: Hello,
    app: &Host,
    addr: Option<IpAddr>,
) -> Result<(Joined, Arc<Room>), Option<Box<Refusal>>> {
    if addr.is_some_and(|ip| app.knocks.over(ip)) {
        return Err(too_many_joins());
    }
    // A relay's room has no teacher to let anyone in.
    let Some(room) = room_for(&hello, app, addr).await.ok().filter(|r| !r.is_mirror()) else {
        return Err(join_refusal(JoinError::Credentials, app, addr, false));
    };
    knock::wait(sink, stream, hello, room, app, addr, Came::Asking).await
}

/// A claim of a seat with the join code (docs/PROTOCOL-ADDITIONS.md, G and H). While someone is
/// guessing (this address is over its quota of wrong codes, or the room's budget of them is spent)
/// the code is not answered: the claim waits for the teacher as a knock, right code or wrong, and
/// its code is checked for the teacher's eyes only. In the waiting room a right code waits too, and
/// a wrong one is refused. Otherwise the student is seated.
async fn claim(
    sink: &mut SplitSink<WebSocket, Message>,
    stream: &mut SplitStream<WebSocket>,
    hello: Hello,
    app: &Host,
    addr: Option<IpAddr>,
) -> Result<(Joined, Arc<Room>), Option<Box<Refusal>>> {
    let blocked = addr.is_some_and(|ip| app.failed_hellos.is_blocked(ip));
    let room = match room_for(&hello, app, addr).await {
        // A relay's room cannot hold a claim: it refuses (4029) while someone is guessing.
        Ok(room) if room.is_mirror() && blocked => {
            return Err(join_refusal(JoinError::WaitingRoom, app, addr, false));
        }
        Ok(room) if !room.is_mirror() => room,
        found => return admit_to(found, hello, app, addr).await,
    };
    if blocked || !room.code_checks_open() {
        return Box::pin(hold(sink, stream, hello, room, app, addr)).await;
    }
    // The budget the room shares with its relays, when it has one: spent there, the claim waits.
    let shared = Shared::take(app, &room).await;
    if shared == Shared::Spent {
        return Box::pin(hold(sink, stream, hello, room, app, addr)).await;
    }
    if room.waiting_room() {
        let code = hello.code.clone().unwrap_or_default();
        let checked = room.check_code(&code);
        if checked != Some(false) {
            shared.give_back(app, &room);
        }
        return match checked {
            Some(true) => {
                let hello = Hello { knock: true, code: None, ..hello };
                knock::wait(sink, stream, hello, room, app, addr, Came::WithCode).await
            }
            Some(false) => Err(join_refusal(JoinError::Credentials, app, addr, true)),
            None => Box::pin(hold(sink, stream, hello, room, app, addr)).await,
        };
    }
    let joined = room.join(hello.clone(), addr, false);
    if !matches!(joined, Err(JoinError::Credentials)) {
        shared.give_back(app, &room);
    }
    match joined {
        Ok(joined) => Ok((joined, room)),
        // The budget ran out between the look and the check.
        Err(JoinError::WaitingRoom) => Box::pin(hold(sink, stream, hello, room, app, addr)).await,
        Err(e) => Err(join_refusal(e, app, addr, true)),
    }
}

/// A code check taken from the budget a room shares with its relays (section G), if it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shared {
    /// Taken: given back unless the code was wrong.
    Taken,
    /// Spent: the claim waits (the teacher's server) or is refused (a relay).
    Spent,
    /// No shared budget, or it could not be asked: the room's own holds.
    Unknown,
}

impl Shared {
    async fn take(app: &Host, room: &Room) -> Shared {
        let Some(guesses) = app.guesses.get() else { return Shared::Unknown };
        match guesses.take(&room.info().id, room.code().len()).await {
            Some(true) => Shared::Taken,
            Some(false) => Shared::Spent,
            None => Shared::Unknown,
        }
    }

    fn give_back(self, app: &Host, room: &Room) {
        if let (Shared::Taken, Some(guesses)) = (self, app.guesses.get()) {
            guesses.give_back(&room.info().id, room.code().len());
        }
    }
}

/// A code claim held while someone is guessing: it waits for the teacher, who sees whether its code
/// was right (when its address may still have codes checked).
async fn hold(
    sink: &mut SplitSink<WebSocket, Message>,
    stream: &mut SplitStream<WebSocket>,
    hello: Hello,
    room: Arc<Room>,
    app: &Host,
    addr: Option<IpAddr>,
) -> Result<(Joined, Arc<Room>), Option<Box<Refusal>>> {
    // Counted whatever the code, so being held back says nothing of it.
    if addr.is_some_and(|ip| app.held_claims.over(ip)) {
        return Err(too_many_joins());
    }
    let right = room.check_held_code(hello.code.as_deref().unwrap_or_default(), addr);
    let hello = Hello { knock: true, code: None, ..hello };
    knock::wait(sink, stream, hello, room, app, addr, Came::Held { right }).await
}

/// The `hello` in the first frame, unless the frame is not a hello.
fn parse(text: &str) -> Result<Hello, Option<Box<Refusal>>> {
    match ClientMsg::parse(text) {
        Ok(ClientMsg::Hello(h)) => Ok(h),
        Ok(_) => Err(refusal(Rejected::Protocol, close::PROTOCOL, "the first frame must be hello")),
        Err(ParseError::NotJson(m)) => Err(refusal(Rejected::Protocol, close::PROTOCOL, m)),
        Err(ParseError::BadRequest { id, message }) => Err(Some(Box::new(Refusal {
            counted: Some(Rejected::Protocol),
            error: Some(ServerMsg::error(id, ErrorCode::BadRequest, message.clone())),
            code: close::PROTOCOL,
            reason: message,
        }))),
    }
}

/// The room the hello asks for. A room served now is found whatever the address did; for another,
/// an address that has asked a relay for too many rooms nobody has published is refused before the
/// relay asks Redis again.
async fn room_for(hello: &Hello, app: &Host, addr: Option<IpAddr>) -> Result<Arc<Room>, NoRoom> {
    if let Some(room) = app.rooms.served(hello) {
        return Ok(room);
    }
    let counted = addr.and_then(crate::engine::rate::counted);
    if counted.is_some_and(|ip| app.unpublished.is_blocked(ip)) {
        return Err(NoRoom::TooMany);
    }
    let room = app.rooms.room_for(hello).await;
    if let (Err(NoRoom::NotPublished), Some(ip)) = (&room, counted) {
        app.unpublished.fail(ip);
    }
    room
}

/// Joins the room the hello asks for.
async fn admit(
    hello: Hello,
    app: &Host,
    addr: Option<IpAddr>,
) -> Result<(Joined, Arc<Room>), Option<Box<Refusal>>> {
    let found = room_for(&hello, app, addr).await;
    admit_to(found, hello, app, addr).await
}

/// Joins the room found for the hello, or says why there is none.
async fn admit_to(
    found: Result<Arc<Room>, NoRoom>,
    hello: Hello,
    app: &Host,
    addr: Option<IpAddr>,
) -> Result<(Joined, Arc<Room>), Option<Box<Refusal>>> {
    let room = match found {
        Ok(room) => room,
        // A resume token for a room that is gone (a lesson that ended) is common behind one address
        // (a load balancer, a school's NAT) and guesses nothing: refused, not counted.
        Err(NoRoom::Unknown) if hello.resume.is_some() => {
            return Err(refusal(None, close::BAD_CREDENTIALS, "that lesson is not here"));
        }
        Err(NoRoom::Unknown) => {
            return Err(join_refusal(JoinError::Credentials, app, addr, is_code_claim(&hello)));
        }
        Err(NoRoom::Ended) => return Err(refusal(None, close::ENDED, "the lesson has ended")),
        Err(NoRoom::Unavailable | NoRoom::NotPublished) => {
            return Err(refusal(
                None,
                close::RESTARTING,
                "the relay cannot reach the lesson now; trying again",
            ));
        }
        Err(NoRoom::TooMany) => return Err(too_many_joins()),
    };
    // A relay's students are remote to the lesson.
    let remote = room.is_mirror();
    let code_claim = is_code_claim(&hello);
    // A relay checks a code within the budget the room shares with the teacher's server and every
    // other relay: once it is spent there, the claim is refused as section G says (4029).
    let shared = if remote && code_claim { Shared::take(app, &room).await } else { Shared::Unknown };
    if shared == Shared::Spent {
        return Err(join_refusal(JoinError::WaitingRoom, app, addr, false));
    }
    let second = hello.second.then(|| hello.clone());
    let joined = room.join(hello, addr, remote);
    if !matches!(joined, Err(JoinError::Credentials)) {
        shared.give_back(app, &room);
    }
    let joined = match (joined, second) {
        (Err(JoinError::NotHere(pid)), Some(hello)) => {
            super::elsewhere::second_path(app, &room, &hello, &pid, addr).await
        }
        (joined, _) => joined,
    };
    match joined {
        Ok(joined) => Ok((joined, room)),
        Err(e) => Err(join_refusal(e, app, addr, code_claim)),
    }
}
