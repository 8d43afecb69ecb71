//! A relay's documents in memory: the blocks its students asked for, each read from Redis once
//! (however many students ask at once) and kept in a cache of bounded size, and the bound on how
//! many document requests each student may have open.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use quick_cache::Weighter;
use quick_cache::sync::Cache;

use crate::cloud::connect::Redis;
use crate::cloud::keys::{self, DocHead};

/// Blocks read from Redis at once on one relay: a student with a token cannot make the relay read
/// without end.
pub const DOC_READS: usize = 8;

/// Blocks read from Redis at once for one room: half the relay's, so that one busy room (or two
/// students of it asking without end) leaves turns for every other room. The relay's turns are
/// given in the order asked, so each room waits behind at most this many of each other room's.
pub const ROOM_READS: usize = DOC_READS / 2;

/// The most bytes of documents a relay keeps (a 50 MB book is served from Redis in parts; what a
/// class reads together is read once).
pub const CACHE_BYTES: u64 = 16 << 20;

/// Document requests one student may have open at once, whatever tokens they hold (a browser asks
/// for a page's pieces and the background download, a few at a time); more are answered 429.
pub const PER_STUDENT: usize = 4;

/// A block of one document of one room.
type BlockKey = (String, String, u64);

/// Weighs a block by its bytes.
#[derive(Clone)]
struct ByLength;

impl Weighter<BlockKey, Bytes> for ByLength {
    fn weight(&self, _key: &BlockKey, block: &Bytes) -> u64 {
        block.len() as u64 + 64
    }
}

/// Why a block could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Redis does not have it (yet): the teacher's server is still putting the document there.
    NotYet,
    /// Redis did not answer, or too many reads are under way.
    Unavailable,
}

/// The relay's document cache and its per-student bounds.
pub struct Blocks {
    cache: Cache<BlockKey, Bytes, ByLength>,
    reads: tokio::sync::Semaphore,
    /// Each room's own turns to read (see [`ROOM_READS`]); a room nobody reads for is forgotten.
    rooms: Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

impl Default for Blocks {
    fn default() -> Blocks {
        let items = (CACHE_BYTES / keys::DOC_BLOCK) as usize;
        Blocks {
            cache: Cache::with_weighter(items, CACHE_BYTES, ByLength),
            reads: tokio::sync::Semaphore::new(DOC_READS),
            rooms: Mutex::default(),
            open: Arc::default(),
        }
    }
}

/// One open document request of a student; the count goes down when it is dropped (its answer sent,
/// or the student gone).
pub struct Turn {
    open: Arc<Mutex<HashMap<String, usize>>>,
    student: String,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.student) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.student);
            }
        }
    }
}

impl Blocks {
    /// A turn for one more request of `student` (room and participant id), unless they have
    /// [`PER_STUDENT`] open.
    pub fn turn(&self, student: &str) -> Option<Turn> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(student.to_string()).or_default();
        if *n >= PER_STUDENT {
            return None;
        }
        *n += 1;
        Some(Turn { open: self.open.clone(), student: student.to_string() })
    }

    /// Bytes the cache holds now.
    pub fn cached_bytes(&self) -> u64 {
        self.cache.weight()
    }

    /// The document's head in Redis.
    pub async fn head(&self, redis: &Redis, room: &str, sha256: &str) -> Result<DocHead, Missing> {
        let mut conn = redis.connect().await.map_err(|_| Missing::Unavailable)?;
        // At most a small head's bytes: whoever writes into Redis could leave anything there.
        let json: Vec<u8> = redis::cmd("GETRANGE")
            .arg(keys::doc(room, sha256))
            .arg(0)
            .arg(255)
            .query_async(&mut conn)
            .await
            .map_err(|_| Missing::Unavailable)?;
        let head: DocHead = serde_json::from_slice(&json).map_err(|_| Missing::NotYet)?;
        // A document is at most 200 MiB (§9): a head saying more is not believed.
        if head.size > crate::docs::MAX_DOC_BYTES as u64 {
            return Err(Missing::NotYet);
        }
        Ok(head)
    }

    /// Block `i` of the document of `size` bytes: from memory, or read from Redis once for everyone
    /// who asks meanwhile. A block that is not exactly as long as the head says is not there.
    pub async fn block(
        &self,
        redis: &Redis,
        room: &str,
        sha256: &str,
        i: u64,
        size: u64,
    ) -> Result<Bytes, Missing> {
        let want = keys::DOC_BLOCK.min(size.saturating_sub(i.saturating_mul(keys::DOC_BLOCK)));
        if want == 0 {
            return Err(Missing::NotYet);
        }
        let key = (room.to_string(), sha256.to_string(), i);
        let guard = match self.cache.get_value_or_guard_async(&key).await {
            Ok(block) => return Ok(block),
            Err(guard) => guard,
        };
        let _turn = self.read_turn(room).await?;
        let mut conn = redis.connect().await.map_err(|_| Missing::Unavailable)?;
        let block: Vec<u8> = redis::cmd("GETRANGE")
            .arg(keys::doc_block(room, sha256, i))
            .arg(0)
            .arg(keys::DOC_BLOCK - 1)
            .query_async(&mut conn)
            .await
            .map_err(|_| Missing::Unavailable)?;
        if block.len() as u64 != want {
            return Err(Missing::NotYet);
        }
        let block = Bytes::from(block);
        let _ = guard.insert(block.clone());
        Ok(block)
    }
}

/// A turn to read one block from Redis for `room`: one of the room's, then one of the relay's.
type ReadTurn<'a> = (tokio::sync::OwnedSemaphorePermit, tokio::sync::SemaphorePermit<'a>);

impl Blocks {
    /// Waits (at most [`READ_WAIT`] in all) for a turn to read a block of `room`'s.
    async fn read_turn(&self, room: &str) -> Result<ReadTurn<'_>, Missing> {
        let ours = {
            let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
            // Forget the rooms nobody holds or waits for a turn of.
            rooms.retain(|_, turns| Arc::strong_count(turns) > 1);
            rooms
                .entry(room.to_string())
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(ROOM_READS)))
                .clone()
        };
        tokio::time::timeout(READ_WAIT, async {
            let room_turn = ours.acquire_owned().await.map_err(|_| Missing::Unavailable)?;
            let relay_turn = self.reads.acquire().await.map_err(|_| Missing::Unavailable)?;
            Ok((room_turn, relay_turn))
        })
        .await
        .map_err(|_| Missing::Unavailable)?
    }
}

/// How long a block read waits for its turn before the request is answered 503.
const READ_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_busy_room_leaves_turns_to_read_for_the_others() {
        let blocks = Blocks::default();
        let mut busy = Vec::new();
        for _ in 0..ROOM_READS {
            busy.push(blocks.read_turn("busy").await.unwrap());
        }
        // The busy room's next read waits, and gives up after READ_WAIT (503)...
        assert!(matches!(blocks.read_turn("busy").await, Err(Missing::Unavailable)));
        // ...while another room still reads at once, up to its own share.
        let mut other = Vec::new();
        for _ in 0..DOC_READS - ROOM_READS {
            let started = tokio::time::Instant::now();
            other.push(blocks.read_turn("other").await.unwrap());
            assert_eq!(started.elapsed(), std::time::Duration::ZERO);
        }
        // The relay's turns are all taken now: a third room waits until one ends.
        let third = blocks.read_turn("third");
        tokio::pin!(third);
        assert!(futures_util::poll!(&mut third).is_pending());
        drop(busy.pop());
        assert!(third.await.is_ok());
        drop((busy, other));
        assert!(blocks.read_turn("busy").await.is_ok());
        assert_eq!(blocks.rooms.lock().unwrap().len(), 1, "rooms nobody reads for are forgotten");
    }

    #[test]
    fn a_student_gets_four_turns_and_one_more_after_one_ends() {
        let blocks = Blocks::default();
        let turns: Vec<Turn> = (0..PER_STUDENT).map(|_| blocks.turn("t").unwrap()).collect();
        assert!(blocks.turn("t").is_none());
        assert!(blocks.turn("other").is_some());
        drop(turns);
        assert!(blocks.turn("t").is_some());
        assert!(blocks.open.lock().unwrap().is_empty(), "a student with nothing open is forgotten");
    }
}
