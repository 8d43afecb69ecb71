//! What the bridge writes to Redis for a room besides its changes: the join details, the snapshot a
//! new epoch starts from, the signed beats, and the document (see `sink`).

use std::collections::HashMap;

use super::feed::{BridgeParts, Feed};
use crate::cloud::connect::Conn;
use crate::cloud::keys::{self, Meta, Snapshot};
use crate::protocol::signed::Kind;
use crate::protocol::{Beat, ServerMsg};

/// A signed beat for every room.
pub(super) async fn beats(
    conn: &mut Conn,
    parts: &BridgeParts,
    feeds: &mut HashMap<String, Feed>,
) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    for (room, feed) in feeds.iter_mut().filter(|(_, f)| !f.state.ended) {
        add_beat(&mut pipe, parts, room, feed);
    }
    pipe.exec_async(conn).await
}

/// Adds a signed beat of room `room` to `pipe`: its seq now, the time on this server's clock and
/// whether a teacher is connected, in the room's stream and as the room's latest beat.
pub(super) fn add_beat(pipe: &mut redis::Pipeline, parts: &BridgeParts, room: &str, feed: &mut Feed) {
    // Motion since the snapshot (the bridge skips it for up to SNAPSHOT_EVERY motion changes) is
    // written now, so that a beat never vouches for a seq newer than the snapshot.
    if feed.unsnapped > 0 {
        feed.unsnapped = 0;
        let signed = parts.signer.sign(Kind::State, room, feed.epoch, feed.seq, 0, &feed.state);
        let snapshot = Snapshot { seq: feed.seq, state: feed.state.clone(), signed };
        pipe.set(keys::snapshot(room), json(&snapshot)).ignore();
    }
    feed.beat += 1;
    let at = crate::now_ms();
    let teacher = (parts.find)(room).is_some_and(|r| r.online().0 > 0);
    let signed = parts.signer.sign_beat(room, feed.epoch, feed.seq, feed.beat, at, teacher);
    let frame = Beat { seq: feed.seq, n: feed.beat, at, teacher, signed }.frame().encode();
    keys::add_entry(pipe, &keys::down(room), &[("k", "beat"), ("f", &frame)]);
    pipe.set(keys::beat(room), frame).ignore();
}

/// The room's join details, its snapshot, and a `sync` in its stream for relays already following;
/// then its reader of remote students, if it has none.
pub(super) async fn publish_all(
    conn: &mut Conn,
    parts: &BridgeParts,
    room: &str,
    feed: &mut Feed,
) -> redis::RedisResult<()> {
    // A new reader starts where the stream stands before the new epoch is announced: what relays
    // write once they see it (who they have) comes after, and is read however late the reader starts.
    let reader_from = match &feed.reader {
        Some(r) if !r.is_finished() => None,
        _ => Some(keys::last_id(conn, &keys::up(room)).await?),
    };
    let signed = parts.signer.sign(Kind::State, room, feed.epoch, feed.seq, 0, &feed.state);
    let snapshot = Snapshot { seq: feed.seq, state: feed.state.clone(), signed: signed.clone() };
    let frame =
        ServerMsg::Sync { seq: feed.seq, state: feed.state.clone(), signed: Some(signed), partial: None }
            .encode();
    // The snapshot and its sync, then a beat of the new epoch, so that a relay's welcomes can say
    // at once how fresh the state is.
    let mut pipe = redis::pipe();
    pipe.atomic().set(keys::snapshot(room), json(&snapshot)).ignore();
    keys::add_entry(&mut pipe, &keys::down(room), &[("k", "sync"), ("f", &frame)]);
    add_beat(&mut pipe, parts, room, feed);
    // The join details with the title signed for this epoch, in the same step: a relay that sees
    // the new epoch and reads them again finds the new epoch's.
    pipe.set(keys::meta(room), json(&meta(parts, room, feed))).ignore();
    pipe.exec_async(conn).await?;
    publish_doc(parts, room, feed);
    if let Some(from) = reader_from {
        feed.reader = Some(parts.tracker.spawn(super::upstream::read(
            parts.client.clone(),
            room.to_string(),
            from,
            parts.find.clone(),
            parts.signer.clone(),
            parts.shutdown.clone(),
        )));
    }
    Ok(())
}

/// Puts the room's document into Redis (in the background) when it is not the one put there last.
pub(super) fn publish_doc(parts: &BridgeParts, room: &str, feed: &mut Feed) {
    let Some(doc) = feed.state.doc.clone() else { return };
    if feed.doc_published.as_deref() == Some(doc.sha256.as_str()) {
        return;
    }
    let Some(r) = (parts.find)(room) else { return };
    feed.doc_published = Some(doc.sha256.clone());
    let put = super::docs::publish(parts.client.clone(), parts.docs.clone(), r, doc);
    let stop = parts.shutdown.clone();
    parts.tracker.spawn(async move {
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = put => {}
        }
    });
}

/// Writes the room's join details again (a new code, the waiting room, a removal, the end).
pub(super) async fn publish_meta(
    conn: &mut Conn,
    parts: &BridgeParts,
    room: &str,
    feed: &Feed,
) -> redis::RedisResult<()> {
    let meta = meta(parts, room, feed);
    redis::cmd("SET").arg(keys::meta(room)).arg(json(&meta)).exec_async(conn).await
}

/// The room's join details as the teacher's server publishes them now. The title is signed for the
/// current epoch (section E), so a relay cannot show a renamed title once the server restarts.
fn meta(parts: &BridgeParts, room: &str, feed: &Feed) -> Meta {
    let title = crate::protocol::signed::title_digest(&feed.lesson.title);
    Meta {
        title: feed.lesson.title.clone(),
        title_sig: parts.signer.sign_digest(Kind::Title, room, feed.epoch, 0, 0, &title).sig,
        code: feed.lesson.code.clone(),
        pk: parts.signer.public(),
        secret: crate::engine::token::relay_secret(&parts.teacher_key, room),
        heartbeat_ms: u64::try_from(parts.heartbeat.as_millis()).unwrap_or(u64::MAX),
        epoch: feed.epoch,
        ended: feed.state.ended || feed.lesson.ended_ms.is_some(),
        revoked: feed.revoked.iter().map(|pid| keys::Removal::sign(&parts.signer, room, pid)).collect(),
        waiting_room: feed.lesson.waiting_room,
        max_participants: parts.max_participants,
    }
}

pub(super) fn json<T: serde::Serialize>(value: &T) -> String {
    // Plain data with string keys: serializing cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}
