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
use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
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

use crate::transport::api_error::ApiError;
use crate::transport::host::Host;

mod events;
mod table;

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

/// The most one `POST /v1/sse/send` carries: four frames of the largest size, or hundreds of the
/// usual ones (the browser sends what waits, at most this much a request).
const SEND_BYTES: usize = 64 << 10;

/// Refused opens (a body that is no hello, a hello the lesson refuses) an address may make in a
/// minute before its opens are refused for a while: each open costs a WebSocket handshake and a
/// lesson connection, so refusals must not come at a stranger's pace. At least this, or
/// `limits.max_students_per_address` (a class behind one school proxy) when that is more.
const REFUSED_OPENS_PER_MINUTE: u32 = 20;

/// Close codes that say a link's hello was refused for what it sent (§10), which count against
/// [`REFUSED_OPENS_PER_MINUTE`] (not 4008 or 4029: a knock that waited too long, a claim bumped).
const REFUSALS: [u16; 5] = [1003, 1009, 4001, 4400, 4426];

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
    /// Refused opens per address (none where per-address limits are lifted: a relay behind a
    /// load balancer, where every student has its address).
    refused: Option<Arc<crate::engine::rate::FailedHellos>>,
}

/// The fallback transport's routes, on `host` (merged into a server's or a relay's router).
pub fn router(host: Arc<Host>) -> Router {
    let per_address = host.limits.max_students_per_address;
    let quota = u32::try_from(per_address).unwrap_or(u32::MAX).max(REFUSED_OPENS_PER_MINUTE);
    let refused = (per_address < 1 << 20).then(|| Arc::new(crate::engine::rate::FailedHellos::new(quota)));
    let links = Arc::new(Links { host, table: Mutex::default(), reaper: std::sync::Once::new(), refused });
    Router::new()
        .route("/v1/sse", post(open).get(events::stream).delete(close))
        .route("/v1/sse/send", post(send))
        .with_state(links)
}

/// `POST /v1/sse`: opens a link and says the hello on it. The address's place is taken before a
/// byte of the body is read, and the body (one frame) is read within the request deadline and the
/// body budget; a body that is no hello is refused before any link exists.
async fn open(
    State(links): State<Arc<Links>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let host = &links.host;
    let addr = crate::engine::rate::address_bucket(peer.ip());
    let Some(reserved) = links.reserve(addr) else {
        host.metrics.reject(crate::metrics::Rejected::RateLimited);
        return ApiError::TooMany { why: "too many connections; try again in a moment", close: true }
            .into_response();
    };
    let body =
        host.bodies.read(addr, &headers, body, host.limits.max_frame_bytes, host.timing.idle_timeout).await;
    let hello = match body {
        Ok(hello) => hello,
        Err(refused) => {
            if refused != crate::transport::body::Refused::Busy {
                links.refused_open(addr);
            }
            return refused.into_response();
        }
    };
    let text = std::str::from_utf8(&hello).ok();
    let hello = text.and_then(|t| match crate::protocol::ClientMsg::parse(t) {
        Ok(crate::protocol::ClientMsg::Hello(h)) => Some((t, h.resume.is_some() || h.key.is_some())),
        _ => None,
    });
    // An address refused too often waits, and must make a new connection to try again; a resume
    // token or the teacher key never waits (§3).
    if !hello.is_some_and(|(_, proven)| proven) && links.refused.as_ref().is_some_and(|r| r.is_blocked(addr))
    {
        host.metrics.reject(crate::metrics::Rejected::RateLimited);
        return ApiError::TooMany { why: "too many refused connections; wait a minute", close: true }
            .into_response();
    }
    let Some((hello, _)) = hello else {
        links.refused_open(addr);
        host.metrics.reject(crate::metrics::Rejected::Protocol);
        return ApiError::BadRequest("the body must be a hello frame (PROTOCOL.md §3)".into())
            .into_response();
    };
    let pipe = match connect(host.clone(), peer.ip()).await {
        Ok(pipe) => pipe,
        Err(e) => {
            tracing::warn!(error = %e, "cannot open a fallback link");
            return ApiError::Unavailable { why: "cannot open a link now; try again", close: false }
                .into_response();
        }
    };
    let (mut sink, stream) = pipe.split();
    if sink.send(Message::Text(hello.into())).await.is_err() {
        return ApiError::Unavailable { why: "the link closed at once; try again", close: false }
            .into_response();
    }
    let (tx, rx) = mpsc::channel(QUEUED);
    let closed = Arc::new(Mutex::new(None));
    let stuck = host.timing.heartbeat * 2;
    let on_refusal = {
        let refused = links.refused.clone();
        move || {
            if let Some(r) = refused {
                r.fail(addr);
            }
        }
    };
    let pump = host.tracker.spawn(pump(stream, tx, closed.clone(), stuck, on_refusal)).abort_handle();
    let secret = crate::hex(&rand::random::<[u8; 32]>());
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
    on_refusal: impl FnOnce(),
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
    if REFUSALS.contains(&close.0) {
        on_refusal();
    }
    let _ = tx.send(Item::Close(close.0, close.1)).await;
}

/// A WebSocket to the lesson's own handler through an in-memory pipe, as if from `peer`.
async fn connect(host: Arc<Host>, peer: IpAddr) -> Result<Pipe, String> {
    let (client_io, server_io) = tokio::io::duplex(16 * 1024);
    let tracker = host.tracker.clone();
    let handler = Router::new().route(
        crate::protocol::WS_PATH,
        get(move |upgrade: WebSocketUpgrade| async move {
            crate::transport::connection::upgrade(upgrade, host, peer)
        }),
    );
    let service = TowerToHyperService::new(handler);
    // Serves the one upgrade; the upgraded connection then runs as a task of its own, which holds a
    // token of the same tracker.
    tracker.spawn(async move {
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

/// `POST /v1/sse/send`: the client's frames, one per line, in order. The link is found before a byte
/// of the body is read. Frames for a link whose lesson connection closed are dropped, as a closed
/// WebSocket would: the event stream says why it closed.
async fn send(
    State(links): State<Arc<Links>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let gone = || ApiError::NotFound("no such link (it closed); connect again".into()).into_response();
    let Some(link) = links.find(&headers) else { return gone() };
    if link.closed_at().is_some() {
        return StatusCode::NO_CONTENT.into_response();
    }
    let host = &links.host;
    let body = match host.bodies.read(peer.ip(), &headers, body, SEND_BYTES, host.timing.idle_timeout).await {
        Ok(body) => body,
        Err(crate::transport::body::Refused::Busy) => {
            return crate::transport::body::Refused::Busy.into_response();
        }
        Err(refused) => {
            // A body that trickled, broke off or ran over: the link ends, as a WebSocket whose
            // frame did so would, and the address is charged for it.
            links.refused_open(link.addr);
            links.end(&link).await;
            return refused.into_response();
        }
    };
    link.heard();
    let Ok(text) = std::str::from_utf8(&body) else {
        return ApiError::BadRequest("frames must be UTF-8".into()).into_response();
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
        links.end(&link).await;
    }
    StatusCode::NO_CONTENT.into_response()
}
