//! The hello phase (§3): the first frame must be a `hello`, in time; it is checked, and the connection
//! joins its room or is refused with the close code §10 gives.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};

use super::socket::{close_frame, is_too_big};
use crate::engine::room::Room;
use crate::engine::room::join::{JoinError, Joined};
use crate::metrics::Rejected;
use crate::protocol::{ClientMsg, ErrorCode, ParseError, ServerMsg, close};
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

/// Reads and answers the `hello`: the joined participant and its room, or `None` once refused.
pub(super) async fn hello(
    sink: &mut SplitSink<WebSocket, Message>,
    stream: &mut SplitStream<WebSocket>,
    app: &AppState,
    addr: Option<IpAddr>,
) -> Option<(Joined, Arc<Room>)> {
    let shutdown = app.shutdown.clone();
    let deadline = tokio::time::Instant::now() + app.timing.hello_timeout;

    // Hello phase: the first data frame must be a `hello`, within the deadline.
    let text = loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => {
                refuse(sink, None, close::RESTARTING, "server shutting down").await;
                return None;
            }
            next = tokio::time::timeout_at(deadline, stream.next()) => next,
        };
        match next {
            Err(_) => {
                app.metrics.reject(Rejected::Protocol);
                refuse(sink, None, close::HELLO_TIMEOUT, "no hello in time").await;
                return None;
            }
            Ok(None) | Ok(Some(Ok(Message::Close(_)))) => return None,
            Ok(Some(Err(e))) => {
                if is_too_big(&e) {
                    app.metrics.reject(Rejected::TooBig);
                    refuse(sink, None, close::TOO_BIG, "frame over the size limit").await;
                }
                return None;
            }
            Ok(Some(Ok(Message::Binary(_)))) => {
                app.metrics.reject(Rejected::Binary);
                refuse(sink, None, close::UNSUPPORTED_DATA, "binary frames are not accepted").await;
                return None;
            }
            Ok(Some(Ok(Message::Text(t)))) => break t,
            Ok(Some(Ok(_))) => continue,
        }
    };
    if let Some(ip) = addr
        && app.failed_hellos.is_blocked(ip)
    {
        app.metrics.reject(Rejected::Auth);
        refuse(sink, None, close::RATE_LIMITED, "too many failed joins; wait a minute").await;
        return None;
    }
    let hello = match ClientMsg::parse(&text) {
        Ok(ClientMsg::Hello(h)) => h,
        Ok(_) => {
            app.metrics.reject(Rejected::Protocol);
            refuse(sink, None, close::PROTOCOL, "the first frame must be hello").await;
            return None;
        }
        Err(ParseError::NotJson(m)) => {
            app.metrics.reject(Rejected::Protocol);
            refuse(sink, None, close::PROTOCOL, &m).await;
            return None;
        }
        Err(ParseError::BadRequest { id, message }) => {
            app.metrics.reject(Rejected::Protocol);
            let err = ServerMsg::error(id, ErrorCode::BadRequest, message.clone());
            refuse(sink, Some(err), close::PROTOCOL, &message).await;
            return None;
        }
    };
    let room = app.room_for(&hello);
    let joined = match room.join(hello, addr, false) {
        Ok(j) => j,
        Err(e) => {
            let (mut code, mut reason) = (e.close_code(), e.to_string());
            let mut error = None;
            match &e {
                JoinError::BadRequest(m) => {
                    app.metrics.reject(Rejected::BadRequest);
                    error = Some(ServerMsg::error(None, ErrorCode::BadRequest, m.clone()));
                }
                JoinError::Credentials => {
                    app.metrics.reject(Rejected::Auth);
                    if addr.is_some_and(|ip| app.failed_hellos.fail(ip)) {
                        code = close::RATE_LIMITED;
                        reason = "too many failed joins; wait a minute".into();
                    }
                }
                _ => {}
            }
            refuse(sink, error, code, &reason).await;
            return None;
        }
    };
    Some((joined, room))
}
