//! The ids of the entries a relay wrote itself in the rooms' `up` streams, for each of its
//! connections (its join, or the latest `here` naming it): a refusal from the teacher's server must
//! answer one of them (section E). An entry being written is *pending* until Redis gives its id; a
//! refusal for a pending connection waits for it a moment (the teacher's server can read the entry
//! and answer before the relay hears its id back), and one for any other connection is checked at
//! once, so a forged refusal never holds up a room's feed.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::sync::Notify;

/// A connection of the relay: its room and its number there.
type Key = (String, u64);

/// How long a refusal waits for the id of an entry still being written.
const PENDING_WAIT: Duration = Duration::from_secs(1);

/// The relay's own entries, by connection.
#[derive(Default)]
pub struct OwnEntries {
    inner: std::sync::Mutex<Inner>,
    written: Notify,
}

#[derive(Default)]
struct Inner {
    ids: HashMap<Key, String>,
    pending: HashSet<Key>,
}

impl OwnEntries {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Entries for these connections are about to be written.
    pub fn pending(&self, keys: &[Key]) {
        self.lock().pending.extend(keys.iter().cloned());
    }

    /// Redis gave `id` to the entry for these connections (`online`: whether each is still here).
    pub fn written(&self, keys: Vec<Key>, id: &str, online: impl Fn(&Key) -> bool) {
        let mut inner = self.lock();
        for key in keys {
            inner.pending.remove(&key);
            if online(&key) {
                inner.ids.insert(key, id.to_string());
            }
        }
        drop(inner);
        self.written.notify_waiters();
    }

    /// A batch could not be written: its entries are not pending any more.
    pub fn failed(&self, keys: impl IntoIterator<Item = Key>) {
        let mut inner = self.lock();
        for key in keys {
            inner.pending.remove(&key);
        }
        drop(inner);
        self.written.notify_waiters();
    }

    /// The connection left.
    pub fn left(&self, key: &Key) {
        let mut inner = self.lock();
        inner.ids.remove(key);
        inner.pending.remove(key);
    }

    /// Whether `entry` is the latest entry this relay wrote for connection `conn` of `room`, waiting
    /// a moment if one is being written for it.
    pub async fn is_own(&self, room: &str, conn: u64, entry: &str) -> bool {
        let key = (room.to_string(), conn);
        let deadline = tokio::time::Instant::now() + PENDING_WAIT;
        loop {
            let written = self.written.notified();
            tokio::pin!(written);
            written.as_mut().enable();
            {
                let inner = self.lock();
                if inner.ids.get(&key).is_some_and(|id| id == entry) {
                    return true;
                }
                if !inner.pending.contains(&key) {
                    return false;
                }
            }
            if tokio::time::timeout_at(deadline, written).await.is_err() {
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_refusal_waits_for_an_entry_being_written_and_not_for_any_other() {
        let entries = std::sync::Arc::new(OwnEntries::default());
        let key = ("r1".to_string(), 7);
        // Nothing pending: a refusal is answered at once.
        assert!(!entries.is_own("r1", 7, "1-0").await);
        entries.pending(std::slice::from_ref(&key));
        let waiting = {
            let e = entries.clone();
            tokio::spawn(async move { e.is_own("r1", 7, "5-0").await })
        };
        tokio::task::yield_now().await;
        entries.written(vec![key.clone()], "5-0", |_| true);
        assert!(waiting.await.unwrap(), "the refusal of the entry just written is the relay's own");
        assert!(!entries.is_own("r1", 7, "4-0").await, "another entry is not");
        entries.left(&key);
        assert!(!entries.is_own("r1", 7, "5-0").await, "nor one of a connection that left");
    }
}
