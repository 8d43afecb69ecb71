//! What remote students do, read back by the teacher's server: one task per room follows the relays'
//! `up` stream with a blocking `XREAD` on a connection of its own (no response timeout: the crate's
//! 500 ms default would cut every block short; see `connect`) and applies each entry to the room
//! ([`Room::remote_joined`] and the rest). It starts from where the stream stood just before the
//! bridge announced a new epoch (`publish_all`), never from wherever the stream's end is when its
//! first read comes: relays answer a new epoch by saying who they have within a millisecond or so,
//! and those entries must be read, or remote students show as offline until they reconnect.

use std::time::Duration;

use redis::streams::{StreamId, StreamReadReply};

use super::presence::Presence;
use crate::cloud::connect::Redis;
use crate::cloud::keys;
use crate::engine::room::Room;
use crate::protocol::sign::Signer;

/// How the teacher's server finds a room by id (its registry).
pub type FindRoom = std::sync::Arc<dyn Fn(&str) -> Option<std::sync::Arc<Room>> + Send + Sync>;

/// How long one blocking read waits before it is made again (and the task can notice shutdown).
const BLOCK: Duration = Duration::from_secs(2);

/// Follows room `room`'s `up` stream after entry `from` until shutdown; reconnects on its own after a
/// failure, and goes on from the last entry it read.
pub async fn read(
    client: Redis,
    room: String,
    from: String,
    find: FindRoom,
    signer: Signer,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let key = keys::up(&room);
    let mut last = from;
    let mut attempt = 0u32;
    let mut presence = Presence::default();
    while !shutdown.is_cancelled() {
        let mut conn = match client.connect_blocking().await {
            Ok(c) => c,
            Err(_) => {
                attempt += 1;
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(crate::cloud::backoff::retry_after(attempt)) => continue,
                }
            }
        };
        loop {
            let cmd = keys::read_after(&key, &last, 128, BLOCK);
            let read = cmd.query_async::<Option<StreamReadReply>>(&mut conn);
            let reply = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = read => r,
            };
            let Some(room) = find(&room) else { return };
            let Ok(reply) = reply else {
                // Back off before reconnecting: an error that comes back at once (a key of the wrong
                // type, say) must not spin the teacher's device.
                attempt += 1;
                tokio::time::sleep(crate::cloud::backoff::retry_after(attempt)).await;
                break;
            };
            let mut refused = Vec::new();
            for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
                last = entry.id.clone();
                attempt = 0;
                refused.extend(apply(&room, &mut presence, &entry));
            }
            presence.sweep(&room);
            if !refused.is_empty() {
                refuse(&client, &signer, room.info().id.as_str(), &refused).await;
            }
        }
    }
}

/// Tells the relays to close the connections the room refused (`k`: `refuse`, on the room's
/// stream, signed for that relay and connection), as the teacher's server would have closed them
/// itself (4029).
async fn refuse(client: &Redis, signer: &Signer, room: &str, refused: &[Refused]) {
    let Ok(mut conn) = client.connect().await else { return };
    let mut pipe = redis::pipe();
    for r in refused {
        let sig = keys::refusal_sig(signer, room, &r.relay, &r.pid, r.conn, &r.entry);
        let n = r.conn.to_string();
        let fields = [
            ("k", "refuse"),
            ("pid", r.pid.as_str()),
            ("relay", r.relay.as_str()),
            ("conn", &n),
            ("entry", r.entry.as_str()),
            ("s", &sig),
        ];
        keys::add_entry(&mut pipe, &keys::down(room), &fields);
    }
    let _: redis::RedisResult<()> = pipe.query_async(&mut conn).await;
}

/// One connection of a remote student the room refused: which relay, which student, which
/// connection there, and the relay's entry that asked.
struct Refused {
    relay: String,
    pid: String,
    conn: u64,
    entry: String,
}

/// Applies one entry; an entry that is not understood is skipped (a relay is not trusted to write
/// well-formed entries). The connections the room refused, if it did.
fn apply(room: &Room, presence: &mut Presence, entry: &StreamId) -> Vec<Refused> {
    let text = |field: &str| entry.get::<String>(field);
    let relay = text("relay").unwrap_or_default();
    if !presence.heard(&relay, entry.get::<u64>("every")) {
        return Vec::new();
    }
    let pid = text("pid").filter(|p| !p.is_empty() && p.len() <= 64);
    let details = || {
        let name = text("name").unwrap_or_default();
        (name, text("device").unwrap_or_default().chars().take(64).collect::<String>())
    };
    // The connections an entry names: a join's one (`conn`), a `here`'s list (`conns`; a few, more
    // are not refused).
    let conns = |field: &str| -> Vec<u64> {
        let list = text(field).unwrap_or_default();
        list.split(',').filter_map(|c| c.trim().parse().ok()).take(16).collect()
    };
    let refused = |pid: String, field: &str| {
        let entry = entry.id.clone();
        let refuse = |conn| Refused { relay: relay.clone(), pid: pid.clone(), conn, entry: entry.clone() };
        conns(field).into_iter().map(refuse).collect()
    };
    match (text("k").as_deref(), pid) {
        (Some("alive"), _) => {}
        (Some("reset"), _) => presence.reset(room, &relay),
        (Some("synced"), _) => presence.synced(room, &relay),
        (Some("join"), Some(pid)) => {
            let (name, device) = details();
            if !room.remote_joined(&relay, &pid, &name, &device) {
                return refused(pid, "conn"); // refused here (full, removed, ended): the relay closes it too
            }
        }
        // A relay saying who it has (after a new epoch, or after it lost Redis for a while).
        (Some("here"), Some(pid)) => {
            presence.here(&relay, &pid);
            let (name, device) = details();
            let n = entry.get::<u32>("n").unwrap_or(1);
            if !room.remote_here(&relay, &pid, &name, &device, n) {
                return refused(pid, "conns");
            }
        }
        (Some("leave"), Some(pid)) => room.remote_left(&relay, &pid),
        (Some("hand"), Some(pid)) => room.remote_hand(&pid, text("up").as_deref() == Some("1")),
        (Some("ack"), Some(pid)) => {
            if let Some(seq) = entry.get::<u64>("seq") {
                room.remote_ack(&pid, seq);
            }
        }
        _ => {}
    }
    Vec::new()
}
