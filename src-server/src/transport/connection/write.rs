//! A joined connection's writer: drains the outbox in batches (one flush per batch), turns a
//! conflation flag into one snapshot, sends WebSocket Pings to measure round trips, and closes a
//! connection that answered nothing for two heartbeats.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use tokio_util::sync::CancellationToken;

use super::socket::{Live, close_frame};
use crate::engine::outbox::{Batch, Item};
use crate::engine::room::Room;
use crate::engine::room::join::Joined;
use crate::protocol::close;
use crate::transport::host::Host;

type Sink = SplitSink<WebSocket, Message>;

/// The tail probe (docs/WIFI.md): a WebSocket Pong, unsolicited (RFC 6455 §5.5.3: no answer is
/// expected), `after` the last write that nothing has followed. If that write's last segment was lost,
/// the probe's segment arrives instead, its acknowledgement reports the hole, and TCP resends at once
/// rather than after its loss-probe or retransmission timer, which with a single segment in flight
/// wait at least 200 ms on every common system. A busy connection (pointer moves many times a
/// second) waits longer than its usual gap between writes, so only the last write of a burst is
/// probed: the next change is its own probe.
struct TailProbe {
    after: Duration,
    sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    armed: bool,
    last_write: Option<tokio::time::Instant>,
}

/// Writes closer together than this make a burst (60 pointer moves a second are 17 ms apart).
const BURST_GAP: Duration = Duration::from_millis(50);

impl TailProbe {
    fn new(after: Duration) -> TailProbe {
        TailProbe { after, sleep: None, armed: false, last_write: None }
    }

    /// A write went out: probe `after` from now unless another write comes first.
    fn arm(&mut self) {
        if self.after.is_zero() {
            return;
        }
        let now = tokio::time::Instant::now();
        let gap = self.last_write.map(|t| now.saturating_duration_since(t));
        self.last_write = Some(now);
        // In a burst, wait out one and a half usual gaps: the next write normally comes first.
        let wait = match gap {
            Some(g) if g < BURST_GAP => self.after.max(g * 3 / 2),
            _ => self.after,
        };
        let at = now + wait;
        match &mut self.sleep {
            Some(s) => s.as_mut().reset(at),
            // Made on the first write, so an idle connection's writer stays small.
            None => self.sleep = Some(Box::pin(tokio::time::sleep_until(at))),
        }
        self.armed = true;
    }

    /// Resolves when the probe is due (never while disarmed).
    async fn due(&mut self) {
        match (&mut self.sleep, self.armed) {
            (Some(s), true) => s.as_mut().await,
            _ => std::future::pending().await,
        }
        self.armed = false;
    }
}

/// Where a connection's snapshots come from: its room, and whether the client merges a partial one
/// (PROTOCOL-ADDITIONS O).
pub(super) struct Syncs {
    /// The room.
    pub(super) room: Arc<Room>,
    /// The client said `partial_sync` in its hello.
    pub(super) partial: bool,
}

/// Writes one batch in order, one flush for all. `covered` is the highest seq this connection already
/// has (from a patch or a snapshot): patches at or below it are skipped, so a snapshot is never followed
/// by patches it contains.
async fn write_batch(
    sink: &mut Sink,
    batch: &Batch,
    covered: &mut u64,
    syncs: &Syncs,
    app: &Host,
) -> Result<(), axum::Error> {
    let room = &syncs.room;
    let mut patches = 0u64;
    for item in &batch.items {
        match item {
            Item::Patch { seq, bytes, .. } => {
                if *seq > *covered {
                    *covered = *seq;
                    patches += 1;
                    sink.feed(text(bytes.clone())).await?;
                }
            }
            Item::Sync | Item::Resync => {
                // A client that fell behind is sent only the pages it lacks, if it can merge them; a
                // client that asked may hold a wrong state, and is sent all of it.
                let (seq, bytes) = match item {
                    Item::Sync if syncs.partial => room.sync_frame_after(*covered),
                    _ => room.sync_frame(),
                };
                *covered = (*covered).max(seq);
                app.metrics.syncs.increment(1);
                sink.feed(text(bytes)).await?;
            }
            Item::FullRoster => sink.feed(text(room.roster_frame())).await?,
            Item::Knocks => sink.feed(text(room.knocks_frame())).await?,
            Item::Roster(bytes) | Item::Msg(bytes) => sink.feed(text(bytes.clone())).await?,
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

/// A frame the room encoded, as a WebSocket text message. The engine encodes only JSON, which is
/// UTF-8, so the check never fails; were it to, the frame would reach the client as text it can
/// report rather than as a panic here.
fn text(bytes: Bytes) -> Message {
    match Utf8Bytes::try_from(bytes.clone()) {
        Ok(text) => Message::Text(text),
        Err(_) => Message::Text(Utf8Bytes::from(String::from_utf8_lossy(&bytes).into_owned())),
    }
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

/// Sends one control frame (a ping or a tail probe); false when the connection must end (during a
/// shutdown a failed send is the shutdown's doing, and the close comes through the outbox).
async fn send_control(
    sink: &mut Sink,
    msg: Message,
    cancel: &CancellationToken,
    live: &Live,
    app: &Host,
) -> bool {
    match Box::pin(guarded(sink.send(msg), cancel, live, app.timing.heartbeat)).await {
        Ok(()) => true,
        Err(Stalled::Gone) => app.shutdown.is_cancelled(),
        Err(Stalled::Dead) => false,
    }
}

pub(super) async fn write_loop(
    mut sink: Sink,
    joined: Joined,
    syncs: Syncs,
    app: Arc<Host>,
    live: Arc<Live>,
    cancel: CancellationToken,
) {
    let heartbeat = app.timing.heartbeat;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let outbox = &joined.outbox;
    let mut covered = 0u64;
    let mut batch = Batch::default();
    let mut probe = TailProbe::new(app.timing.tail_probe);
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
                            let _ = write_batch(&mut sink, &batch, &mut covered, &syncs, &app).await;
                            sink.send(close_frame(code, &reason)).await
                        })).await;
                    }
                    cancel.cancel();
                    return;
                }
                let wrote = !batch.items.is_empty();
                let written = guarded(write_batch(&mut sink, &batch, &mut covered, &syncs, &app), &cancel, &live, heartbeat).await;
                // Drop the frames now, not at the next batch: an idle connection would keep its welcome.
                batch.items.clear();
                match written {
                    // A wakeup can find nothing to send: only a real write is probed.
                    Ok(()) if wrote => probe.arm(),
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
            _ = probe.due() => {
                app.metrics.tail_probes.increment(1);
                if !send_control(&mut sink, Message::Pong(axum::body::Bytes::new()), &cancel, &live, &app).await {
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
                let ping = Message::Ping(now_us.to_be_bytes().to_vec().into());
                if !send_control(&mut sink, ping, &cancel, &live, &app).await {
                    cancel.cancel();
                    return;
                }
            }
        }
    }
}
