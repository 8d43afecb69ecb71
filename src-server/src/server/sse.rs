//! The fallback transport (docs/PROTOCOL-ADDITIONS.md, I): the same frames as the WebSocket, for
//! networks and browsers that break WebSockets (a school proxy that strips `Upgrade`; iPad Safari,
//! which takes a self-signed certificate for the page but refuses `wss://` to it). Server → client
//! frames come as server-sent events on a long GET; client → server frames go in POSTs.
//!
//! A link is a WebSocket that never leaves the process: opening one serves a one-connection HTTP/1.1
//! server on an in-memory pipe, with the lesson's own WebSocket handler behind it, and connects a
//! WebSocket client to it. Every rule of a WebSocket connection (hello, limits, flood control,
//! conflation, close codes) therefore holds on a link exactly, with the student's own address.
//!
//! - `POST /v1/sse` with the `hello` frame as its body opens a link: `201 {"link": SECRET}`. The
//!   secret is the link's bearer; it never appears in a URL.
//! - `GET /v1/sse` (`Authorization: Bearer SECRET`) streams `text/event-stream`: each frame as one
//!   `data:` line; the close as `event: close` with `{"code":…,"reason":…}`. One stream at a time; a
//!   stream that breaks can be asked for again, and nothing is lost meanwhile.
//! - `POST /v1/sse/send` (bearer) carries frames, one per line, in order; an empty body keeps the
//!   link alive. `DELETE /v1/sse` (bearer) closes the link.
//!
//! A task per link reads the lesson's frames into a short queue (the event stream drains it), so a
//! link whose lesson connection closed stops counting against the limits at once; its close waits
//! 30 s for the client to collect it. A link the client has not asked anything of (a POST, a new
//! event stream) for three heartbeats (at least 90 s: background tabs) is closed, as a silent WebSocket would be:
//! the client posts an empty keepalive every 5 s. The event stream carries a comment every
//! heartbeat, so a dead TCP connection (and a proxy that cuts idle responses) shows.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::server::host::Host;

mod events;

type Pipe = WebSocketStream<tokio::io::DuplexStream>;

/// How long the close of a link waits for its client to collect it (a refusal's code matters: 4001
/// must stop a client, not make it try again).
const CLOSE_KEPT: Duration = Duration::from_secs(30);

/// Closed links kept (for their close to be collected) from one address, and in all: past these,
/// the oldest goes first, so refused hellos cannot fill memory.
const CLOSED_PER_ADDRESS: usize = 8;
const CLOSED_IN_ALL: usize = 256;

/// Frames the lesson sent that the event stream has not taken yet; more wait in the lesson's own
/// queue, which conflates a student that falls behind (§8).
const QUEUED: usize = 64;

/// What the lesson sent on a link.
enum Item {
    Frame(tokio_tungstenite::tungstenite::Utf8Bytes),
    Close(u16, String),
}

/// One client's link.
struct Link {
    sink: tokio::sync::Mutex<SplitSink<Pipe, Message>>,
    /// The lesson's frames; `None` while an event stream holds them.
    frames: Mutex<Option<mpsc::Receiver<Item>>>,
    /// When the client last asked something of the link.
    heard: Mutex<Instant>,
    /// When the lesson connection closed (the link then counts against no limit).
    closed: Arc<Mutex<Option<Instant>>>,
    /// The task reading the lesson's frames.
    pump: tokio::task::AbortHandle,
    addr: IpAddr,
}

impl Link {
    fn heard(&self) {
        *self.heard.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn closed_at(&self) -> Option<Instant> {
        *self.closed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

#[derive(Default)]
struct Table {
    links: HashMap<[u8; 32], Arc<Link>>,
    /// Links being opened, by address: counted before they exist, so a burst cannot pass the limits.
    opening: HashMap<IpAddr, usize>,
}

/// Every open link, by the SHA-256 of its secret.
pub struct Links {
    host: Arc<Host>,
    table: Mutex<Table>,
    reaper: std::sync::Once,
}

/// The fallback transport's routes, on `host` (merged into a server's or a relay's router).
pub fn router(host: Arc<Host>) -> Router {
    let body_limit = host.limits.max_frame_bytes.saturating_mul(64);
    let links = Arc::new(Links { host, table: Mutex::default(), reaper: std::sync::Once::new() });
    Router::new()
        .route("/v1/sse", post(open).get(events::stream).delete(close))
        .route("/v1/sse/send", post(send))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(links)
}

/// A place reserved for a link being opened; given back when dropped.
struct Reserved<'a> {
    links: &'a Links,
    addr: IpAddr,
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        let mut table = self.links.lock();
        if let Some(n) = table.opening.get_mut(&self.addr) {
            *n -= 1;
            if *n == 0 {
                table.opening.remove(&self.addr);
            }
        }
    }
}

impl Table {
    /// Forgets the oldest closed links past [`CLOSED_PER_ADDRESS`] from `addr` and past
    /// [`CLOSED_IN_ALL`] in all.
    fn trim_closed(&mut self, addr: IpAddr) {
        let mut closed: Vec<([u8; 32], Instant, IpAddr)> =
            self.links.iter().filter_map(|(k, l)| l.closed_at().map(|at| (*k, at, l.addr))).collect();
        if closed.len() < CLOSED_PER_ADDRESS {
            return;
        }
        closed.sort_by_key(|(_, at, _)| std::cmp::Reverse(*at)); // newest first
        let mut here = 0;
        for (i, (key, _, from)) in closed.iter().enumerate() {
            let mine = *from == addr;
            here += usize::from(mine);
            if i >= CLOSED_IN_ALL || (mine && here > CLOSED_PER_ADDRESS) {
                self.links.remove(key);
            }
        }
    }
}

impl Links {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn find(&self, headers: &HeaderMap) -> Option<Arc<Link>> {
        let secret = headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")?;
        let key: [u8; 32] = Sha256::digest(secret.trim().as_bytes()).into();
        self.lock().links.get(&key).cloned()
    }

    fn remove(&self, link: &Arc<Link>) {
        self.lock().links.retain(|_, l| !Arc::ptr_eq(l, link));
    }

    /// Reserves a place for a new link from `addr`, unless that address or the server has too many
    /// open (links whose lesson connection closed do not count).
    fn reserve(&self, addr: IpAddr) -> Option<Reserved<'_>> {
        let limits = &self.host.limits;
        let mut table = self.lock();
        table.trim_closed(addr);
        let live = |l: &&Arc<Link>| l.closed_at().is_none();
        let opening: usize = table.opening.values().sum();
        let here = table.links.values().filter(live).filter(|l| l.addr == addr).count()
            + table.opening.get(&addr).copied().unwrap_or(0);
        let all = table.links.values().filter(live).count() + opening;
        if all >= limits.max_participants.saturating_mul(2) + 16
            || here >= limits.max_students_per_address.max(8)
        {
            return None;
        }
        *table.opening.entry(addr).or_default() += 1;
        Some(Reserved { links: self, addr })
    }

    /// How long a link may go without its client asking anything: three heartbeats, and never
    /// under 90 s (a browser runs a background tab's timers as rarely as once a minute).
    fn patience(&self) -> Duration {
        (self.host.timing.heartbeat * 3).max(Duration::from_secs(90))
    }

    /// Every few seconds while links exist: ends links whose client went quiet (their lesson
    /// connection closes, and an event stream still attached ends), and forgets closes nobody
    /// collected.
    fn start_reaper(self: &Arc<Self>) {
        let links = Arc::downgrade(self);
        self.reaper.call_once(|| {
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(5));
                loop {
                    tick.tick().await;
                    let Some(links) = links.upgrade() else { return };
                    let patience = links.patience();
                    let mut gone = Vec::new();
                    links.lock().links.retain(|_, l| {
                        let quiet = l.heard.lock().unwrap_or_else(|p| p.into_inner()).elapsed() >= patience;
                        let stale = l.closed_at().is_some_and(|at| at.elapsed() >= CLOSE_KEPT);
                        if quiet || stale {
                            gone.push(l.clone());
                        }
                        !(quiet || stale)
                    });
                    for link in gone {
                        link.pump.abort();
                        tokio::spawn(async move {
                            let _ = link.sink.lock().await.close().await;
                        });
                    }
                }
            });
        });
    }
}

fn refuse(status: StatusCode, why: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": why }))).into_response()
}

/// `POST /v1/sse`: opens a link and says the hello on it.
async fn open(
    State(links): State<Arc<Links>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    hello: Bytes,
) -> Response {
    let host = &links.host;
    let Ok(hello) = std::str::from_utf8(&hello) else {
        return refuse(StatusCode::BAD_REQUEST, "the hello must be UTF-8 JSON");
    };
    if hello.len() > host.limits.max_frame_bytes {
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, "the hello is over the frame size limit");
    }
    let addr = crate::engine::rate::address_bucket(peer.ip());
    let Some(reserved) = links.reserve(addr) else {
        host.metrics.reject(crate::metrics::Rejected::RateLimited);
        return refuse(StatusCode::TOO_MANY_REQUESTS, "too many connections; try again in a moment");
    };
    let pipe = match connect(host.clone(), peer.ip()).await {
        Ok(pipe) => pipe,
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, &format!("cannot open a link: {e}")),
    };
    let (mut sink, stream) = pipe.split();
    if sink.send(Message::Text(hello.into())).await.is_err() {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "the link closed at once");
    }
    let (tx, rx) = mpsc::channel(QUEUED);
    let closed = Arc::new(Mutex::new(None));
    let stuck = host.timing.heartbeat * 2;
    let pump = tokio::spawn(pump(stream, tx, closed.clone(), stuck)).abort_handle();
    let secret = crate::docs::hex(&rand::random::<[u8; 32]>());
    let key: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
    let link = Arc::new(Link {
        sink: tokio::sync::Mutex::new(sink),
        frames: Mutex::new(Some(rx)),
        heard: Mutex::new(Instant::now()),
        closed,
        pump,
        addr,
    });
    links.lock().links.insert(key, link);
    drop(reserved);
    links.start_reaper();
    (StatusCode::CREATED, axum::Json(serde_json::json!({ "link": secret }))).into_response()
}

/// Reads the lesson's frames into the link's queue, until the lesson connection closes. A queue
/// nobody has drained for `stuck` (two heartbeats: the lesson has given up on the link by then, as
/// its pings went unanswered) ends the link.
async fn pump(
    mut stream: futures_util::stream::SplitStream<Pipe>,
    tx: mpsc::Sender<Item>,
    closed: Arc<Mutex<Option<Instant>>>,
    stuck: Duration,
) {
    let close = loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => {
                match tokio::time::timeout(stuck, tx.send(Item::Frame(text))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return,
                    Err(_) => {
                        *closed.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
                        return; // the queue's end (the stream's `None`) says 1006
                    }
                }
            }
            Some(Ok(Message::Close(frame))) => {
                break frame.map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.to_string()));
            }
            Some(Ok(_)) => {} // pings are answered by the pipe itself
            Some(Err(_)) | None => break (1006, "the connection broke".to_string()),
        }
    };
    *closed.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    let _ = tx.send(Item::Close(close.0, close.1)).await;
}

/// A WebSocket to the lesson's own handler through an in-memory pipe, as if from `peer`.
async fn connect(host: Arc<Host>, peer: IpAddr) -> Result<Pipe, String> {
    let (client_io, server_io) = tokio::io::duplex(16 * 1024);
    let handler = Router::new().route(
        crate::protocol::WS_PATH,
        get(move |upgrade: WebSocketUpgrade| async move {
            crate::server::connection::upgrade(upgrade, host, peer)
        }),
    );
    let service = TowerToHyperService::new(handler);
    tokio::spawn(async move {
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(server_io), service)
            .with_upgrades();
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "fallback link");
        }
    });
    let url = format!("ws://lectern.internal{}", crate::protocol::WS_PATH);
    // The lesson's frames are small: a small read buffer saves memory on every link.
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (pipe, _) = tokio_tungstenite::client_async_with_config(url, client_io, Some(config))
        .await
        .map_err(|e| e.to_string())?;
    Ok(pipe)
}

/// `POST /v1/sse/send`: the client's frames, one per line, in order. Frames for a link whose lesson
/// connection closed are dropped, as a closed WebSocket would: the event stream says why it closed.
async fn send(State(links): State<Arc<Links>>, headers: HeaderMap, body: Bytes) -> Response {
    let gone = || refuse(StatusCode::NOT_FOUND, "no such link (it closed); connect again");
    let Some(link) = links.find(&headers) else { return gone() };
    if link.closed_at().is_some() {
        return StatusCode::NO_CONTENT.into_response();
    }
    link.heard();
    let Ok(text) = std::str::from_utf8(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "frames must be UTF-8");
    };
    let mut sink = link.sink.lock().await;
    for frame in text.split('\n').filter(|f| !f.trim().is_empty()) {
        if sink.feed(Message::Text(frame.into())).await.is_err() {
            return gone();
        }
    }
    if sink.flush().await.is_err() {
        return gone();
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `DELETE /v1/sse`: the client is done with its link.
async fn close(State(links): State<Arc<Links>>, headers: HeaderMap) -> Response {
    if let Some(link) = links.find(&headers) {
        links.remove(&link);
        link.pump.abort();
        let _ = link.sink.lock().await.close().await;
    }
    StatusCode::NO_CONTENT.into_response()
}
