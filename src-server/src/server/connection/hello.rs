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
use crate::metrics::Rejected;
use crate::protocol::{ClientMsg, ErrorCode, Hello, ParseError, ServerMsg, close};
use crate::server::host::{Host, NoRoom};

/// Reads and answers the `hello`: the joined participant and its room, or `None` once refused.
pub(super) async fn hello(
    sink: &mut SplitSink<WebSocket, Message>,
    stream: &mut SplitStream<WebSocket>,
    app: &Host,
    addr: Option<IpAddr>,
) -> Option<(Joined, Arc<Room>)> {
    let outcome = match first_text(stream, app).await {
        Ok(text) => match parse(&text) {
            Ok(hello)
                if hello.knock && hello.code.is_none() && hello.key.is_none() && hello.resume.is_none() =>
            {
                Box::pin(knock::wait(sink, stream, hello, app, addr, false)).await
            }
            // Someone is guessing (from this address, or the room's budget of wrong codes is spent):
            // a code is not checked now, right or wrong; the student waits for the teacher instead.
            Ok(hello) if is_code_claim(&hello) && !codes_checked(&hello, app, addr).await => {
                let hello = Hello { knock: true, code: None, ..hello };
                Box::pin(knock::wait(sink, stream, hello, app, addr, false)).await
            }
            Ok(hello) if is_code_claim(&hello) => match waiting_room(&hello, app).await {
                Some(room) => Box::pin(wait_with_code(sink, stream, hello, &room, app, addr)).await,
                None => admit(hello, app, addr).await,
            },
            Ok(hello) => admit(hello, app, addr).await,
            Err(r) => Err(r),
        },
        Err(r) => Err(r),
    };
    match outcome {
        Ok(joined) => Some(joined),
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

/// Whether this code claim's code is checked now: not while its address is over its quota of wrong
/// codes, nor while the room's budget of wrong codes is spent (docs/PROTOCOL-ADDITIONS.md, G).
async fn codes_checked(hello: &Hello, app: &Host, addr: Option<IpAddr>) -> bool {
    if addr.is_some_and(|ip| app.failed_hellos.is_blocked(ip)) {
        return false;
    }
    app.rooms.room_for(hello).await.map_or(true, |room| room.code_checks_open())
}

/// The room this code claim asks for, when its waiting room is on (and it is no relay's: there
/// nobody can be let in, and the room refuses the claim itself).
async fn waiting_room(hello: &Hello, app: &Host) -> Option<Arc<Room>> {
    app.rooms.room_for(hello).await.ok().filter(|r| !r.is_mirror() && r.waiting_room())
}

/// A code claim in the waiting room: a right code waits for the teacher (marked as having the code),
/// a wrong one is refused as anywhere else.
async fn wait_with_code(
    sink: &mut SplitSink<WebSocket, Message>,
    stream: &mut SplitStream<WebSocket>,
    hello: Hello,
    room: &Room,
    app: &Host,
    addr: Option<IpAddr>,
) -> Result<(Joined, Arc<Room>), Option<Box<Refusal>>> {
    let code = hello.code.clone().unwrap_or_default();
    let has_code = match room.check_code(&code) {
        Some(true) => true,
        Some(false) => return Err(join_refusal(JoinError::Credentials, app, addr, true)),
        None => false, // the room's budget of wrong codes is spent: not checked, as any knock
    };
    let hello = Hello { knock: true, code: None, ..hello };
    knock::wait(sink, stream, hello, app, addr, has_code).await
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

/// Joins the room the hello asks for.
async fn admit(
    hello: Hello,
    app: &Host,
    addr: Option<IpAddr>,
) -> Result<(Joined, Arc<Room>), Option<Box<Refusal>>> {
    let room = match app.rooms.room_for(&hello).await {
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
        Err(NoRoom::Unavailable) => {
            return Err(refusal(
                None,
                close::RESTARTING,
                "the relay cannot reach the lesson now; trying again",
            ));
        }
    };
    // A relay's students are remote to the lesson.
    let remote = room.is_mirror();
    let code_claim = is_code_claim(&hello);
    match room.join(hello, addr, remote) {
        Ok(joined) => Ok((joined, room)),
        Err(e) => Err(join_refusal(e, app, addr, code_claim)),
    }
}
