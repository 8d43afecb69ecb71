//! A room's budget of wrong join codes kept in Redis (docs/PROTOCOL-ADDITIONS.md, G), shared by the
//! teacher's server and every relay: a token bucket of the same size and refill as a room's own
//! (`engine::room::guard`), taken from and given back to atomically by a script that reads Redis's
//! clock, so relays' clocks do not matter. A code check takes a token first and gives it back when
//! the code was right: concurrent guesses on many relays can never check more than the budget. (A
//! check that Redis answers after the 300 ms a join waits for it is not given back: a slow Redis can
//! cost the room a check or two, never give it more.)

use std::time::Duration;

use super::connect::Redis;
use super::keys;
use crate::transport::host::{GuessFuture, SharedGuesses};

/// How long a budget is kept after its last use (longer than it takes to refill).
const KEEP_MS: u64 = 2 * 3600 * 1000;

/// How long a code check waits for Redis before going on with the room's own budget alone.
const WAIT: Duration = Duration::from_millis(300);

/// Takes one token, refilled at `ARGV[2]` a millisecond up to `ARGV[1]`: 1 if taken, 0 if spent.
const TAKE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cap = tonumber(ARGV[1])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or cap
local at = tonumber(b[2]) or now
tokens = math.min(cap, tokens + math.max(0, now - at) * tonumber(ARGV[2]))
local took = 0
if tokens >= 1 then
  tokens = tokens - 1
  took = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return took
";

/// Gives one token back, up to `ARGV[1]`.
const GIVE_BACK: &str = r"
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens'))
if tokens then
  redis.call('HSET', KEYS[1], 'tokens', tostring(math.min(tonumber(ARGV[1]), tokens + 1)))
end
return 1
";

/// The rooms' budgets in this Redis.
pub struct RedisGuesses {
    client: Redis,
    /// Where a check given back runs, so that a join never waits for it.
    tracker: tokio_util::task::TaskTracker,
}

impl RedisGuesses {
    /// Budgets kept in `client`'s Redis; checks are given back on tasks of `tracker`.
    pub fn new(client: Redis, tracker: tokio_util::task::TaskTracker) -> RedisGuesses {
        RedisGuesses { client, tracker }
    }
}

impl SharedGuesses for RedisGuesses {
    fn take<'a>(&'a self, room: &'a str, digits: usize) -> GuessFuture<'a, Option<bool>> {
        Box::pin(async move {
            let (capacity, per_second) = crate::engine::room::guard::budget(digits);
            let ask = async {
                let mut conn = self.client.connect().await.ok()?;
                redis::cmd("EVAL")
                    .arg(TAKE)
                    .arg(1)
                    .arg(keys::guesses(room))
                    .arg(capacity)
                    .arg(per_second / 1000.0)
                    .arg(KEEP_MS)
                    .query_async::<i64>(&mut conn)
                    .await
                    .ok()
            };
            let took = tokio::time::timeout(WAIT, ask).await.ok().flatten();
            if took.is_none() {
                tracing::debug!(
                    room,
                    "the shared budget of wrong codes could not be asked; the room's own holds"
                );
            }
            took.map(|t| t == 1)
        })
    }

    fn give_back(&self, room: &str, digits: usize) {
        let (capacity, _) = crate::engine::room::guard::budget(digits);
        let (client, key) = (self.client.clone(), keys::guesses(room));
        self.tracker.spawn(async move {
            let give = async {
                let mut conn = client.connect().await.ok()?;
                redis::cmd("EVAL")
                    .arg(GIVE_BACK)
                    .arg(1)
                    .arg(key)
                    .arg(capacity)
                    .query_async::<i64>(&mut conn)
                    .await
                    .ok()
            };
            let _ = tokio::time::timeout(WAIT, give).await;
        });
    }
}
