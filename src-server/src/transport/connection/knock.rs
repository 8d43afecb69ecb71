//! A student that knocked (or whose code claim is held) waits here, before it has a seat or an outbox: `waiting` goes out at once
//! and every heartbeat (so its client knows the link lives), until a teacher decides, the student
//! leaves, the knock lapses, or the server stops. Frames the student sends meanwhile are ignored, up
//! to a bound.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};

use super::refusal::{Refusal, join_refusal, refusal};
use super::socket::{is_malformed, is_too_big};
use crate::engine::room::Room;
use crate::engine::room::join::Joined;
use crate::engine::room::knock::{Came, Verdict};
use crate::metrics::Rejected;
use crate::protocol::{Hello, ServerMsg, close};
use crate::transport::host::Host;

/// Frames a waiting student may send (all ignored) before it is closed for flooding.
const MAX_FRAMES_WHILE_WAITING: u32 = 64;

/// Knocks at `room`, and waits for the teacher: the joined student once let in, else the refusal.
/// `came`: how the knock came to wait (only knocks that ask without a code count against the
/// address's few a minute; a held code claim is answered alike whatever its code).
pub(super) async fn wait(
    sink: &mut SplitSink<WebSocket, Message>,
    stream: &mut SplitStream<WebSocket>,
    hello: Hello,
    room: Arc<Room>,
    app: &Host,
    addr: Option<IpAddr>,
    came: Came,
) -> Result<(Joined, Arc<Room>), Option<Box<Refusal>>> {
    let mut waiting = room.knock(&hello, addr, came).map_err(|e| join_refusal(e, app, addr, false))?;
    let heartbeat_ms = u64::try_from(app.timing.heartbeat.as_millis()).unwrap_or(u64::MAX);
    let frame = ServerMsg::Waiting { heartbeat_ms }.encode();
    let deadline = tokio::time::Instant::now() + app.timing.knock_timeout;
    let mut beat = tokio::time::interval(app.timing.heartbeat);
    let mut frames = 0u32;
    loop {
        tokio::select! {
            _ = app.shutdown.cancelled() => return Err(refusal(None, close::RESTARTING, "server shutting down")),
            _ = tokio::time::sleep_until(deadline) => {
                return Err(refusal(None, close::HELLO_TIMEOUT, "nobody let you in in time; ask again"));
            }
            verdict = waiting.verdict() => {
                return match verdict {
                    Verdict::Admitted => match waiting.enter(addr, false) {
                        Ok(joined) => Ok((joined, room.clone())),
                        Err(e) => Err(join_refusal(e, app, addr, false)),
                    },
                    other => {
                        let (code, reason) = other.close();
                        Err(refusal(None, code, reason))
                    }
                };
            }
            _ = beat.tick() => {
                let send = sink.send(Message::Text(frame.clone().into()));
                if !matches!(tokio::time::timeout(Duration::from_secs(2), send).await, Ok(Ok(()))) {
                    return Err(None);
                }
            }
            next = stream.next() => match next {
                Some(Err(e)) if is_too_big(&e) => {
                    return Err(refusal(Rejected::TooBig, close::TOO_BIG, "frame over the size limit"));
                }
                Some(Err(e)) if is_malformed(&e) => {
                    return Err(refusal(Rejected::Protocol, close::PROTOCOL, "malformed WebSocket frame"));
                }
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Err(None),
                Some(Ok(Message::Binary(_))) => {
                    return Err(refusal(Rejected::Binary, close::UNSUPPORTED_DATA, "binary frames are not accepted"));
                }
                Some(Ok(_)) => {
                    frames += 1;
                    if frames > MAX_FRAMES_WHILE_WAITING {
                        return Err(refusal(Rejected::RateLimited, close::RATE_LIMITED, "wait for the teacher"));
                    }
                }
            },
        }
    }
}
