//! A joined connection's reader: every frame is rate-limited, parsed and handed to the room; replies go
//! through the same outbox as patches, so a connection's frames leave in one order.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use tokio_util::sync::CancellationToken;

use super::socket::{Live, is_too_big};
use crate::engine::outbox::{Item, Outbox};
use crate::engine::rate::frame_limiter;
use crate::engine::room::Room;
use crate::engine::room::join::Joined;
use crate::metrics::Rejected;
use crate::now_ms;
use crate::protocol::{ClientMsg, ErrorCode, ParseError, Role, ServerMsg, close};
use crate::server::app::AppState;

pub(super) async fn read_loop(
    mut stream: SplitStream<WebSocket>,
    joined: &Joined,
    room: &Room,
    app: &AppState,
    live: &Live,
    cancel: &CancellationToken,
) {
    let limits = &app.limits;
    let (rate, burst) = match joined.role {
        Role::Teacher => (limits.teacher_rate, limits.teacher_burst),
        Role::Student => (limits.student_rate, limits.student_burst),
    };
    let limiter = frame_limiter(rate, burst);
    let mut refused_in_a_row = 0u32;
    let mut last_rate_error: Option<Instant> = None;
    let outbox = &joined.outbox;
    let cancelled = cancel.cancelled();
    tokio::pin!(cancelled);
    loop {
        let next = tokio::select! {
            biased;
            _ = &mut cancelled => return,
            next = stream.next() => next,
        };
        let msg = match next {
            None => return,
            Some(Err(e)) => {
                if is_too_big(&e) {
                    app.metrics.reject(Rejected::TooBig);
                    outbox.close(close::TOO_BIG, "frame over the size limit");
                }
                return;
            }
            Some(Ok(m)) => m,
        };
        live.touch();
        if outbox.is_closing() {
            // Closing: wait for the peer's close reply, ignore anything else.
            continue;
        }
        if matches!(msg, Message::Close(_)) {
            continue;
        }
        // Every frame counts against the rate, control frames included: a Ping flood costs as much.
        if limiter.check().is_err() {
            app.metrics.reject(Rejected::RateLimited);
            refused_in_a_row += 1;
            if refused_in_a_row > burst {
                outbox.close(close::RATE_LIMITED, "too many frames; slow down");
                continue;
            }
            if last_rate_error.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                last_rate_error = Some(Instant::now());
                reply(
                    outbox,
                    &ServerMsg::error(
                        None,
                        ErrorCode::RateLimited,
                        format!("at most {rate} frames a second"),
                    ),
                );
            }
            continue;
        }
        let text = match msg {
            Message::Text(t) => t,
            Message::Binary(_) => {
                app.metrics.reject(Rejected::Binary);
                outbox.close(close::UNSUPPORTED_DATA, "binary frames are not accepted");
                continue;
            }
            Message::Pong(payload) => {
                // Only the answer to our latest Ping is a round trip; anything else is ignored.
                if let Ok(sent) = <[u8; 8]>::try_from(payload.as_ref()) {
                    let sent_us = u64::from_be_bytes(sent);
                    if live.last_ping_us.swap(u64::MAX, Ordering::Relaxed) == sent_us {
                        let now_us = live.start.elapsed().as_micros() as u64;
                        let rtt_ms =
                            u32::try_from(now_us.saturating_sub(sent_us).div_ceil(1000)).unwrap_or(u32::MAX);
                        room.rtt(&joined.pid, rtt_ms);
                    }
                }
                continue;
            }
            Message::Ping(_) | Message::Close(_) => continue,
        };
        refused_in_a_row = 0;
        match ClientMsg::parse(&text) {
            Err(ParseError::NotJson(m)) => {
                app.metrics.reject(Rejected::Protocol);
                outbox.close(close::PROTOCOL, m);
            }
            Err(ParseError::BadRequest { id, message }) => {
                app.metrics.reject(Rejected::BadRequest);
                reply(outbox, &ServerMsg::error(id, ErrorCode::BadRequest, message));
            }
            Ok(msg) => handle(msg, joined, room, app),
        }
    }
}

fn reply(outbox: &Outbox, msg: &ServerMsg) {
    outbox.push_or_close(Item::Msg(Utf8Bytes::from(msg.encode())));
}

fn forbidden(app: &AppState, outbox: &Outbox, id: Option<u32>, what: &str) {
    app.metrics.reject(Rejected::Forbidden);
    reply(outbox, &ServerMsg::error(id, ErrorCode::Forbidden, what));
}

fn handle(msg: ClientMsg, joined: &Joined, room: &Room, app: &AppState) {
    let outbox = &joined.outbox;
    let teacher = joined.role == Role::Teacher;
    match msg {
        ClientMsg::Hello(_) => {
            app.metrics.reject(Rejected::BadRequest);
            reply(outbox, &ServerMsg::error(None, ErrorCode::BadRequest, "hello was already said"));
        }
        ClientMsg::Ping { id } => reply(outbox, &ServerMsg::Pong { id, time: now_ms() }),
        ClientMsg::Resync { .. } => outbox.request_sync(),
        ClientMsg::Set { id, patch } if teacher => room.set(id, patch, &joined.outbox),
        ClientMsg::Kick { id, who } if teacher => room.kick(id, &who, outbox),
        ClientMsg::End { id } if teacher => room.end(id, &joined.outbox),
        ClientMsg::Set { id, .. } => forbidden(app, outbox, id, "only the teacher can change the lesson"),
        ClientMsg::Kick { id, .. } => forbidden(app, outbox, id, "only the teacher can remove a student"),
        ClientMsg::End { id } => forbidden(app, outbox, id, "only the teacher can end the lesson"),
        ClientMsg::Ack { .. } if teacher => {}
        ClientMsg::Ack { seq } => room.ack(&joined.pid, seq, outbox),
        ClientMsg::Hand { .. } | ClientMsg::View { .. } if teacher => {
            forbidden(app, outbox, None, "hand and view are for students")
        }
        ClientMsg::Hand { up } => room.hand(&joined.pid, up),
        ClientMsg::View { page } => room.view(&joined.pid, page, outbox),
    }
}
