//! The server shell around the engine: TLS, HTTP and WebSocket on a bound listener, the session log,
//! and the mDNS announcement, started together and stopped together.
//!
//! [`Server::start`] takes a [`Config`] and an already-bound listener (so tests and the app can bind
//! port 0) and returns a handle that owns everything it started: the accept loop and every connection
//! (one `TaskTracker`, one `CancellationToken`), the rooms, the session log's writer thread, and the
//! mDNS announcer. [`Server::shutdown`] closes every WebSocket with 4503 and says goodbye on the
//! network; [`Server::wait_stopped`] returns once all of it has finished and the writer thread is
//! joined. It runs on any tokio runtime, the current-thread one included.

mod access;
pub mod app;
mod export;
pub mod http;
pub mod setup;
mod upkeep;
mod upload;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::discovery::{Announcement, Interfaces};
use crate::error::Result;
use crate::protocol::close;
use crate::protocol::http::Ready;
use crate::transport::accept;
pub use app::AppState;

/// The longest shutdown waits for the session log to reach the disk: an fsync takes milliseconds,
/// but a stalled disk must not keep the app from quitting.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest shutdown waits for the mDNS goodbye once the grace period is over.
const MDNS_GOODBYE: Duration = Duration::from_secs(2);

/// A running server.
pub struct Server {
    addr: SocketAddr,
    app: AppState,
    ready: Ready,
    mdns: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Prepares the data directory (first run: certificate, teacher key, demo lesson) and starts
    /// serving on `listener`. mDNS is announced unless disabled or the listener is on loopback.
    pub fn start(config: &Config, listener: TcpListener) -> Result<Server> {
        let mut prepared = setup::prepare(config)?;
        let addr = listener.local_addr()?;
        let tls = TlsAcceptor::from(Arc::new(prepared.identity.server_config(false)?));
        let bridge = match &config.redis {
            Some(url) => {
                let (sink, queue) = crate::bridge::channel();
                prepared.parts.sinks.push(sink);
                Some((crate::cloud::connect::client(url, config.redis_ca.as_deref())?, queue))
            }
            None => None,
        };
        let app = AppState::new(prepared.parts);
        if let Some((client, queue)) = bridge {
            // The room's budget of wrong codes is shared with its relays.
            let guesses =
                Arc::new(crate::cloud::guesses::RedisGuesses::new(client.clone(), app.host.tracker.clone()));
            let _ = app.host.guesses.set(guesses);
            let find_in = app.clone();
            let parts = crate::bridge::BridgeParts {
                client,
                signer: crate::files::load_signer(&config.data_dir())?,
                teacher_key: app.teacher_key().to_string(),
                heartbeat: app.host.timing.heartbeat,
                max_participants: app.host.limits.max_participants,
                find: Arc::new(move |id: &str| find_in.rooms().get(id)),
                docs: app.docs().clone(),
                shutdown: app.host.shutdown.clone(),
                tracker: app.host.tracker.clone(),
            };
            app.host.tracker.spawn(crate::bridge::run(parts, queue));
        }
        let ready = ready_line(addr, &app);
        let router = http::router(app.clone());
        upkeep::spawn(&app);
        let proxies = crate::transport::proxy::TrustedProxies::default(); // a classroom has no balancer
        app.host.tracker.spawn(accept::accept_loop(listener, tls, router, app.host.clone(), proxies));
        let mdns = if config.mdns.disabled {
            tracing::debug!("mDNS is off");
            None
        } else if addr.ip().is_loopback() {
            tracing::info!("listening on loopback only: not announcing on the network");
            None
        } else {
            Some(announce(&app, addr.port(), Interfaces::from_names(&config.mdns.interfaces)))
        };
        tracing::info!(%addr, room = %app.room().info().id, "serving");
        Ok(Server { addr, app, ready, mdns })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state (rooms, metrics).
    pub fn app(&self) -> &AppState {
        &self.app
    }

    /// The ready line (URLs, fingerprint, join code and teacher key) for scripts.
    pub fn ready(&self) -> &Ready {
        &self.ready
    }

    /// Starts shutting down: every WebSocket is closed with 4503, no new connection is accepted, and
    /// the mDNS goodbye goes out.
    pub fn shutdown(&self) {
        if !self.app.host.shutdown.is_cancelled() {
            tracing::info!("shutting down");
            self.app.rooms().close_all(close::RESTARTING, "server shutting down");
            self.app.host.shutdown.cancel();
        }
    }

    /// Waits until every task has stopped (or the shutdown grace period is over), the mDNS goodbye has
    /// gone out, and the session log is flushed and its writer thread joined. Every task the server
    /// starts (the accept loop, each connection and fallback link, the upkeep, the announcer, the
    /// Redis bridge and its readers) is one of its tracker's, so none outlives this.
    pub async fn wait_stopped(self) {
        self.shutdown();
        let tracker = &self.app.host.tracker;
        tracker.close();
        let grace = self.app.host.timing.shutdown_grace;
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            tracing::warn!(tasks = tracker.len(), "some connections did not close in time");
        }
        // However short the grace, the goodbye goes out: students' lists drop the classroom at once.
        if let Some(mdns) = self.mdns
            && tokio::time::timeout(MDNS_GOODBYE, mdns).await.is_err()
        {
            tracing::warn!("the mDNS goodbye did not go out in time");
        }
        let store = self.app.store.clone();
        let closed = tokio::task::spawn_blocking(move || store.close(CLOSE_TIMEOUT)).await;
        if !matches!(closed, Ok(true)) {
            tracing::warn!("the session log could not be flushed before exit");
        }
    }
}

fn announce(app: &AppState, port: u16, interfaces: Interfaces) -> tokio::task::JoinHandle<()> {
    let (room, title) = app.lesson.borrow().clone();
    let announcement = Announcement {
        name: app.name.clone(),
        port,
        fingerprint: app.fingerprint.clone(),
        room,
        title,
        pk: Some(app.pk.clone()),
    };
    let lessons = app.lesson.subscribe();
    let stop = app.host.shutdown.clone().cancelled_owned();
    app.host.tracker.spawn(async move {
        if let Err(e) = crate::discovery::announce(announcement, lessons, interfaces, stop).await {
            tracing::warn!(error = %e, "not announcing on the network; students need the join link or QR code");
        }
    })
}

/// The ready line for a server bound to `addr`.
fn ready_line(addr: SocketAddr, app: &AppState) -> Ready {
    let host = match addr.ip() {
        // Unspecified addresses are dual-stack (see `bind`): IPv4 loopback reaches them.
        ip if ip.is_unspecified() => "127.0.0.1".into(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        ip => ip.to_string(),
    };
    let room = app.room();
    Ready {
        ready: true,
        ws: format!("wss://{host}:{}{}", addr.port(), crate::protocol::WS_PATH),
        http: format!("https://{host}:{}", addr.port()),
        fingerprint: app.fingerprint.clone(),
        code: room.code(),
        teacher_key: app.teacher_key().to_string(),
        room: room.info().id.clone(),
    }
}
