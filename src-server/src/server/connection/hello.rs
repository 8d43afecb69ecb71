//! The hello phase (§3): the first frame must be a `hello`, in time; it is checked, and the connection
//! joins its room or is refused with the close code §10 gives.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};

use super::socket::{close_frame, is_too_big};
use crate::engine::room::Room;
use crate::engine::room::join::{JoinError, Joined};
use crate::metrics::Rejected;
use crate::protocol::{ClientMsg, ErrorCode, Hello, ParseError, ServerMsg, close};
use crate::server::app::AppState;

/// Sends one frame then closes, for refusals before the connection joins a room.
async fn refuse(sink: &mut SplitSink<WebSocket, Message>, error: Option<ServerMsg>, code: u16, reason: &str) {
    let send = async {
        if let Some(e) = error {
            sink.send(Message::Text(e.encode().into())).await?;
        }
        sink.send(close_frame(code, reason)).await
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), send).await;
}

/// Why the hello phase ends without a participant: what to count, say and close with. `None` where
/// the peer left on its own and there is nobody to tell.
struct Refusal {
    counted: Option<Rejected>,
    error: Option<ServerMsg>,
    code: u16,
    reason: String,
}

fn refusal(
    counted: impl Into<Option<Rejected>>,
    code: u16,
    reason: impl Into<String>,
) -> Option<Box<Refusal>> {
    Some(Box::new(Refusal { counted: counted.into(), error: None, code, reason: reason.into() }))
}

/// Reads and answers the `hello`: the joined participant and its room, or `None` once refused.
pub(super) async fn hello(
    sink: &mut SplitSink<WebSocket, Message>,
    stream: &mut SplitStream<WebSocket>,
    app: &AppState,
    addr: Option<IpAddr>,
) -> Option<(Joined, Arc<Room>)> {
    let outcome = match first_text(stream, app).await {
        Ok(text) => match parse(&text, app, addr) {
            Ok(hello) => admit(hello, app, addr),
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
            refuse(sink, r.error, r.code, &r.reason).await;
            None
        }
    }
}

/// The first data frame, which must come within the hello timeout and be text.
async fn first_text(
    stream: &mut SplitStream<WebSocket>,
    app: &AppState,
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
            Ok(Some(Err(_))) => Err(None),
            Ok(Some(Ok(Message::Binary(_)))) => {
                Err(refusal(Rejected::Binary, close::UNSUPPORTED_DATA, "binary frames are not accepted"))
            }
            Ok(Some(Ok(Message::Text(t)))) => Ok(t),
            Ok(Some(Ok(_))) => continue,
        };
    }
}

/// The `hello` in the first frame, unless the address is locked out or the frame is not a hello.
fn parse(text: &str, app: &AppState, addr: Option<IpAddr>) -> Result<Hello, Option<Box<Refusal>>> {
    if addr.is_some_and(|ip| app.failed_hellos.is_blocked(ip)) {
        return Err(refusal(Rejected::Auth, close::RATE_LIMITED, "too many failed joins; wait a minute"));
    }
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

/// Joins the room the hello asks for; a wrong secret counts against the address.
fn admit(
    hello: Hello,
    app: &AppState,
    addr: Option<IpAddr>,
) -> Result<(Joined, Arc<Room>), Option<Box<Refusal>>> {
    let room = app.room_for(&hello);
    match room.join(hello, addr, false) {
        Ok(joined) => Ok((joined, room)),
        Err(JoinError::BadRequest(m)) => Err(Some(Box::new(Refusal {
            counted: Some(Rejected::BadRequest),
            error: Some(ServerMsg::error(None, ErrorCode::BadRequest, m.clone())),
            code: close::PROTOCOL,
            reason: m,
        }))),
        Err(JoinError::Credentials) if addr.is_some_and(|ip| app.failed_hellos.fail(ip)) => {
            Err(refusal(Rejected::Auth, close::RATE_LIMITED, "too many failed joins; wait a minute"))
        }
        Err(e @ JoinError::Credentials) => Err(refusal(Rejected::Auth, e.close_code(), e.to_string())),
        Err(e) => Err(refusal(None, e.close_code(), e.to_string())),
    }
}
