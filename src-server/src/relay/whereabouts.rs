//! Where a room's remote students are online across its relays, read from the presence each relay
//! writes for its own students (`keys::at`, written by [`super::upsink`]): a second path that a load
//! balancer sends to another relay than its student's is taken there (PROTOCOL-ADDITIONS N).

use std::time::Duration;

use crate::cloud::connect::Redis;
use crate::cloud::keys;
use crate::transport::host::{GuessFuture, Presence, Whereabouts};

/// The relay's side of [`Whereabouts`]: it asks Redis on the relay's shared connection.
pub struct RedisWhereabouts {
    client: Redis,
    relay: String,
    every: Duration,
}

impl RedisWhereabouts {
    /// For relay `relay` (its id in the `up` streams), whose presence entries are written every
    /// `every`: a second path taken for a student elsewhere is checked on as often.
    pub fn new(client: Redis, relay: String, every: Duration) -> RedisWhereabouts {
        RedisWhereabouts { client, relay, every }
    }
}

impl Whereabouts for RedisWhereabouts {
    fn find<'a>(&'a self, room: &'a str, pid: &'a str) -> GuessFuture<'a, Presence> {
        Box::pin(async move {
            let Ok(mut conn) = self.client.connect().await else { return Presence::Unknown };
            let at: redis::RedisResult<Option<String>> =
                redis::cmd("GET").arg(keys::at(room, pid)).query_async(&mut conn).await;
            let Ok(at) = at else { return Presence::Unknown };
            let Some(first) = at else { return Presence::Gone };
            match serde_json::from_str::<keys::At>(&first) {
                // This relay's own word: it knows better (the student is not here).
                Ok(at) if at.relay != self.relay => Presence::Elsewhere { addr: at.addr.parse().ok(), first },
                _ => Presence::Gone,
            }
        })
    }

    fn every(&self) -> Duration {
        self.every
    }
}
