//! A joined connection's writer: drains the outbox in batches (one flush per batch), turns a
//! conflation flag into one snapshot, sends WebSocket Pings to measure round trips, and closes a
//! connection that answered nothing for two heartbeats.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket};
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use tokio_util::sync::CancellationToken;

use super::socket::{Live, close_frame};
use crate::engine::outbox::{Batch, Item};
use crate::engine::room::Room;
use crate::engine::room::join::Joined;
use crate::protocol::close;
use crate::server::app::AppState;

type Sink = SplitSink<WebSocket, Message>;

/// Writes one batch in order, one flush for all. `covered` is the highest seq this connection already
/// has (from a patch or a snapshot): patches at or below it are skipped, so a snapshot is never followed
/// by patches it contains.
async fn write_batch(
    sink: &mut Sink,
    batch: &Batch,
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

pub(super) async fn write_loop(
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
    let mut batch = Batch::default();
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
