//! The teacher's server's side of the relay (docs/RELAY.md): it publishes each room to Redis, signed,
//! and takes back what remote students do.
//!
//! The bridge is one more consumer of the rooms' reports, beside the session log. Its sink never
//! waits: a report it cannot queue is dropped, and the bridge then starts a new epoch from the
//! room's own state, so nothing wrong is ever published. The same happens whenever its Redis
//! connection is lost and found again. For each room it keeps the join details (`meta`), the latest
//! signed snapshot, and a stream of signed frames (`down`); a task per room reads the relays' `up`
//! stream with a blocking `XREAD` on a connection of its own (whose response timeout outlasts the
//! block; see `connect`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cloud::connect::Conn;
use tokio::sync::mpsc;

pub use super::feed::BridgeParts;
use super::feed::Feed;
use super::publish::{add_beat, beats, json, publish_all, publish_doc, publish_meta};
use crate::cloud::keys::{self, Snapshot};
use crate::engine::lesson::LessonRecord;
use crate::engine::report::{Event, Report, ReportSink};
use crate::protocol::signed::Kind;
use crate::protocol::{LessonState, ServerMsg};

/// Reports the bridge may hold before it drops one (and starts a new epoch).
const QUEUE: usize = 4096;

/// The bridge's end of the reports: queues them, never waits.
pub struct BridgeSink {
    tx: mpsc::Sender<Report>,
    lost: Arc<AtomicBool>,
}

impl ReportSink for BridgeSink {
    fn offer(&self, report: Report) -> Result<(), Report> {
        // Only what relays need: the class's own joins, hands and acks stay in the room.
        if !matches!(
            report.event,
            Event::Lesson { .. } | Event::Patch { .. } | Event::Revoked { .. } | Event::Teacher { .. }
        ) {
            return Ok(());
        }
        self.tx.try_send(report).map_err(|e| {
            self.lost.store(true, Ordering::Relaxed);
            match e {
                mpsc::error::TrySendError::Full(r) | mpsc::error::TrySendError::Closed(r) => r,
            }
        })
    }

    fn confirms(&self) -> bool {
        false
    }
}

/// The reports a bridge has yet to publish (the receiving end of its sink).
pub struct Queue {
    rx: mpsc::Receiver<Report>,
    lost: Arc<AtomicBool>,
}

/// A sink for the rooms' reporter, and the queue a bridge started later reads (rooms report from
/// the moment they are made, before the bridge can be given a way to find them).
pub fn channel() -> (Arc<BridgeSink>, Queue) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let lost = Arc::new(AtomicBool::new(false));
    (Arc::new(BridgeSink { tx, lost: lost.clone() }), Queue { rx, lost })
}

/// Runs a bridge until shutdown: publishes what `queue` receives, and reconnects to Redis whenever
/// it is lost.
pub async fn run(parts: BridgeParts, queue: Queue) {
    let Queue { mut rx, lost } = queue;
    let mut feeds: HashMap<String, Feed> = HashMap::new();
    let mut attempt = 0u32;
    loop {
        let conn = tokio::select! {
            _ = parts.shutdown.cancelled() => break,
            c = parts.client.connect() => c,
        };
        let mut conn = match conn {
            Ok(c) => c,
            Err(e) => {
                if attempt == 0 {
                    tracing::warn!(error = %e, "redis unreachable; the class carries on without remote students");
                } else {
                    tracing::debug!(error = %e, attempt, "redis still unreachable");
                }
                drain(&mut rx, &mut feeds);
                attempt += 1;
                let wait = crate::cloud::backoff::retry_after(attempt);
                tokio::select! {
                    _ = parts.shutdown.cancelled() => break,
                    _ = tokio::time::sleep(wait) => continue,
                }
            }
        };
        attempt = 0;
        // Whatever relays saw before is not known to continue: every room starts a new epoch.
        lost.store(false, Ordering::Relaxed);
        for (room, feed) in feeds.iter_mut() {
            restart(&parts, room, feed);
        }
        let mut ok = true;
        for (room, feed) in feeds.iter_mut() {
            ok &= publish_all(&mut conn, &parts, room, feed).await.is_ok();
        }
        if ok {
            tracing::info!("bridged to redis");
            ok = serve(&mut conn, &parts, &mut rx, &lost, &mut feeds).await;
        }
        if !ok && !parts.shutdown.is_cancelled() {
            tracing::warn!("lost redis; remote students will catch up when it is back");
            for (room, feed) in feeds.iter_mut() {
                if let Some(r) = feed.reader.take() {
                    r.abort();
                }
                if let Some(r) = (parts.find)(room) {
                    r.remote_all_left();
                }
            }
            continue;
        }
        break;
    }
    for feed in feeds.values_mut() {
        if let Some(r) = feed.reader.take() {
            r.abort();
        }
    }
}

/// Publishes until Redis fails (false) or the bridge is shut down (true).
async fn serve(
    conn: &mut Conn,
    parts: &BridgeParts,
    rx: &mut mpsc::Receiver<Report>,
    lost: &AtomicBool,
    feeds: &mut HashMap<String, Feed>,
) -> bool {
    let mut beat = tokio::time::interval(parts.heartbeat);
    loop {
        let result = tokio::select! {
            _ = parts.shutdown.cancelled() => return true,
            report = rx.recv() => match report {
                None => return true,
                Some(report) => on_report(conn, parts, feeds, report).await,
            },
            _ = beat.tick() => beats(conn, parts, feeds).await,
        };
        if result.is_err() {
            return false;
        }
        if lost.swap(false, Ordering::Relaxed) {
            // A report was dropped: what was published may miss a change. Start again from the rooms.
            tracing::warn!("the bridge fell behind; starting a new epoch");
            for (room, feed) in feeds.iter_mut() {
                restart(parts, room, feed);
                if publish_all(conn, parts, room, feed).await.is_err() {
                    return false;
                }
            }
        }
    }
}

/// Reports lost while Redis is away: keep only what the next connection needs (which rooms exist).
fn drain(rx: &mut mpsc::Receiver<Report>, feeds: &mut HashMap<String, Feed>) {
    while let Ok(report) = rx.try_recv() {
        match report.event {
            Event::Lesson { lesson, state } => {
                let feed = feeds
                    .entry(lesson.room.clone())
                    .or_insert_with(|| new_feed(lesson.clone(), state.clone()));
                feed.lesson = lesson;
            }
            // A removal made while Redis is away must still reach the relays' join details.
            Event::Revoked { pid } => {
                let relay_pid = pid.strip_prefix(crate::engine::room::remote::REMOTE_PREFIX);
                if let (Some(feed), Some(relay_pid)) = (feeds.get_mut(report.room.as_ref()), relay_pid) {
                    feed.revoked.push(relay_pid.to_string());
                }
            }
            _ => {}
        }
    }
}

/// A new epoch: later epochs are larger (the clock's milliseconds, then 10 random bits), so a client
/// refuses an older epoch's state as a replay; and within JavaScript's exact integers (below 2^53),
/// since a browser checks the same value.
fn new_epoch() -> u64 {
    ((crate::now_ms() << 10) | rand::random_range(0..1024u64)) & ((1 << 53) - 1)
}

fn new_feed(lesson: LessonRecord, state: Option<(u64, LessonState)>) -> Feed {
    let (seq, state) = state.unwrap_or_else(|| (0, LessonState::new(None)));
    let revoked = lesson
        .revoked
        .iter()
        .filter_map(|p| p.strip_prefix(crate::engine::room::remote::REMOTE_PREFIX).map(str::to_string))
        .collect();
    Feed {
        lesson,
        seq,
        state,
        epoch: new_epoch(),
        beat: 0,
        revoked,
        doc_published: None,
        unsnapped: 0,
        reader: None,
    }
}

/// A new epoch from the room's own state (continuity with what relays saw is not known).
fn restart(parts: &BridgeParts, room: &str, feed: &mut Feed) {
    if let Some(r) = (parts.find)(room) {
        (feed.seq, feed.state) = r.state();
    }
    feed.epoch = new_epoch();
    feed.doc_published = None; // Redis may have lost it: checked again
}

async fn on_report(
    conn: &mut Conn,
    parts: &BridgeParts,
    feeds: &mut HashMap<String, Feed>,
    report: Report,
) -> redis::RedisResult<()> {
    let room = report.room.to_string();
    match report.event {
        Event::Lesson { lesson, state: Some(state) } => {
            if let Some(old) = feeds.remove(&room).and_then(|f| f.reader) {
                old.abort();
            }
            // Kept before it is published: if Redis fails now, the reconnection publishes it.
            let feed = feeds.entry(room.clone()).or_insert(new_feed(lesson, Some(state)));
            publish_all(conn, parts, &room, feed).await?;
        }
        Event::Lesson { lesson, state: None } => {
            if let Some(feed) = feeds.get_mut(&room) {
                feed.lesson = lesson;
                publish_meta(conn, parts, &room, feed).await?;
                // The join details changed (a new code, the waiting room): relays read them again.
                let mut pipe = redis::pipe();
                keys::add_entry(&mut pipe, &keys::down(&room), &[("k", "details")]);
                pipe.exec_async(conn).await?;
            }
        }
        Event::Patch { seq, time, patch, .. } => {
            let Some(feed) = feeds.get_mut(&room) else { return Ok(()) };
            if seq != feed.seq + 1 {
                return Ok(()); // an older report (already in a snapshot)
            }
            feed.state.apply(&patch);
            feed.seq = seq;
            let signed = parts.signer.sign(Kind::State, &room, feed.epoch, seq, 0, &feed.state);
            // The snapshot is the whole state, ink and all: written for every change that counts,
            // but for motion (the pointer, the region, a stroke's points, sixty a second) only every
            // SNAPSHOT_EVERY changes. A relay that opens the room reads the entries since (mirrors.rs).
            feed.unsnapped += 1;
            let snapshot = (!patch.is_motion() || feed.unsnapped >= keys::SNAPSHOT_EVERY).then(|| Snapshot {
                seq,
                state: feed.state.clone(),
                signed: signed.clone(),
            });
            let frame = ServerMsg::Patch { seq, time, patch, signed: Some(signed) }.encode();
            // One transaction: a relay that reads the snapshot has every entry before it in it.
            let mut pipe = redis::pipe();
            keys::add_entry(pipe.atomic(), &keys::down(&room), &[("k", "patch"), ("f", &frame)]);
            if let Some(snapshot) = snapshot {
                feed.unsnapped = 0;
                pipe.set(keys::snapshot(&room), json(&snapshot)).ignore();
            }
            pipe.exec_async(conn).await?;
            publish_doc(parts, &room, feed);
            if feed.state.ended {
                publish_meta(conn, parts, &room, feed).await?;
                // The lesson is over: its keys go a day later, and the bridge forgets it now.
                let mut pipe = redis::pipe();
                let room_keys =
                    [keys::meta(&room), keys::snapshot(&room), keys::down(&room), keys::up(&room)];
                for key in room_keys.into_iter().chain([keys::beat(&room), keys::guesses(&room)]) {
                    pipe.cmd("EXPIRE").arg(key).arg(keys::DOC_TTL_SECONDS).ignore();
                }
                pipe.exec_async(conn).await?;
                if let Some(reader) = feeds.remove(&room).and_then(|f| f.reader) {
                    reader.abort();
                }
            }
        }
        // The teacher came or went: remote students hear of it now, signed, not at the next beat.
        Event::Teacher { .. } => {
            let Some(feed) = feeds.get_mut(&room).filter(|f| !f.state.ended) else { return Ok(()) };
            let mut pipe = redis::pipe();
            add_beat(&mut pipe, parts, &room, feed);
            pipe.exec_async(conn).await?;
        }
        Event::Revoked { pid } => {
            // A remote student removed by the teacher: every relay closes it and keeps it out.
            let Some(feed) = feeds.get_mut(&room) else { return Ok(()) };
            let Some(relay_pid) = pid.strip_prefix(crate::engine::room::remote::REMOTE_PREFIX) else {
                return Ok(());
            };
            feed.revoked.push(relay_pid.to_string());
            let mut pipe = redis::pipe();
            let removal = keys::Removal::sign(&parts.signer, &room, relay_pid);
            let fields = [("k", "kick"), ("pid", relay_pid), ("s", removal.sig.as_str())];
            keys::add_entry(&mut pipe, &keys::down(&room), &fields);
            pipe.exec_async(conn).await?;
            publish_meta(conn, parts, &room, feed).await?;
        }
        _ => {}
    }
    Ok(())
}
