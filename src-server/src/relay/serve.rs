//! `lectern relay`: a stateless server for remote students (docs/RELAY.md). It serves the rooms that
//! teachers' servers publish to Redis, with the same connection code, limits and close codes as a
//! teacher's server, and keeps nothing of its own: any relay serves any room, and a student whose
//! relay goes away resumes on another.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower_http::compression::CompressionLayer;

use super::mirrors::Mirrors;
use crate::cloud::connect::Redis;
use crate::config::{Limits, Timing};
use crate::error::Result;
use crate::metrics::Metrics;
use crate::protocol::{WS_PATH, close};
use crate::tls::Identity;
use crate::transport::host::{Host, Lifetime};

/// How often the health canary goes through Redis, and how stale it may be before `/healthz` fails.
const CANARY_EVERY: Duration = Duration::from_secs(2);

/// What a relay is started with.
pub struct RelayConfig {
    /// `redis://` or `rediss://`.
    pub redis: String,
    /// For `rediss://`: a PEM file of the certificates to check the server's against (default: the
    /// system's trust store).
    pub redis_ca: Option<std::path::PathBuf>,
    /// The relay's certificate (a real one in production; self-signed for tests).
    pub identity: Identity,
    /// Limits, as on a teacher's server.
    pub limits: Limits,
    /// Timing.
    pub timing: Timing,
    /// How often the relay tells teachers' servers it is alive (they take its students as gone
    /// after 3.5 of these without a word).
    pub alive: std::time::Duration,
    /// The load balancers whose PROXY protocol v2 headers name the students (none: not read).
    pub proxy_from: crate::transport::proxy::TrustedProxies,
    /// A certificate from ACME instead of `identity`'s.
    pub acme: Option<super::acme::Acme>,
}

/// A running relay.
pub struct Relay {
    addr: SocketAddr,
    host: Arc<Host>,
    mirrors: Arc<Mirrors>,
    drain: Lifetime,
}

#[derive(Clone)]
struct RelayState {
    host: Arc<Host>,
    mirrors: Arc<Mirrors>,
    fingerprint: String,
    /// When the canary last went through Redis and back, ms since the relay started (0: never).
    canary_ms: Arc<AtomicU64>,
    started: tokio::time::Instant,
}

impl Relay {
    /// Starts serving on `listener`; Redis is reached on first need, not now.
    pub fn start(config: RelayConfig, listener: TcpListener) -> Result<Relay> {
        let client = crate::cloud::connect::client(&config.redis, config.redis_ca.as_deref())?;
        let addr = listener.local_addr()?;
        let lifetime = Lifetime::default();
        let tls = match &config.acme {
            Some(acme) => super::acme::start(acme, &lifetime.tracker, lifetime.shutdown.clone())?,
            None => config.identity.server_config(false)?,
        };
        let tls = TlsAcceptor::from(Arc::new(tls));
        // The writer of what students do outlives the connections (their leaves are written), so it
        // has a lifetime of its own, ended once they have all closed.
        let drain = Lifetime::default();
        let metrics = Metrics::new();
        // A name for this relay in the rooms' `up` streams, new at each start: the teacher's server
        // follows each relay's students by it, and notices when it goes silent.
        let relay_id = format!("{:016x}", rand::random::<u64>());
        let up = super::upsink::start(
            client.clone(),
            relay_id.clone(),
            config.alive,
            metrics.clone(),
            drain.shutdown.clone(),
            &drain.tracker,
        );
        // A relay's students are at home: it always offers them a second path (PROTOCOL-ADDITIONS N).
        let limits = Limits { second_paths: true, ..config.limits };
        let mirrors =
            Arc::new(Mirrors::new(client.clone(), limits.clone(), metrics.clone(), up, lifetime.clone()));
        let host = Arc::new(Host::new(limits, config.timing, metrics, Arc::new(mirrors.clone()), lifetime));
        // Every relay checks codes within the one budget per room kept in Redis.
        let guesses = crate::cloud::guesses::RedisGuesses::new(client.clone(), host.tracker.clone());
        let _ = host.guesses.set(Arc::new(guesses));
        // A second path sent here by a balancer finds its student on the room's other relays.
        let whereabouts = super::whereabouts::RedisWhereabouts::new(client.clone(), relay_id, config.alive);
        let _ = host.whereabouts.set(Arc::new(whereabouts));
        let state = RelayState {
            host: host.clone(),
            mirrors: mirrors.clone(),
            // An ACME certificate changes at each renewal: nobody pins it.
            fingerprint: if config.acme.is_some() { String::new() } else { config.identity.fingerprint() },
            canary_ms: Arc::default(),
            started: tokio::time::Instant::now(),
        };
        host.tracker.spawn(canary(client, state.clone()));
        host.tracker.spawn(upkeep(state.clone()));
        let documents = Router::new()
            .route("/v1/docs/{id}", get(super::docs::get_doc))
            // The lists are text a home link carries before the first page: sent compressed.
            .route("/v1/docs/{id}/scan", get(super::docs::get_scan).layer(CompressionLayer::new()))
            .route("/v1/docs/{id}/manifest", get(super::docs::get_manifest).layer(CompressionLayer::new()))
            .with_state(mirrors.clone());
        let router = Router::new()
            .route(WS_PATH, get(ws))
            .route("/healthz", get(healthz))
            .route("/v1/info", get(info))
            .with_state(state)
            .merge(documents)
            .merge(crate::transport::sse::router(host.clone()))
            .fallback(crate::transport::ui::serve);
        let accept =
            crate::transport::accept::accept_loop(listener, tls, router, host.clone(), config.proxy_from);
        host.tracker.spawn(accept);
        tracing::info!(%addr, "relay serving");
        Ok(Relay { addr, host, mirrors, drain })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its metrics (Prometheus text).
    pub fn metrics(&self) -> String {
        self.host.metrics.render()
    }

    /// The rooms served now.
    pub fn mirrors(&self) -> &Mirrors {
        &self.mirrors
    }

    /// How many addresses its per-address counters hold now (its upkeep forgets the quiet ones).
    pub fn tracked_addresses(&self) -> usize {
        self.host.tracked_addresses()
    }

    /// How many connections to Redis it has opened since it started (one shared for ordinary
    /// commands, reopened when it fails, and one for each room's feed and each document read).
    pub fn redis_connections_opened(&self) -> u64 {
        self.mirrors.redis().connections_opened()
    }

    /// Closes every student with 4503 (they resume on another relay) and stops. Returns once every
    /// task it started has ended (or the grace period is over): the accept loop, the connections,
    /// the rooms' feeds, the canary, and last the writer, once the connections' leaves are written.
    pub async fn stop(self) {
        self.mirrors.rooms().close_all(close::RESTARTING, "relay shutting down");
        self.host.shutdown.cancel();
        let grace = self.host.timing.shutdown_grace;
        // The connections end first, so that their leaves are queued for the teacher's server
        // before the writer stops (what is queued is still written).
        self.host.tracker.close();
        if tokio::time::timeout(grace, self.host.tracker.wait()).await.is_err() {
            tracing::warn!(tasks = self.host.tracker.len(), "some connections did not close in time");
        }
        self.drain.shutdown.cancel();
        self.drain.tracker.close();
        if tokio::time::timeout(grace, self.drain.tracker.wait()).await.is_err() {
            tracing::warn!("the last leaves could not be written to redis in time");
        }
    }
}

async fn ws(
    State(s): State<RelayState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    upgrade: WebSocketUpgrade,
) -> Response {
    crate::transport::connection::upgrade(upgrade, s.host.clone(), peer.ip())
}

/// The relay's upkeep: every few seconds it forgets the addresses its per-address counters hold that
/// have been quiet, and the rooms it remembers as not published, so neither grows with the addresses
/// and room ids strangers try.
async fn upkeep(s: RelayState) {
    let mut tick = tokio::time::interval(s.host.timing.roster_interval * 50);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = s.host.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        s.host.metrics.upkeep();
        s.host.prune();
        s.mirrors.prune();
    }
}

/// Which room `GET /v1/info` is asked about.
#[derive(serde::Deserialize)]
struct InfoQuery {
    room: Option<String>,
}

/// `GET /v1/info?room=ID` on a relay: what a join page shows before the student joins, for the room
/// the link names (a relay serves many). Asking for rooms nobody has published counts against the
/// address, as such a hello does.
async fn info(
    State(s): State<RelayState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    axum::extract::Query(q): axum::extract::Query<InfoQuery>,
) -> Response {
    use crate::transport::api_error::ApiError;
    use crate::transport::host::NoRoom;
    let Some(room) = q.room.filter(|r| !r.is_empty() && r.len() <= 64) else {
        return ApiError::BadRequest("a relay serves many rooms: ask for one with ?room=".into())
            .into_response();
    };
    let counted = crate::engine::rate::counted(peer.ip());
    let served = s.mirrors.rooms().get(&room).is_some();
    if !served && counted.is_some_and(|ip| s.host.unpublished.is_blocked(ip)) {
        return ApiError::TooMany {
            why: "too many requests for lessons that are not here; wait a minute",
            close: false,
        }
        .into_response();
    }
    match s.mirrors.title(&room).await {
        Ok((info, title_epoch)) => axum::Json(crate::protocol::http::Info {
            name: info.title.clone(),
            room,
            title: info.title,
            title_sig: info.title_sig,
            title_epoch,
            v: crate::protocol::VERSION,
            fingerprint: s.fingerprint.clone(),
            needs_code: true,
            knock: false, // nobody is there to let a knock in
        })
        .into_response(),
        Err(NoRoom::NotPublished) => {
            if let Some(ip) = counted {
                s.host.unpublished.fail(ip);
            }
            ApiError::NotFound(format!("no lesson \"{room}\" here")).into_response()
        }
        Err(NoRoom::Ended) => ApiError::NotFound("that lesson has ended".into()).into_response(),
        Err(NoRoom::Unavailable) => {
            ApiError::Unavailable { why: "the relay cannot reach the lessons now", close: false }
                .into_response()
        }
        Err(NoRoom::Unknown | NoRoom::TooMany) => {
            ApiError::NotFound(format!("no lesson \"{room}\" here")).into_response()
        }
    }
}

/// 200 while the canary goes through Redis and back; 503 once it has not for three rounds.
async fn healthz(State(s): State<RelayState>) -> Response {
    let last = s.canary_ms.load(Ordering::Relaxed);
    let now = s.started.elapsed().as_millis() as u64;
    if last > 0 && now.saturating_sub(last) <= 3 * CANARY_EVERY.as_millis() as u64 {
        (StatusCode::OK, axum::Json(serde_json::json!({"status": "ok"}))).into_response()
    } else {
        let body = serde_json::json!({"status": "degraded", "reason": "redis is not delivering"});
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
    }
}

/// Publishes a canary to a stream of its own and reads it back with a blocking read on another
/// connection, as the rooms' feeds are read: a Redis that answers pings but delivers nothing fails.
async fn canary(client: Redis, s: RelayState) {
    let key = format!("lectern:{{canary-{:016x}}}", rand::random::<u64>());
    let mut beat = tokio::time::interval(CANARY_EVERY);
    // The reader's connection is kept from round to round, and opened again only after a failure.
    let mut kept = None;
    loop {
        tokio::select! {
            _ = s.host.shutdown.cancelled() => return,
            _ = beat.tick() => {}
        }
        let round = async {
            let mut writer = client.connect().await.ok()?;
            let reader = match &mut kept {
                Some(r) => r,
                None => kept.insert(client.connect_blocking().await.ok()?),
            };
            let token = rand::random::<u64>().to_string();
            let id: String = redis::cmd("XADD")
                .arg(&key)
                .arg("MAXLEN")
                .arg(10)
                .arg("*")
                .arg("t")
                .arg(&token)
                .query_async(&mut writer)
                .await
                .ok()?;
            let _: () = redis::cmd("EXPIRE").arg(&key).arg(60).query_async(&mut writer).await.ok()?;
            // Read from just before the entry written: it must come back.
            let before = before(&id)?;
            let reply: redis::streams::StreamReadReply = redis::cmd("XREAD")
                .arg("BLOCK")
                .arg(1000)
                .arg("STREAMS")
                .arg(&key)
                .arg(before)
                .query_async(reader)
                .await
                .ok()?;
            reply
                .keys
                .into_iter()
                .flat_map(|k| k.ids)
                .any(|e| e.get::<String>("t").as_deref() == Some(token.as_str()))
                .then_some(())
        };
        let went = tokio::select! {
            _ = s.host.shutdown.cancelled() => return,
            r = tokio::time::timeout(CANARY_EVERY, round) => r.ok().flatten().is_some(),
        };
        if !went {
            kept = None;
        }
        if went {
            s.canary_ms.store(s.started.elapsed().as_millis().max(1) as u64, Ordering::Relaxed);
        }
    }
}

/// The stream id just before `id` (`ms-seq`).
fn before(id: &str) -> Option<String> {
    let (ms, seq) = id.split_once('-')?;
    let (ms, seq): (u64, u64) = (ms.parse().ok()?, seq.parse().ok()?);
    Some(if seq > 0 { format!("{ms}-{}", seq - 1) } else { format!("{}-{}", ms.checked_sub(1)?, u64::MAX) })
}
