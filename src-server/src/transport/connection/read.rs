//! A joined connection's reader: every frame is rate-limited, parsed and handed to the room; replies go
//! through the same outbox as patches, so a connection's frames leave in one order.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket};
use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use tokio_util::sync::CancellationToken;

use super::socket::{Live, is_malformed, is_too_big};
use crate::engine::outbox::{Item, Outbox};
use crate::engine::rate::frame_limiter;
use crate::engine::room::Room;
use crate::engine::room::join::Joined;
use crate::engine::room::knock::Verdict;
use crate::metrics::Rejected;
use crate::now_ms;
use crate::protocol::{ClientMsg, ErrorCode, ParseError, Role, ServerMsg, close};
use crate::transport::host::Host;

/// A connection's frame rate limit (§10): every frame counts, control frames included, since a Ping
/// flood costs as much as a text flood. A refused frame gets one `rate_limited` error a second; more
/// refusals in a row than the burst close the connection with 4029.
struct RateGate {
    limiter: governor::DefaultDirectRateLimiter,
    rate: u32,
    burst: u32,
    refused_in_a_row: u32,
    last_error: Option<Instant>,
}

impl RateGate {
    fn new(role: Role, app: &Host) -> RateGate {
        let limits = &app.limits;
        let (rate, burst) = match role {
            Role::Teacher => (limits.teacher_rate, limits.teacher_burst),
            Role::Student => (limits.student_rate, limits.student_burst),
        };
        RateGate { limiter: frame_limiter(rate, burst), rate, burst, refused_in_a_row: 0, last_error: None }
    }

    /// Whether this frame may be handled; a refusal is answered (or the connection closed) here.
    fn admit(&mut self, outbox: &Outbox, app: &Host) -> bool {
        if self.limiter.check().is_ok() {
            return true;
        }
        app.metrics.reject(Rejected::RateLimited);
        self.refused_in_a_row += 1;
        if self.refused_in_a_row > self.burst {
            outbox.close(close::RATE_LIMITED, "too many frames; slow down");
        } else if self.last_error.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            self.last_error = Some(Instant::now());
            let message = format!("at most {} frames a second", self.rate);
            reply(outbox, &ServerMsg::error(None, ErrorCode::RateLimited, message));
        }
        false
    }
}

/// Reads frames until the peer goes, the connection is cancelled, or a violation closes it.
pub(super) async fn read_loop(
    mut stream: SplitStream<WebSocket>,
    joined: &Joined,
    room: &Room,
    app: &Host,
    live: &Live,
    cancel: &CancellationToken,
) {
    let mut gate = RateGate::new(joined.role, app);
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
                } else if is_malformed(&e) {
                    app.metrics.reject(Rejected::Protocol);
                    outbox.close(close::PROTOCOL, "malformed WebSocket frame");
                }
                return;
            }
            Some(Ok(m)) => m,
        };
        live.touch();
        // Closing: wait for the peer's close reply, ignore anything else.
        if outbox.is_closing() || matches!(msg, Message::Close(_)) || !gate.admit(outbox, app) {
            continue;
        }
        match msg {
            Message::Text(text) => {
                gate.refused_in_a_row = 0;
                on_text(&text, joined, room, app);
            }
            Message::Binary(_) => {
                app.metrics.reject(Rejected::Binary);
                outbox.close(close::UNSUPPORTED_DATA, "binary frames are not accepted");
            }
            // A second path's round trip is not its student's (the roster shows the first's).
            Message::Pong(_) if joined.second => {}
            Message::Pong(payload) => on_pong(&payload, live, room, &joined.pid),
            Message::Ping(_) | Message::Close(_) => {}
        }
    }
}

/// Only the answer to our latest Ping is a round trip; anything else is ignored.
fn on_pong(payload: &[u8], live: &Live, room: &Room, pid: &str) {
    let Ok(sent) = <[u8; 8]>::try_from(payload) else { return };
    let sent_us = u64::from_be_bytes(sent);
    if live.last_ping_us.swap(u64::MAX, Ordering::Relaxed) == sent_us {
        let now_us = live.start.elapsed().as_micros() as u64;
        let rtt_ms = u32::try_from(now_us.saturating_sub(sent_us).div_ceil(1000)).unwrap_or(u32::MAX);
        room.rtt(pid, rtt_ms);
    }
}

fn on_text(text: &str, joined: &Joined, room: &Room, app: &Host) {
    match ClientMsg::parse(text) {
        Err(ParseError::NotJson(m)) => {
            app.metrics.reject(Rejected::Protocol);
            joined.outbox.close(close::PROTOCOL, m);
        }
        Err(ParseError::BadRequest { id, message }) => {
            app.metrics.reject(Rejected::BadRequest);
            reply(&joined.outbox, &ServerMsg::error(id, ErrorCode::BadRequest, message));
        }
        Ok(msg) => handle(msg, joined, room, app),
    }
}

fn reply(outbox: &Outbox, msg: &ServerMsg) {
    outbox.push_or_close(Item::Msg(msg.encode().into()));
}

fn forbidden(app: &Host, outbox: &Outbox, id: Option<u32>, what: &str) {
    app.metrics.reject(Rejected::Forbidden);
    reply(outbox, &ServerMsg::error(id, ErrorCode::Forbidden, what));
}

fn handle(msg: ClientMsg, joined: &Joined, room: &Room, app: &Host) {
    let outbox = &joined.outbox;
    let teacher = joined.role == Role::Teacher;
    match msg {
        ClientMsg::Hello(_) => {
            app.metrics.reject(Rejected::BadRequest);
            reply(outbox, &ServerMsg::error(None, ErrorCode::BadRequest, "hello was already said"));
        }
        ClientMsg::Ping { id } => reply(outbox, &ServerMsg::Pong { id, time: now_ms() }),
        ClientMsg::Resync { .. } => outbox.request_sync(),
        // A second path only listens (PROTOCOL-ADDITIONS N): what a student says goes on its first.
        _ if joined.second => {
            app.metrics.reject(Rejected::BadRequest);
            let message = "a second path only listens: send this on the first connection";
            reply(outbox, &ServerMsg::error(None, ErrorCode::BadRequest, message));
        }
        ClientMsg::Set { id, patch } if teacher => room.set(id, patch, &joined.outbox),
        ClientMsg::Kick { id, who } if teacher => room.kick(id, &who, outbox),
        ClientMsg::End { id } if teacher => room.end(id, &joined.outbox),
        ClientMsg::Admit { id, knocks } if teacher => room.decide(id, &knocks, Verdict::Admitted, outbox),
        ClientMsg::Deny { id, knocks } if teacher => room.decide(id, &knocks, Verdict::Denied, outbox),
        ClientMsg::NewCode { id } if teacher => room.new_code(id, outbox),
        ClientMsg::NewCode { id } => forbidden(app, outbox, id, "only the teacher can change the join code"),
        ClientMsg::WaitingRoom { id, on } if teacher => room.set_waiting_room(id, on, outbox),
        ClientMsg::WaitingRoom { id, .. } => {
            forbidden(app, outbox, id, "only the teacher can open or close the waiting room")
        }
        ClientMsg::Admit { id, .. } | ClientMsg::Deny { id, .. } => {
            forbidden(app, outbox, id, "only the teacher can let students in")
        }
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
