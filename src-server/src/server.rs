//! The server: shared application state, the TLS accept loop, background tasks and graceful shutdown.
//!
//! [`start`] takes an already-bound listener (so tests and the app can bind port 0) and returns a
//! [`ServerHandle`]. One `CancellationToken` and one `TaskTracker` form the shutdown tree: cancelling the
//! token stops the accept loop, closes every WebSocket with 4503 and lets HTTP connections finish.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::{Limits, Timing};
use crate::docs::Library;
use crate::error::Result;
use crate::limits::FailedHellos;
use crate::metrics::Metrics;
use crate::protocol::close;
use crate::room::{Room, RoomParts};
use crate::state::LessonState;
use crate::store::{LessonRecord, Store};
use crate::tls::Identity;

/// Everything a server is made of.
pub struct ServerOptions {
    /// TLS certificate and key.
    pub identity: Identity,
    /// The teacher key.
    pub teacher_key: String,
    /// The classroom's name (mDNS instance name, `/v1/info` name).
    pub name: String,
    /// The lesson to serve.
    pub lesson: LessonRecord,
    /// Its seq and state when the server last stopped (a continued lesson), or none (a new one).
    pub resume: Option<(u64, LessonState)>,
    /// The documents.
    pub docs: Arc<Library>,
    /// Where the lesson is kept.
    pub store: Arc<dyn Store>,
    /// The session log database, for reports (none with an in-memory store).
    pub db: Option<std::path::PathBuf>,
    /// Limits.
    pub limits: Limits,
    /// Timing.
    pub timing: Timing,
}

/// Shared state of a running server, cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// What `AppState` points to.
pub struct Shared {
    room: RwLock<Arc<Room>>,
    /// Classroom name.
    pub name: String,
    /// Certificate fingerprint.
    pub fingerprint: String,
    /// Limits.
    pub limits: Limits,
    /// Timing.
    pub timing: Timing,
    /// Metrics.
    pub metrics: Metrics,
    /// Failed hellos per address.
    pub failed_hellos: FailedHellos,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
    /// Every task of the server.
    pub tracker: TaskTracker,
    /// Where the lesson is kept.
    pub store: Arc<dyn Store>,
    /// The session log database, for reports.
    pub db: Option<std::path::PathBuf>,
    /// Bumped when a new lesson starts (the mDNS announcement follows it).
    pub lesson_changed: tokio::sync::watch::Sender<u64>,
    teacher_key: String,
    docs: Arc<Library>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// Builds the state for these options (no socket yet).
    pub fn new(opts: &ServerOptions) -> AppState {
        let metrics = Metrics::new();
        let (seq, state) = opts.resume.clone().unwrap_or_else(|| {
            (0, LessonState::new(opts.lesson.doc.as_deref().and_then(|id| opts.docs.get(id))))
        });
        let room = Room::new(RoomParts {
            lesson: opts.lesson.clone(),
            state,
            seq,
            teacher_key: opts.teacher_key.clone(),
            docs: opts.docs.clone(),
            store: opts.store.clone(),
            metrics: metrics.clone(),
            limits: opts.limits.clone(),
            heartbeat_ms: opts.timing.heartbeat.as_millis() as u64,
        });
        AppState(Arc::new(Shared {
            teacher_key: opts.teacher_key.clone(),
            docs: opts.docs.clone(),
            room: RwLock::new(Arc::new(room)),
            name: opts.name.clone(),
            fingerprint: opts.identity.fingerprint(),
            limits: opts.limits.clone(),
            timing: opts.timing.clone(),
            metrics,
            failed_hellos: FailedHellos::new(opts.limits.failed_hellos_per_minute),
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            store: opts.store.clone(),
            db: opts.db.clone(),
            lesson_changed: tokio::sync::watch::Sender::new(0),
        }))
    }

    /// The room of the current lesson.
    pub fn room(&self) -> Arc<Room> {
        self.room.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Ends the current lesson (everyone gets `ended` and is closed with 4000) and starts a new one with
    /// a new room, join code and the same document, without a restart.
    pub fn new_lesson(&self, title: Option<String>) -> LessonRecord {
        let mut slot = self.room.write().unwrap_or_else(|p| p.into_inner());
        let old = slot.clone();
        old.end_now();
        let (_, state) = old.state();
        let lesson = LessonRecord {
            room: crate::setup::room_id(),
            title: title.filter(|t| !t.trim().is_empty()).unwrap_or_else(|| old.info().title.clone()),
            code: crate::setup::join_code(),
            started_ms: crate::protocol::now_ms(),
            ended_ms: None,
            doc: state.doc.as_ref().map(|d| d.id.clone()),
            revoked: Vec::new(),
        };
        let room = Room::new(RoomParts {
            lesson: lesson.clone(),
            state: LessonState::new(state.doc.clone()),
            seq: 0,
            teacher_key: self.teacher_key.clone(),
            docs: self.docs.clone(),
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            limits: self.limits.clone(),
            heartbeat_ms: self.timing.heartbeat.as_millis() as u64,
        });
        *slot = Arc::new(room);
        self.lesson_changed.send_modify(|generation| *generation += 1);
        tracing::info!(room = %lesson.room, "new lesson");
        lesson
    }
}

/// A running server.
pub struct ServerHandle {
    addr: SocketAddr,
    app: AppState,
    accept: tokio::task::JoinHandle<()>,
}

impl ServerHandle {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state (room, metrics).
    pub fn app(&self) -> &AppState {
        &self.app
    }

    /// Starts shutting down: every WebSocket is closed with 4503, no new connection is accepted.
    pub fn shutdown(&self) {
        if !self.app.shutdown.is_cancelled() {
            tracing::info!("shutting down");
            self.app.room().close_all(close::RESTARTING, "server shutting down");
            self.app.shutdown.cancel();
        }
    }

    /// Waits until every task has stopped, or the shutdown grace period is over.
    pub async fn wait_stopped(self) {
        self.app.tracker.close();
        let _ = self.accept.await;
        let grace = self.app.timing.shutdown_grace;
        if tokio::time::timeout(grace, self.app.tracker.wait()).await.is_err() {
            tracing::warn!(tasks = self.app.tracker.len(), "some connections did not close in time");
        }
        let store = self.app.store.clone();
        let flushed = tokio::task::spawn_blocking(move || store.flush(Duration::from_millis(400))).await;
        if !matches!(flushed, Ok(true)) {
            tracing::warn!("the session log could not be flushed before exit");
        }
    }
}

/// Starts serving on a bound listener.
pub fn start(listener: TcpListener, opts: ServerOptions) -> Result<ServerHandle> {
    let addr = listener.local_addr()?;
    let tls = TlsAcceptor::from(Arc::new(opts.identity.server_config(false)?));
    let app = AppState::new(&opts);
    let router = crate::http::router(app.clone());
    spawn_background(&app);
    let accept = tokio::spawn(accept_loop(listener, tls, router, app.clone()));
    tracing::info!(%addr, room = %app.room().info().id, "serving");
    Ok(ServerHandle { addr, app, accept })
}

fn spawn_background(app: &AppState) {
    let a = app.clone();
    app.tracker.spawn(async move {
        let mut tick = tokio::time::interval(a.timing.roster_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut n = 0u64;
        loop {
            tokio::select! {
                _ = a.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            a.room().flush_roster();
            n += 1;
            if n.is_multiple_of(50) {
                a.metrics.upkeep();
                a.failed_hellos.prune();
            }
        }
    });
}

async fn accept_loop(listener: TcpListener, tls: TlsAcceptor, router: axum::Router, app: AppState) {
    let permits = Arc::new(tokio::sync::Semaphore::new(app.limits.max_connections));
    let mut backoff = Duration::from_millis(5);
    loop {
        let permit = tokio::select! {
            _ = app.shutdown.cancelled() => return,
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
        };
        let (tcp, peer) = tokio::select! {
            _ = app.shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(c) => { backoff = Duration::from_millis(5); c }
                Err(e) => {
                    // Per-connection errors (reset before accept) are the peer's; resource errors (out of
                    // file descriptors) are ours: back off instead of spinning.
                    if matches!(e.kind(), std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset) {
                        continue;
                    }
                    tracing::warn!(error = %e, "accept failed; backing off");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if app.limits.unsent_bytes > 0
            && let Err(e) = socket2::SockRef::from(&tcp).set_tcp_notsent_lowat(app.limits.unsent_bytes)
        {
            tracing::debug!(error = %e, "TCP_NOTSENT_LOWAT not set");
        }
        let tls = tls.clone();
        let router = router.clone();
        let app2 = app.clone();
        app.tracker.spawn(async move {
            let _permit = permit;
            let handshake = tokio::time::timeout(app2.timing.tls_handshake_timeout, tls.accept(tcp));
            let stream = match handshake.await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let svc = router.map_request(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
            let svc = TowerToHyperService::new(svc);
            let mut builder = auto::Builder::new(TokioExecutor::new());
            // An idle or trickling HTTP connection must not hold a connection slot for ever.
            builder.http1().timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(10));
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => { if let Err(e) = r { tracing::debug!(%peer, error = %e, "http connection"); } }
                _ = app2.shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
                }
            }
        });
    }
}
