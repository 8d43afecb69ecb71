//! Opening Redis, a single server or a Redis Cluster: `redis://` or `rediss://` (TLS, through the
//! process's rustls provider), with a user and password in the URL when the server needs them, and a
//! CA file for a server whose certificate the system does not trust (a school's own, or a test's).
//!
//! Several comma-separated URLs name the seed nodes of a cluster. Every key of a room shares its hash
//! tag (see `keys`), so each room's commands, its transactions included, go to one node.

use std::path::Path;
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

/// A Redis to connect to: one server, or a cluster.
#[derive(Clone)]
pub enum Redis {
    /// One server.
    Single(Box<redis::Client>),
    /// A Redis Cluster: one client for ordinary commands (the crate's response timeout), one for
    /// blocking reads.
    Cluster(Box<(ClusterClient, ClusterClient)>),
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Redis::Single(_) => "Redis::Single",
            Redis::Cluster(_) => "Redis::Cluster",
        })
    }
}

/// A connection to one server or to a cluster.
pub enum Conn {
    /// To one server.
    Single(MultiplexedConnection),
    /// To a cluster.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

impl Redis {
    /// A connection for ordinary commands.
    pub async fn connect(&self) -> redis::RedisResult<Conn> {
        match self {
            Redis::Single(c) => c.get_multiplexed_async_connection().await.map(Conn::Single),
            Redis::Cluster(clients) => clients.0.get_async_connection().await.map(Conn::Cluster),
        }
    }

    /// A connection of its own for blocking reads.
    pub async fn connect_blocking(&self) -> redis::RedisResult<Conn> {
        match self {
            Redis::Single(c) => {
                let config = AsyncConnectionConfig::new().set_response_timeout(Some(BLOCKING_TIMEOUT));
                c.get_multiplexed_async_connection_with_config(&config).await.map(Conn::Single)
            }
            Redis::Cluster(clients) => clients.1.get_async_connection().await.map(Conn::Cluster),
        }
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
            None => redis::Client::open(*one).map(|c| Redis::Single(Box::new(c))).map_err(invalid),
            Some(certs) => redis::Client::build_with_tls(*one, certs)
                .map(|c| Redis::Single(Box::new(c)))
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
    Ok(Redis::Cluster(Box::new((build(None)?, build(Some(BLOCKING_TIMEOUT))?))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_url_is_a_server_several_are_a_cluster_and_a_password_never_reaches_a_message() {
        assert!(matches!(client("redis://127.0.0.1:6379", None), Ok(Redis::Single(_))));
        assert!(matches!(
            client("redis://127.0.0.1:7000, redis://127.0.0.1:7001", None),
            Ok(Redis::Cluster(_))
        ));
        let err = client("http://:s3cret@x", None).unwrap_err().to_string();
        assert!(!err.contains("s3cret"), "{err}");
        assert!(client("redis://a:1,http://b:2", None).is_err());
    }
}
