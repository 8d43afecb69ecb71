//! One WebSocket connection: the hello handshake, then a reader (frames in) and a writer (outbox out).
//!
//! The reader validates and rate-limits every frame and calls the room; replies go through the same
//! outbox as patches, so a connection's frames leave in one order. The writer drains the outbox in
//! batches (one flush per batch), turns a conflation flag into one snapshot, sends WebSocket Pings to
//! measure round trips, and closes a connection that answered nothing for two heartbeats. Every close the
//! server initiates goes through the outbox, so queued frames (the `ended` patch, an `error`) precede it.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::StreamExt;
use futures_util::stream::{SplitSink, SplitStream};

mod elsewhere;
mod hello;
mod knock;
mod read;
mod refusal;
mod socket;
mod write;

use self::socket::Live;
use crate::protocol::Role;
use crate::transport::host::Host;

/// Answers a WebSocket upgrade (§2) with a lesson connection on `host`.
pub fn upgrade(upgrade: WebSocketUpgrade, host: Arc<Host>, peer: IpAddr) -> Response {
    let limit = host.limits.max_frame_bytes;
    upgrade
        .protocols([crate::protocol::SUBPROTOCOL])
        // Students send tiny frames, and tungstenite zero-fills its whole read chunk before every read:
        // a small chunk saves memory on every idle connection and time on every read. Larger frames
        // (up to the limit) still assemble, over several reads.
        .read_buffer_size(1024)
        .max_frame_size(limit)
        .max_message_size(limit)
        .on_upgrade(move |socket| run(socket, host, Some(peer)))
}

/// Runs a connection from upgrade to close.
pub fn run(socket: WebSocket, app: Arc<Host>, addr: Option<IpAddr>) -> impl Future<Output = ()> + Send {
    // Split before the future is made: an async fn keeps its parameters in the future for its whole
    // life, and a `WebSocket` is large; the two halves are a pointer each.
    let (sink, stream) = socket.split();
    run_split(sink, stream, app, addr)
}

async fn run_split(
    mut sink: SplitSink<WebSocket, Message>,
    mut stream: SplitStream<WebSocket>,
    app: Arc<Host>,
    addr: Option<IpAddr>,
) {
    let _alive = app.tracker.token();
    // The hello phase's futures are large and used once: boxed, they are freed once the peer joins,
    // which keeps every idle connection smaller.
    let Some((joined, room, partial)) = Box::pin(hello::hello(&mut sink, &mut stream, &app, addr)).await
    else {
        return;
    };
    let gauge = match joined.role {
        _ if joined.second => &app.metrics.second_paths,
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
    // Awaited below; on the tracker too, so no task of the host is outside it.
    let writer = app.tracker.spawn(write::write_loop(
        sink,
        joined.clone(),
        write::Syncs { room: room.clone(), partial },
        app.clone(),
        live.clone(),
        conn_cancel.clone(),
    ));
    read::read_loop(stream, &joined, &room, &app, &live, &conn_cancel).await;
    if joined.second {
        room.leave_second(joined.conn);
    } else {
        room.leave(&joined.pid, joined.conn);
    }
    joined.outbox.stop();
    conn_cancel.cancel();
    let _ = writer.await;
    gauge.decrement(1.0);
    tracing::debug!(pid = %joined.pid, "left");
}
