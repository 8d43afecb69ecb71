//! Opening Redis, a single server or a Redis Cluster: `redis://` or `rediss://` (TLS, through the
//! process's rustls provider), with a user and password in the URL when the server needs them, and a
//! CA file for a server whose certificate the system does not trust (a school's own, or a test's).
//!
//! A process keeps one multiplexed connection for its ordinary commands, shared by all its tasks,
//! and opens it again only after it failed (and at most every 250 ms while Redis is away); each
//! blocking read has a connection of its own.
//!
//! Several comma-separated URLs name the seed nodes of a cluster. Every key of a room shares its hash
//! tag (see `keys`), so each room's commands, its transactions included, go to one node.

use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisFuture, TlsCertificates, Value};

use crate::config::redact_url as redact;
use crate::error::{Error, Result};

/// How long a blocking read (`XREAD BLOCK`, at most a few seconds) may take to answer: far more than
/// the block, not the crate's default of 500 ms, which would cut every block short.
const BLOCKING_TIMEOUT: Duration = Duration::from_secs(60);

/// A Redis to connect to: one server, or a cluster. Clones share one connection for ordinary
/// commands (multiplexed: every task's commands are pipelined on it), opened on first need and
/// opened again only once it has failed; a blocking read gets a connection of its own.
#[derive(Clone)]
pub struct Redis {
    kind: Arc<Kind>,
    shared: Arc<Shared>,
}

#[allow(clippy::large_enum_variant)] // one per process, behind an Arc
enum Kind {
    /// One server.
    Single(redis::Client),
    /// A Redis Cluster: one client for ordinary commands (the crate's response timeout), one for
    /// blocking reads.
    Cluster(ClusterClient, ClusterClient),
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match *self.kind {
            Kind::Single(_) => "Redis::Single",
            Kind::Cluster(..) => "Redis::Cluster",
        })
    }
}

/// How soon after a failed connection attempt another is made: meanwhile every caller gets the
/// failure at once, so a flood of requests while Redis is away opens nothing.
const RETRY_AFTER: Duration = Duration::from_millis(250);

/// The shared connection, and the last failure to open it.
#[derive(Default)]
struct Shared {
    slot: tokio::sync::Mutex<Slot>,
    /// Connections opened so far (the shared one each time it is replaced, and blocking ones).
    opened: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct Slot {
    conn: Option<Conn>,
    generation: u64,
    failed: Option<(tokio::time::Instant, redis::RedisError)>,
}

/// A connection to one server or to a cluster; a clone of a shared one, or one of its own.
#[derive(Clone)]
pub struct Conn {
    inner: Inner,
    /// The pool this connection is shared from (weakly: the pool holds the connection), and which
    /// of its connections it is: a failure that ends the connection makes the pool open another for
    /// the next caller.
    pool: Option<(Weak<Shared>, u64)>,
}

#[derive(Clone)]
enum Inner {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

/// Whether an error means the connection itself is gone (rather than one command failing).
fn ends_connection(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() || e.is_timeout()
}

/// `fut`, and when it fails in a way that ends the connection, the pool's slot emptied (if it still
/// holds this connection) so that the next caller opens another.
fn watch<'a, T: Send + 'a>(pool: Option<(Weak<Shared>, u64)>, fut: RedisFuture<'a, T>) -> RedisFuture<'a, T> {
    let Some((shared, generation)) = pool else { return fut };
    Box::pin(async move {
        let result = fut.await;
        if let Err(e) = &result
            && ends_connection(e)
            && let Some(shared) = shared.upgrade()
        {
            let mut slot = shared.slot.lock().await;
            if slot.generation == generation {
                slot.conn = None;
            }
        }
        result
    })
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let pool = self.pool.clone();
        let fut = match &mut self.inner {
            Inner::Single(c) => c.req_packed_command(cmd),
            Inner::Cluster(c) => c.req_packed_command(cmd),
        };
        watch(pool, fut)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let pool = self.pool.clone();
        let fut = match &mut self.inner {
            Inner::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Inner::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        };
        watch(pool, fut)
    }

    fn get_db(&self) -> i64 {
        match &self.inner {
            Inner::Single(c) => c.get_db(),
            Inner::Cluster(c) => c.get_db(),
        }
    }
}

impl Redis {
    fn new(kind: Kind) -> Redis {
        Redis { kind: Arc::new(kind), shared: Arc::default() }
    }

    /// The shared connection for ordinary commands: opened now if there is none (one caller opens
    /// it while the others wait for it), or the last failure if one came within [`RETRY_AFTER`].
    pub async fn connect(&self) -> redis::RedisResult<Conn> {
        let mut slot = self.shared.slot.lock().await;
        if let Some(conn) = &slot.conn {
            return Ok(conn.clone());
        }
        if let Some((at, e)) = &slot.failed
            && at.elapsed() < RETRY_AFTER
        {
            return Err(e.clone());
        }
        self.shared.opened.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let opened = match &*self.kind {
            Kind::Single(c) => c.get_multiplexed_async_connection().await.map(Inner::Single),
            Kind::Cluster(c, _) => c.get_async_connection().await.map(Inner::Cluster),
        };
        match opened {
            Ok(inner) => {
                slot.generation += 1;
                slot.failed = None;
                let conn = Conn { inner, pool: Some((Arc::downgrade(&self.shared), slot.generation)) };
                slot.conn = Some(conn.clone());
                Ok(conn)
            }
            Err(e) => {
                slot.failed = Some((tokio::time::Instant::now(), e.clone()));
                Err(e)
            }
        }
    }

    /// A connection of its own for blocking reads (a blocking command on the shared one would hold
    /// up every other task's).
    pub async fn connect_blocking(&self) -> redis::RedisResult<Conn> {
        self.shared.opened.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let inner = match &*self.kind {
            Kind::Single(c) => {
                let config = AsyncConnectionConfig::new().set_response_timeout(Some(BLOCKING_TIMEOUT));
                c.get_multiplexed_async_connection_with_config(&config).await.map(Inner::Single)?
            }
            Kind::Cluster(_, blocking) => blocking.get_async_connection().await.map(Inner::Cluster)?,
        };
        Ok(Conn { inner, pool: None })
    }

    /// How many connections have been opened (or tried), shared and blocking: for tests and metrics.
    pub fn connections_opened(&self) -> u64 {
        self.shared.opened.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether this is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(*self.kind, Kind::Cluster(..))
    }
}

/// A Redis for this URL, or for these comma-separated seed URLs of a cluster; nothing is connected
/// yet. `ca` is a PEM file of the certificates a `rediss://` server's is checked against, instead of
/// the system's. A URL that is not Redis's is refused with the reason (and without its password).
pub fn client(url: &str, ca: Option<&Path>) -> Result<Redis> {
    let urls: Vec<&str> = url.split(',').map(str::trim).filter(|u| !u.is_empty()).collect();
    if urls.is_empty() || urls.iter().any(|u| !(u.starts_with("redis://") || u.starts_with("rediss://"))) {
        return Err(Error::Invalid(format!(
            "redis must be a redis:// or rediss:// URL, not {:?}",
            redact(url)
        )));
    }
    let invalid = |e: redis::RedisError| Error::Invalid(format!("redis URL {}: {e}", redact(url)));
    let certs = match ca {
        None => None,
        Some(path) => {
            let pem =
                std::fs::read(path).map_err(|e| Error::File { path: path.into(), message: e.to_string() })?;
            Some(TlsCertificates { client_tls: None, root_cert: Some(pem) })
        }
    };
    if let [one] = urls.as_slice() {
        return match certs {
            None => redis::Client::open(*one).map(|c| Redis::new(Kind::Single(c))).map_err(invalid),
            Some(certs) => redis::Client::build_with_tls(*one, certs)
                .map(|c| Redis::new(Kind::Single(c)))
                .map_err(invalid),
        };
    }
    let build = |timeout: Option<Duration>| {
        let mut b = ClusterClient::builder(urls.clone());
        if let Some(certs) = &certs {
            b = b.certs(TlsCertificates { client_tls: None, root_cert: certs.root_cert.clone() });
        }
        if let Some(t) = timeout {
            b = b.response_timeout(t);
        }
        b.build().map_err(invalid)
    };
    Ok(Redis::new(Kind::Cluster(build(None)?, build(Some(BLOCKING_TIMEOUT))?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_url_is_a_server_several_are_a_cluster_and_a_password_never_reaches_a_message() {
        assert!(!client("redis://127.0.0.1:6379", None).unwrap().is_cluster());
        assert!(client("redis://127.0.0.1:7000, redis://127.0.0.1:7001", None).unwrap().is_cluster());
        let err = client("http://:s3cret@x", None).unwrap_err().to_string();
        assert!(!err.contains("s3cret"), "{err}");
        assert!(client("redis://a:1,http://b:2", None).is_err());
    }
}
