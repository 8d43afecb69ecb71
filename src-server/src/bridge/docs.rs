//! The lesson's documents, put into Redis for the relays (docs/RELAY.md) when they are shown: the
//! manifest, the scanned-page list, a head, then the bytes in blocks of [`keys::DOC_BLOCK`], each
//! under the room's hash tag, with an expiry refreshed on each showing. The blocks holding the page
//! on screen go first, so remote students draw it while the rest is still on its way. The relays
//! serve them (`relay::docs`).

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use crate::cloud::connect::{Conn, Redis};
use crate::cloud::keys::{self, DocHead};
use crate::docs::Library;
use crate::engine::room::Room;
use crate::protocol::Doc;

/// Puts `doc` of `room` into Redis unless it is there whole, with its manifest and scanned pages;
/// refreshes the expiry of all of it. Runs on its own connection: a 50 MB upload must not hold up
/// the room's changes.
pub async fn publish(redis: Redis, docs: Arc<Library>, room: Arc<Room>, doc: Doc) {
    let id = room.info().id.clone();
    let Ok(mut conn) = redis.connect_blocking().await else { return };
    let Ok(size) = tokio::fs::metadata(docs.path(&doc)).await.map(|m| m.len()) else { return };
    let head_key = keys::doc(&id, &doc.sha256);
    let head: Option<Vec<u8>> =
        redis::cmd("GETRANGE").arg(&head_key).arg(0).arg(255).query_async(&mut conn).await.ok();
    let head = head.and_then(|json| serde_json::from_slice::<DocHead>(&json).ok());
    let scans = docs.scan_index(&doc).await;
    // Only what this server knows is believed: a head written by anyone else (another size, or
    // keys gone since) means the document is put there again, whole.
    if head == Some(DocHead { size, done: true }) && refresh(&mut conn, &id, &doc, size).await {
        return;
    }
    if let Err(e) = upload(&mut conn, &docs, &room, &doc, &scans.pages).await {
        tracing::warn!(error = %e, doc = %doc.id, "the document could not be put in redis; remote students wait for it");
    }
}

/// Sets `key` to `value` with the documents' expiry.
fn set(pipe: &mut redis::Pipeline, key: String, value: impl redis::ToRedisArgs) {
    pipe.cmd("SET").arg(key).arg(value).arg("EX").arg(keys::DOC_TTL_SECONDS).ignore();
}

/// Everything about a document, in order: what a relay's student reads first, then the blocks of
/// the page on screen, then the rest, then the head again marked done.
async fn upload(
    conn: &mut Conn,
    docs: &Library,
    room: &Room,
    doc: &Doc,
    scans: &[Option<[u64; 4]>],
) -> redis::RedisResult<()> {
    let id = room.info().id.clone();
    let path = docs.path(doc);
    let size = tokio::fs::metadata(&path).await.map_err(io)?.len();
    let mut pipe = redis::pipe();
    if let Some(manifest) = docs.manifest(doc).await {
        set(&mut pipe, keys::manifest(&id, &doc.sha256), manifest);
    }
    if let Ok(json) = serde_json::to_string(&crate::protocol::http::ScanIndex { pages: scans.to_vec() }) {
        set(&mut pipe, keys::scan(&id, &doc.sha256), json);
    }
    let head = DocHead { size, done: false };
    set(&mut pipe, keys::doc(&id, &doc.sha256), serde_json::to_string(&head).unwrap_or_default());
    pipe.exec_async(conn).await?;
    for i in order(head.blocks(), room.state().1.page, scans) {
        let (path, start) = (path.clone(), i * keys::DOC_BLOCK);
        let len = keys::DOC_BLOCK.min(size - start);
        let bytes =
            tokio::task::spawn_blocking(move || read_at(&path, start, len)).await.map_err(io)?.map_err(io)?;
        let mut pipe = redis::pipe();
        set(&mut pipe, keys::doc_block(&id, &doc.sha256, i), bytes);
        pipe.exec_async(conn).await?;
    }
    let done = DocHead { done: true, ..head };
    let mut pipe = redis::pipe();
    set(&mut pipe, keys::doc(&id, &doc.sha256), serde_json::to_string(&done).unwrap_or_default());
    pipe.exec_async(conn).await
}

/// The blocks of a document of `blocks` blocks in the order they are uploaded: those of `page`'s
/// image when it is a scanned page, then the first (where pdf.js starts reading), then the rest.
fn order(blocks: u64, page: u32, scans: &[Option<[u64; 4]>]) -> Vec<u64> {
    let mut first: Vec<u64> = Vec::new();
    if let Some(Some([offset, length, _, _])) = scans.get((page as usize).wrapping_sub(1)) {
        let end = (offset + length).div_ceil(keys::DOC_BLOCK).min(blocks);
        first.extend(offset / keys::DOC_BLOCK..end);
    }
    if blocks > 0 && !first.contains(&0) {
        first.push(0);
    }
    let rest = (0..blocks).filter(|i| !first.contains(i));
    first.iter().copied().chain(rest).collect()
}

/// Refreshes the expiry of a document of `size` bytes already whole in Redis: whether every key of
/// it was still there (if not, it is put there again).
async fn refresh(conn: &mut Conn, room: &str, doc: &Doc, size: u64) -> bool {
    let mut keys = vec![keys::doc(room, &doc.sha256), keys::scan(room, &doc.sha256)];
    if doc.manifest.is_some() {
        keys.push(keys::manifest(room, &doc.sha256));
    }
    keys.extend((0..DocHead { size, done: true }.blocks()).map(|i| keys::doc_block(room, &doc.sha256, i)));
    let mut pipe = redis::pipe();
    for key in &keys {
        pipe.cmd("EXPIRE").arg(key).arg(keys::DOC_TTL_SECONDS);
    }
    let there: redis::RedisResult<Vec<bool>> = pipe.query_async(conn).await;
    there.is_ok_and(|there| there.len() == keys.len() && there.iter().all(|t| *t))
}

/// Bytes `[start, start + len)` of the file at `path`.
fn read_at(path: &std::path::Path, start: u64, len: u64) -> std::io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = vec![0; len as usize];
    file.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// An I/O failure as a Redis error, so an upload stops at the first failure of either kind.
fn io(e: impl std::fmt::Display) -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Io, "reading the document", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::order;

    #[test]
    fn the_blocks_of_the_page_on_screen_go_first_then_the_start() {
        let block = crate::cloud::keys::DOC_BLOCK;
        let scans = [None, Some([5 * block + 10, block, 600, 800])];
        assert_eq!(order(8, 2, &scans), vec![5, 6, 0, 1, 2, 3, 4, 7]);
        assert_eq!(order(3, 1, &scans), vec![0, 1, 2]);
        assert_eq!(order(3, 0, &scans), vec![0, 1, 2]);
        assert_eq!(order(0, 2, &scans), Vec::<u64>::new());
    }
}
