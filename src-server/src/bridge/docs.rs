//! The lesson's documents, put into Redis for the relays (docs/RELAY.md) when they are shown: the
//! bytes and the scanned-page list, each under the room's hash tag, with an expiry refreshed on each
//! showing. The relays serve them (`relay::docs`).

use std::sync::Arc;

use crate::cloud::connect::Redis;
use crate::cloud::keys;
use crate::docs::Library;
use crate::engine::room::Room;
use crate::protocol::Doc;

/// Puts `doc` of `room` into Redis unless it is there, with its scanned pages; refreshes its expiry.
/// Runs on its own connection: a 50 MB upload must not hold up the room's changes.
pub async fn publish(redis: Redis, docs: Arc<Library>, room: Arc<Room>, doc: Doc) {
    let id = room.info().id.clone();
    let (key, scan_key) = (keys::doc(&id, &doc.sha256), keys::scan(&id, &doc.sha256));
    // A connection of its own: a document's megabytes on the shared one would hold up (and time
    // out) every change published meanwhile.
    let Ok(mut conn) = redis.connect_blocking().await else { return };
    let there: bool = redis::cmd("EXPIRE")
        .arg(&key)
        .arg(keys::DOC_TTL_SECONDS)
        .query_async(&mut conn)
        .await
        .unwrap_or(false);
    if !there {
        let path = docs.path(&doc);
        let Ok(Ok(bytes)) = tokio::task::spawn_blocking(move || std::fs::read(path)).await else { return };
        let set = redis::cmd("SET")
            .arg(&key)
            .arg(bytes)
            .arg("EX")
            .arg(keys::DOC_TTL_SECONDS)
            .exec_async(&mut conn)
            .await;
        if let Err(e) = set {
            tracing::warn!(error = %e, doc = %doc.id, "the document could not be put in redis; remote students wait for it");
            return;
        }
    }
    let scans = docs.scan_index(&doc).await;
    if let Ok(json) = serde_json::to_string(scans.as_ref()) {
        let _: redis::RedisResult<()> = redis::cmd("SET")
            .arg(&scan_key)
            .arg(json)
            .arg("EX")
            .arg(keys::DOC_TTL_SECONDS)
            .query_async(&mut conn)
            .await;
    }
}
