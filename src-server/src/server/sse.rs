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
//! A link nobody has posted to or streamed from for three heartbeats (at least 30 s) is closed, as a
//! silent WebSocket would be.

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
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::server::host::Host;

mod events;

type Pipe = WebSocketStream<tokio::io::DuplexStream>;

/// One client's link: the in-process WebSocket's two halves, and when the client was last heard.
struct Link {
    sink: tokio::sync::Mutex<SplitSink<Pipe, Message>>,
    /// `None` while a GET streams it.
    stream: Mutex<Option<SplitStream<Pipe>>>,
    heard: Mutex<Instant>,
    addr: IpAddr,
}

impl Link {
    fn heard(&self) {
        *self.heard.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }
}

/// Every open link, by the SHA-256 of its secret.
pub struct Links {
    host: Arc<Host>,
    links: Mutex<HashMap<[u8; 32], Arc<Link>>>,
    reaper: std::sync::Once,
}

/// The fallback transport's routes, on `host` (merged into a server's or a relay's router).
pub fn router(host: Arc<Host>) -> Router {
    let body_limit = host.limits.max_frame_bytes.saturating_mul(64);
    let links = Arc::new(Links { host, links: Mutex::default(), reaper: std::sync::Once::new() });
    Router::new()
        .route("/v1/sse", post(open).get(events::stream).delete(close))
        .route("/v1/sse/send", post(send))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(links)
}

impl Links {
    fn find(&self, headers: &HeaderMap) -> Option<Arc<Link>> {
        let secret = headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")?;
        let key: [u8; 32] = Sha256::digest(secret.trim().as_bytes()).into();
        self.links.lock().unwrap_or_else(|p| p.into_inner()).get(&key).cloned()
    }

    fn remove(&self, link: &Arc<Link>) {
        self.links.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, l| !Arc::ptr_eq(l, link));
    }

    /// How long a link may go unheard: three heartbeats, and never under 30 s.
    fn patience(&self) -> Duration {
        (self.host.timing.heartbeat * 3).max(Duration::from_secs(30))
    }

    /// Closes links unheard for too long, every few seconds, while any are open.
    fn start_reaper(self: &Arc<Self>) {
        let links = Arc::downgrade(self);
        self.reaper.call_once(|| {
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(5));
                loop {
                    tick.tick().await;
                    let Some(links) = links.upgrade() else { return };
                    let patience = links.patience();
                    let mut map = links.links.lock().unwrap_or_else(|p| p.into_inner());
                    map.retain(|_, l| l.heard.lock().unwrap_or_else(|p| p.into_inner()).elapsed() < patience);
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
    {
        let map = links.links.lock().unwrap_or_else(|p| p.into_inner());
        let from_here = map.values().filter(|l| l.addr == addr).count();
        let cap_here = host.limits.max_students_per_address.max(8);
        if map.len() >= host.limits.max_participants.saturating_mul(2) + 16 || from_here >= cap_here {
            host.metrics.reject(crate::metrics::Rejected::RateLimited);
            return refuse(StatusCode::TOO_MANY_REQUESTS, "too many connections; try again in a moment");
        }
    }
    let pipe = match connect(host.clone(), peer.ip()).await {
        Ok(pipe) => pipe,
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, &format!("cannot open a link: {e}")),
    };
    let (mut sink, stream) = pipe.split();
    if sink.send(Message::Text(hello.into())).await.is_err() {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "the link closed at once");
    }
    let secret = crate::docs::hex(&rand::random::<[u8; 32]>());
    let key: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
    let link = Arc::new(Link {
        sink: tokio::sync::Mutex::new(sink),
        stream: Mutex::new(Some(stream)),
        heard: Mutex::new(Instant::now()),
        addr,
    });
    links.links.lock().unwrap_or_else(|p| p.into_inner()).insert(key, link);
    links.start_reaper();
    (StatusCode::CREATED, axum::Json(serde_json::json!({ "link": secret }))).into_response()
}

/// A WebSocket to the lesson's own handler through an in-memory pipe, as if from `peer`.
async fn connect(host: Arc<Host>, peer: IpAddr) -> Result<Pipe, String> {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
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
    let (pipe, _) = tokio_tungstenite::client_async(url, client_io).await.map_err(|e| e.to_string())?;
    Ok(pipe)
}

/// `POST /v1/sse/send`: the client's frames, one per line, in order.
async fn send(State(links): State<Arc<Links>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(link) = links.find(&headers) else {
        return refuse(StatusCode::NOT_FOUND, "no such link (it closed); connect again");
    };
    link.heard();
    let Ok(text) = std::str::from_utf8(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "frames must be UTF-8");
    };
    let mut sink = link.sink.lock().await;
    for frame in text.split('\n').filter(|f| !f.trim().is_empty()) {
        if sink.feed(Message::Text(frame.into())).await.is_err() {
            return refuse(StatusCode::NOT_FOUND, "the link closed; connect again");
        }
    }
    if sink.flush().await.is_err() {
        return refuse(StatusCode::NOT_FOUND, "the link closed; connect again");
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `DELETE /v1/sse`: the client is done with its link.
async fn close(State(links): State<Arc<Links>>, headers: HeaderMap) -> Response {
    if let Some(link) = links.find(&headers) {
        links.remove(&link);
        let _ = link.sink.lock().await.close().await;
    }
    StatusCode::NO_CONTENT.into_response()
}
