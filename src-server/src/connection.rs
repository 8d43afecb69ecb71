//! One WebSocket connection: the hello handshake, then a reader (frames in) and a writer (outbox out).
//!
//! The reader validates and rate-limits every frame and calls the room; replies go through the same
//! outbox as patches, so a connection's frames leave in one order. The writer drains the outbox in
//! batches (one flush per batch), turns a conflation flag into one snapshot, sends WebSocket Pings to
//! measure round trips, and closes a connection that answered nothing for two heartbeats. Every close the
//! server initiates goes through the outbox, so queued frames (the `ended` patch, an `error`) precede it.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite;
use tokio_util::sync::CancellationToken;

use crate::limits::frame_limiter;
use crate::metrics::Rejected;
use crate::outbox::{Item, Outbox};
use crate::protocol::{ClientMsg, ErrorCode, ParseError, Role, ServerMsg, close, now_ms};
use crate::room::{JoinError, Joined, Room};
use crate::server::AppState;

/// Liveness shared by a connection's reader and writer.
#[derive(Debug)]
struct Live {
    start: Instant,
    /// Milliseconds since `start` when the peer last sent anything.
    last_seen_ms: AtomicU64,
    /// Payload (µs since `start`) of the last WebSocket Ping sent; only its Pong counts as a round trip.
    last_ping_us: AtomicU64,
}

impl Live {
    fn touch(&self) {
        self.last_seen_ms.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    fn silent_for(&self) -> Duration {
        let last = self.last_seen_ms.load(Ordering::Relaxed);
        Duration::from_millis((self.start.elapsed().as_millis() as u64).saturating_sub(last))
    }
}

fn close_frame(code: u16, reason: &str) -> Message {
    // A close reason may hold at most 123 bytes.
    let mut end = reason.len().min(120);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from(&reason[..end]) }))
}

fn is_too_big(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(tungstenite::Error::Capacity(_)) = err.downcast_ref::<tungstenite::Error>() {
            return true;
        }
        source = err.source();
    }
    false
}

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
async fn hello(
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
    let room = app.room();
    let joined = match room.join(hello, addr, false) {
        Ok(j) => j,
        Err(e) => {
            let (mut code, mut reason) = e.close();
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

/// Runs a connection from upgrade to close.
pub fn run(socket: WebSocket, app: AppState, addr: Option<IpAddr>) -> impl Future<Output = ()> + Send {
    // Split before the future is made: an async fn keeps its parameters in the future for its whole
    // life, and a `WebSocket` is large; the two halves are a pointer each.
    let (sink, stream) = socket.split();
    run_split(sink, stream, app, addr)
}

async fn run_split(
    mut sink: SplitSink<WebSocket, Message>,
    mut stream: SplitStream<WebSocket>,
    app: AppState,
    addr: Option<IpAddr>,
) {
    let _alive = app.tracker.token();
    // The hello phase's futures are large and used once: boxed, they are freed once the peer joins,
    // which keeps every idle connection smaller.
    let Some((joined, room)) = Box::pin(hello(&mut sink, &mut stream, &app, addr)).await else {
        return;
    };
    let gauge = match joined.role {
        Role::Teacher => &app.metrics.teachers,
        Role::Student => &app.metrics.students,
    };
    gauge.increment(1.0);
    tracing::debug!(pid = %joined.pid, role = joined.role.as_str(), "joined");

    let live = Arc::new(Live {
        start: Instant::now(),
        last_seen_ms: AtomicU64::new(0),
        last_ping_us: AtomicU64::new(u64::MAX),
    });
    let conn_cancel = app.shutdown.child_token();
    let writer = tokio::spawn(write_loop(
        sink,
        joined.clone(),
        room.clone(),
        app.clone(),
        live.clone(),
        conn_cancel.clone(),
    ));
    read_loop(stream, &joined, &room, &app, &live, &conn_cancel).await;
    room.leave(&joined.pid, joined.conn);
    joined.outbox.stop();
    conn_cancel.cancel();
    let _ = writer.await;
    gauge.decrement(1.0);
    tracing::debug!(pid = %joined.pid, "left");
}

fn reply(outbox: &Outbox, msg: &ServerMsg) {
    outbox.push_or_close(Item::Msg(Utf8Bytes::from(msg.encode())));
}

async fn read_loop(
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

type Sink = SplitSink<WebSocket, Message>;

/// Writes one batch in order, one flush for all. `covered` is the highest seq this connection already
/// has (from a patch or a snapshot): patches at or below it are skipped, so a snapshot is never followed
/// by patches it contains.
async fn write_batch(
    sink: &mut Sink,
    batch: &crate::outbox::Batch,
    covered: &mut u64,
    room: &Room,
    app: &AppState,
) -> Result<(), axum::Error> {
    let mut patches = 0u64;
    for item in &batch.items {
        match item {
            Item::Patch { seq, bytes, .. } => {
                if *seq > *covered {
                    *covered = *seq;
                    patches += 1;
                    sink.feed(Message::Text(bytes.clone())).await?;
                }
            }
            Item::Sync => {
                let (seq, bytes) = room.sync_frame();
                *covered = (*covered).max(seq);
                app.metrics.syncs.increment(1);
                sink.feed(Message::Text(bytes)).await?;
            }
            Item::FullRoster => sink.feed(Message::Text(room.roster_frame())).await?,
            Item::Roster(bytes) | Item::Msg(bytes) => sink.feed(Message::Text(bytes.clone())).await?,
        }
    }
    sink.flush().await?;
    if patches > 0 {
        app.metrics.deliveries.increment(patches);
        // One clock read per batch; every patch written now gets its own latency.
        let now = Instant::now();
        for item in &batch.items {
            if let Item::Patch { accepted, .. } = item {
                app.metrics.fanout_seconds.record(now.saturating_duration_since(*accepted).as_secs_f64());
            }
        }
    }
    Ok(())
}

/// Resolves when the peer has been silent for two heartbeats.
async fn dead(live: &Live, heartbeat: Duration) {
    loop {
        let silent = live.silent_for();
        if silent >= heartbeat * 2 {
            return;
        }
        tokio::time::sleep(heartbeat * 2 - silent).await;
    }
}

/// Why a write could not finish.
enum Stalled {
    /// The write failed or the connection is being cancelled.
    Gone,
    /// The peer neither read nor answered for two heartbeats.
    Dead,
}

/// Runs one socket write, giving up when the connection is cancelled, the peer has been silent for two
/// heartbeats, or the write itself has not finished in two heartbeats (a peer that sends but never
/// reads). A slow reader that keeps reading is never cut off by this: its backlog is conflated instead.
async fn guarded<F: std::future::Future<Output = Result<(), axum::Error>>>(
    write: F,
    cancel: &CancellationToken,
    live: &Live,
    heartbeat: Duration,
) -> Result<(), Stalled> {
    let mut write = std::pin::pin!(write);
    // Almost every write completes at once (the socket has room): arm no timers for those. The first
    // poll also registers the waker, so a pending write is not lost.
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(write.as_mut().poll(cx))).await;
    if let std::task::Poll::Ready(r) = first {
        return r.map_err(|_| Stalled::Gone);
    }
    // Rare (the socket is full): boxed, so its timers do not enlarge every idle connection's writer.
    Box::pin(async move {
        tokio::select! {
            biased;
            r = write => r.map_err(|_| Stalled::Gone),
            _ = cancel.cancelled() => Err(Stalled::Gone),
            _ = dead(live, heartbeat) => Err(Stalled::Dead),
            _ = tokio::time::sleep(heartbeat * 2) => Err(Stalled::Dead),
        }
    })
    .await
}

async fn write_loop(
    mut sink: Sink,
    joined: Joined,
    room: Arc<Room>,
    app: AppState,
    live: Arc<Live>,
    cancel: CancellationToken,
) {
    let heartbeat = app.timing.heartbeat;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let outbox = &joined.outbox;
    let mut covered = 0u64;
    let mut batch = crate::outbox::Batch::default();
    loop {
        tokio::select! {
            biased;
            _ = outbox.wait() => {
                outbox.take_into(&mut batch);
                // A shutdown reaches the writer as a close in its outbox (`Room::close_all`).
                if batch.stop {
                    // The reader stopped: a last batch and close frame.
                    let close = batch.close.clone().or_else(|| {
                        app.shutdown.is_cancelled().then(|| (close::RESTARTING, "server shutting down".to_string()))
                    });
                    if let Some((code, reason)) = close {
                        let _ = Box::pin(tokio::time::timeout(Duration::from_millis(500), async {
                            let _ = write_batch(&mut sink, &batch, &mut covered, &room, &app).await;
                            sink.send(close_frame(code, &reason)).await
                        })).await;
                    }
                    cancel.cancel();
                    return;
                }
                let written = guarded(write_batch(&mut sink, &batch, &mut covered, &room, &app), &cancel, &live, heartbeat).await;
                // Drop the frames now, not at the next batch: an idle connection would keep its welcome.
                batch.items.clear();
                match written {
                    Ok(()) => {}
                    Err(Stalled::Gone) if app.shutdown.is_cancelled() => continue,
                    Err(_) => {
                        tracing::debug!(pid = %joined.pid, "peer not reading or gone; closing");
                        cancel.cancel();
                        return;
                    }
                }
                if let Some((code, reason)) = batch.close.take() {
                    Box::pin(async {
                        let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(close_frame(code, &reason))).await;
                        // Give the peer a moment to answer the close, then stop the reader.
                        let _ = tokio::time::timeout(Duration::from_secs(1), cancel.cancelled()).await;
                    }).await;
                    cancel.cancel();
                    return;
                }
            }
            _ = ping.tick() => {
                if live.silent_for() >= heartbeat * 2 {
                    tracing::debug!(pid = %joined.pid, "no answer for two heartbeats; closing");
                    cancel.cancel();
                    return;
                }
                let now_us = live.start.elapsed().as_micros() as u64;
                live.last_ping_us.store(now_us, Ordering::Relaxed);
                let ping = sink.send(Message::Ping(now_us.to_be_bytes().to_vec().into()));
                match Box::pin(guarded(ping, &cancel, &live, heartbeat)).await {
                    Ok(()) => {}
                    Err(Stalled::Gone) if app.shutdown.is_cancelled() => continue,
                    Err(_) => {
                        cancel.cancel();
                        return;
                    }
                }
            }
        }
    }
}
