//! The Rust client: what the student app, `lectern join`, the tests and the benchmark use.
//!
//! It pins the server's certificate fingerprint and refuses any other, says `hello` (then `resume` on every
//! reconnect), keeps the lesson state by applying patches in seq order and asking for a snapshot on a
//! gap, pings every heartbeat and treats a missing pong as a dead link, and reconnects with backoff (first
//! try at once, then up to 5 s apart, with jitter). `ack`, `hand` and `view` given while offline are kept
//! (only the latest of each matters) and sent after the next welcome.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::error::{Error, Result};
use crate::protocol::{ErrorCode, RoomInfo, RosterEntry, SUBPROTOCOL, ServerMsg, VERSION, You, close};
use crate::state::LessonState;

/// A WebSocket over pinned TLS.
pub type Socket = WebSocketStream<TlsStream<TcpStream>>;

/// Where a join link points: the WebSocket URL, the join code and the pinned fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinLink {
    /// `wss://HOST:PORT/v1/ws`.
    pub ws_url: String,
    /// Join code from the fragment, if any.
    pub code: Option<String>,
    /// Fingerprint from the fragment, if any.
    pub fingerprint: Option<String>,
}

impl JoinLink {
    /// Parses `https://HOST:PORT/join#code=…&fp=…`, `wss://HOST:PORT/v1/ws` or `HOST:PORT`.
    pub fn parse(input: &str) -> Result<JoinLink> {
        let with_scheme = if input.contains("://") { input.to_string() } else { format!("https://{input}") };
        let url = url::Url::parse(&with_scheme)
            .map_err(|e| Error::Client(format!("bad address {input:?}: {e}")))?;
        let host = url.host_str().ok_or_else(|| Error::Client(format!("no host in {input:?}")))?;
        let port = url.port().unwrap_or(7443);
        let host =
            if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_string() };
        let mut code = None;
        let mut fingerprint = None;
        if let Some(fragment) = url.fragment() {
            for (k, v) in url::form_urlencoded::parse(fragment.as_bytes()) {
                match &*k {
                    "code" => code = Some(v.into_owned()),
                    "fp" => fingerprint = Some(v.into_owned()),
                    _ => {}
                }
            }
        }
        Ok(JoinLink { ws_url: format!("wss://{host}:{port}{}", crate::protocol::WS_PATH), code, fingerprint })
    }
}

/// Opens a WebSocket to `ws_url`, trusting only the certificate with `fingerprint`.
pub async fn connect(ws_url: &str, fingerprint: &str) -> Result<Socket> {
    let url = url::Url::parse(ws_url).map_err(|e| Error::Client(format!("bad URL {ws_url:?}: {e}")))?;
    let host = url.host_str().ok_or_else(|| Error::Client("no host in URL".into()))?.to_string();
    let port = url.port().unwrap_or(7443);
    let bare = host.trim_start_matches('[').trim_end_matches(']').to_string();
    let tcp = TcpStream::connect((bare.as_str(), port)).await?;
    connect_over(tcp, ws_url, fingerprint).await
}

/// Like [`connect`], over a TCP stream the caller opened (to set socket options, say).
pub async fn connect_over(tcp: TcpStream, ws_url: &str, fingerprint: &str) -> Result<Socket> {
    let url = url::Url::parse(ws_url).map_err(|e| Error::Client(format!("bad URL {ws_url:?}: {e}")))?;
    let host = url.host_str().ok_or_else(|| Error::Client("no host in URL".into()))?.to_string();
    let port = url.port().unwrap_or(7443);
    let bare = host.trim_start_matches('[').trim_end_matches(']').to_string();
    let _ = tcp.set_nodelay(true);
    let config = crate::tls::pinned_client_config(fingerprint)?;
    let name = rustls::pki_types::ServerName::try_from(bare.clone())
        .map_err(|e| Error::Client(format!("bad host name {bare:?}: {e}")))?;
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| Error::Client(format!("TLS with {bare}:{port} failed: {e}")))?;
    let mut request = ws_url.into_client_request().map_err(|e| Error::Client(format!("bad request: {e}")))?;
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(SUBPROTOCOL));
    let config = WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(64 << 20));
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, tls, Some(config))
        .await
        .map_err(|e| Error::Client(format!("WebSocket upgrade failed: {e}")))?;
    Ok(ws)
}

/// How a client proves who it is.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// A student with the join code and a display name.
    Student {
        /// Join code.
        code: String,
        /// Display name.
        name: String,
    },
    /// A teacher with the teacher key.
    Teacher {
        /// Teacher key.
        key: String,
    },
}

/// Settings of a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `wss://HOST:PORT/v1/ws`.
    pub url: String,
    /// The pinned certificate fingerprint.
    pub fingerprint: String,
    /// Code or key.
    pub credentials: Credentials,
    /// Stable device id (8 to 64 of `[A-Za-z0-9_-]`).
    pub device: String,
    /// Ack every state on arrival (at most 10 a second), as a display that shows it at once would.
    pub auto_ack: bool,
    /// Longest wait between reconnection attempts.
    pub max_backoff: Duration,
}

impl ClientOptions {
    /// Options with the protocol's defaults: auto-ack on, backoff capped at 5 s.
    pub fn new(
        url: impl Into<String>,
        fingerprint: impl Into<String>,
        credentials: Credentials,
        device: impl Into<String>,
    ) -> Self {
        ClientOptions {
            url: url.into(),
            fingerprint: fingerprint.into(),
            credentials,
            device: device.into(),
            auto_ack: true,
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// What produced a new state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The snapshot in `welcome`.
    Welcome,
    /// A patch applied in order.
    Patch,
    /// A snapshot after a gap or a full queue.
    Sync,
}

/// Something the client saw.
#[derive(Debug, Clone)]
pub enum Event {
    /// A `welcome`: connected (or reconnected).
    Connected {
        /// Who we are.
        you: You,
        /// The room.
        room: RoomInfo,
        /// True when this was a resume.
        resumed: bool,
        /// Whether a teacher is online.
        teacher_online: bool,
        /// Teachers: the whole roster.
        roster: Option<Vec<RosterEntry>>,
    },
    /// The lesson state changed.
    State {
        /// Seq of the state.
        seq: u64,
        /// The state.
        state: LessonState,
        /// What changed it.
        cause: Cause,
    },
    /// Roster changes (teachers).
    Roster(Vec<RosterEntry>),
    /// The teacher came or went.
    Teacher {
        /// Online?
        online: bool,
    },
    /// An `error` not tied to a request of ours.
    Error {
        /// Error code.
        code: ErrorCode,
        /// Message.
        message: String,
    },
    /// The link dropped; the client will reconnect.
    Disconnected {
        /// Close code, if the server sent one.
        code: Option<u16>,
        /// Why.
        reason: String,
    },
    /// The client stopped for good (lesson ended, kicked, bad credentials, replaced, closed).
    Stopped {
        /// Close code, if any.
        code: Option<u16>,
        /// Why.
        reason: String,
    },
}

/// A request that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The server answered `error`.
    #[error("{code:?}: {message}")]
    Refused {
        /// Error code.
        code: ErrorCode,
        /// Message.
        message: String,
    },
    /// Not connected now.
    #[error("not connected")]
    Offline,
    /// The connection dropped before the answer.
    #[error("connection lost before the answer")]
    Lost,
}

enum Command {
    Request { frame: serde_json::Value, reply: oneshot::Sender<Result<Option<u64>, RequestError>> },
    Ack(u64),
    Hand(bool),
    View(Option<u32>),
    Resync,
    Close,
}

/// A connected (or reconnecting) participant.
pub struct Client {
    tx: mpsc::UnboundedSender<Command>,
    events: mpsc::Receiver<Event>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Client")
    }
}

impl Client {
    /// Starts connecting in the background.
    pub fn start(options: ClientOptions) -> Client {
        let (tx, rx) = mpsc::unbounded_channel();
        let (ev_tx, events) = mpsc::channel(4096);
        let task = tokio::spawn(run(options, rx, ev_tx));
        Client { tx, events, task }
    }

    /// The next event; `None` once the client has stopped and every event was read.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    async fn request(&self, frame: serde_json::Value) -> Result<Option<u64>, RequestError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Request { frame, reply }).map_err(|_| RequestError::Offline)?;
        rx.await.unwrap_or(Err(RequestError::Lost))
    }

    /// Teacher: sends a `set` and waits for its seq.
    pub async fn set(&self, patch: serde_json::Value) -> Result<u64, RequestError> {
        self.request(serde_json::json!({"t":"set","patch":patch})).await.map(|s| s.unwrap_or(0))
    }

    /// Teacher: removes a student.
    pub async fn kick(&self, who: &str) -> Result<(), RequestError> {
        self.request(serde_json::json!({"t":"kick","who":who})).await.map(|_| ())
    }

    /// Teacher: ends the lesson.
    pub async fn end(&self) -> Result<(), RequestError> {
        self.request(serde_json::json!({"t":"end"})).await.map(|_| ())
    }

    /// Student: the state at `seq` is on screen (only needed with `auto_ack` off).
    pub fn ack(&self, seq: u64) {
        let _ = self.tx.send(Command::Ack(seq));
    }

    /// Student: raise or lower the hand (kept while offline).
    pub fn hand(&self, up: bool) {
        let _ = self.tx.send(Command::Hand(up));
    }

    /// Student: the page shown in free mode (kept while offline).
    pub fn view(&self, page: Option<u32>) {
        let _ = self.tx.send(Command::View(page));
    }

    /// Asks for a snapshot.
    pub fn resync(&self) {
        let _ = self.tx.send(Command::Resync);
    }

    /// Closes the connection (1000) and stops reconnecting.
    pub async fn close(self) {
        let _ = self.tx.send(Command::Close);
        let _ = self.task.await;
    }
}

#[derive(Default)]
struct Offline {
    hand: Option<bool>,
    view: Option<Option<u32>>,
    ack: Option<u64>,
}

enum Outcome {
    Retry(Option<u16>, String),
    Stop(Option<u16>, String),
    BadResume,
    Closed,
}

struct Session {
    token: Option<String>,
    seq: u64,
    state: Option<LessonState>,
    offline: Offline,
}

/// Longest a TCP connect, TLS handshake and WebSocket upgrade may take together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn backoff(attempt: u32, max: Duration) -> Duration {
    if attempt == 0 {
        return Duration::ZERO;
    }
    let base = Duration::from_millis(250).saturating_mul(1 << attempt.min(6).saturating_sub(1)).min(max);
    // Full jitter in the upper half, so a class of 30 does not reconnect in lock-step.
    base.mul_f64(rand::random_range(0.5..=1.0))
}

async fn run(options: ClientOptions, mut rx: mpsc::UnboundedReceiver<Command>, events: mpsc::Sender<Event>) {
    let mut session = Session { token: None, seq: 0, state: None, offline: Offline::default() };
    let mut attempt = 0u32;
    loop {
        // On dead Wi-Fi a connect can hang for minutes; bound it so the backoff stays meaningful.
        let connecting = tokio::time::timeout(CONNECT_TIMEOUT, connect(&options.url, &options.fingerprint));
        tokio::pin!(connecting);
        let connected = loop {
            tokio::select! {
                c = &mut connecting => break c.unwrap_or_else(|_| Err(Error::Client("connecting timed out".into()))),
                cmd = rx.recv() => match cmd {
                    None | Some(Command::Close) => return,
                    Some(cmd) => offline(cmd, &mut session.offline),
                },
            }
        };
        let outcome = match connected {
            Ok(ws) => live(ws, &options, &mut session, &mut rx, &events, &mut attempt).await,
            Err(e) => {
                if is_pin_mismatch(&e) {
                    Outcome::Stop(None, e.to_string())
                } else {
                    Outcome::Retry(None, e.to_string())
                }
            }
        };
        let wait = match outcome {
            Outcome::Closed => return,
            Outcome::Stop(code, reason) => {
                let _ = events.send(Event::Stopped { code, reason }).await;
                return;
            }
            Outcome::BadResume => {
                session.token = None;
                Duration::ZERO
            }
            Outcome::Retry(code, reason) => {
                let _ = events.send(Event::Disconnected { code, reason }).await;
                let mut wait = backoff(attempt, options.max_backoff);
                if code == Some(close::RATE_LIMITED) {
                    wait = wait.max(Duration::from_secs(1));
                }
                attempt += 1;
                wait
            }
        };
        // While waiting, keep what the user does for later, and fail requests at once.
        let sleep = tokio::time::sleep(wait);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                cmd = rx.recv() => match cmd {
                    None | Some(Command::Close) => return,
                    Some(cmd) => offline(cmd, &mut session.offline),
                },
            }
        }
    }
}

fn offline(cmd: Command, o: &mut Offline) {
    match cmd {
        Command::Request { reply, .. } => {
            let _ = reply.send(Err(RequestError::Offline));
        }
        Command::Ack(seq) => o.ack = Some(seq.max(o.ack.unwrap_or(0))),
        Command::Hand(up) => o.hand = Some(up),
        Command::View(page) => o.view = Some(page),
        Command::Resync | Command::Close => {}
    }
}

fn text(v: serde_json::Value) -> Message {
    Message::text(v.to_string())
}

async fn live(
    mut ws: Socket,
    options: &ClientOptions,
    s: &mut Session,
    rx: &mut mpsc::UnboundedReceiver<Command>,
    events: &mpsc::Sender<Event>,
    attempt: &mut u32,
) -> Outcome {
    let resumed = s.token.is_some();
    let mut hello = serde_json::json!({"t":"hello","v":VERSION,"device":options.device});
    match (&s.token, &options.credentials) {
        (Some(token), Credentials::Student { .. }) => {
            hello["role"] = "student".into();
            hello["resume"] = token.clone().into();
        }
        (Some(token), Credentials::Teacher { .. }) => {
            hello["role"] = "teacher".into();
            hello["resume"] = token.clone().into();
        }
        (None, Credentials::Student { code, name }) => {
            hello["role"] = "student".into();
            hello["code"] = code.clone().into();
            hello["name"] = name.clone().into();
        }
        (None, Credentials::Teacher { key }) => {
            hello["role"] = "teacher".into();
            hello["key"] = key.clone().into();
        }
    }
    if let Err(e) = ws.send(text(hello)).await {
        return Outcome::Retry(None, format!("sending hello: {e}"));
    }
    let mut heartbeat = Duration::from_secs(10);
    let mut welcomed = false;
    let mut pending: HashMap<u32, oneshot::Sender<Result<Option<u64>, RequestError>>> = HashMap::new();
    let mut next_id = 1u32;
    let mut ping_outstanding: Option<u32> = None;
    let mut ping = tokio::time::interval(heartbeat);
    let mut ack_tick = tokio::time::interval(Duration::from_millis(100));
    let mut acked = 0u64;
    let mut want_ack: Option<u64> = None;
    let mut resync_sent = false;
    let welcome_deadline = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(welcome_deadline);

    let outcome = loop {
        tokio::select! {
            _ = &mut welcome_deadline, if !welcomed => break Outcome::Retry(None, "no welcome in time".into()),
            msg = ws.next() => {
                let msg = match msg {
                    None => break Outcome::Retry(None, "connection closed".into()),
                    Some(Err(e)) => break Outcome::Retry(None, e.to_string()),
                    Some(Ok(m)) => m,
                };
                let body = match msg {
                    Message::Text(t) => t,
                    Message::Close(frame) => {
                        let (code, reason) = frame.map(|f| (Some(u16::from(f.code)), f.reason.to_string())).unwrap_or((None, String::new()));
                        break match code {
                            Some(close::BAD_CREDENTIALS) if resumed => Outcome::BadResume,
                            Some(c) if close::should_reconnect(c) => Outcome::Retry(code, reason),
                            None => Outcome::Retry(None, reason),
                            Some(_) => Outcome::Stop(code, reason),
                        };
                    }
                    _ => continue,
                };
                let Ok(msg) = serde_json::from_str::<ServerMsg>(&body) else { continue };
                match msg {
                    ServerMsg::Welcome { you, token, room, seq, state, heartbeat_ms, teacher_online, roster, .. } => {
                        welcomed = true;
                        *attempt = 0;
                        s.token = Some(token);
                        s.seq = seq;
                        s.state = Some(state.clone());
                        heartbeat = Duration::from_millis(heartbeat_ms.clamp(100, 120_000));
                        ping = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
                        let _ = events.send(Event::Connected { you, room, resumed, teacher_online, roster }).await;
                        let _ = events.send(Event::State { seq, state, cause: Cause::Welcome }).await;
                        if options.auto_ack { want_ack = Some(seq); }
                        let o = std::mem::take(&mut s.offline);
                        if let Some(up) = o.hand { let _ = ws.feed(text_msg("hand", serde_json::json!({"up": up}))).await; }
                        if let Some(page) = o.view { let _ = ws.feed(text_msg("view", serde_json::json!({"page": page}))).await; }
                        if let Some(a) = o.ack { want_ack = Some(want_ack.unwrap_or(0).max(a.min(seq))); }
                        let _ = ws.flush().await;
                    }
                    ServerMsg::Patch { seq, patch, .. } => {
                        let Some(state) = s.state.as_mut() else { continue };
                        if seq <= s.seq { continue; }
                        if seq == s.seq + 1 {
                            state.apply(&patch);
                            s.seq = seq;
                            let _ = events.send(Event::State { seq, state: state.clone(), cause: Cause::Patch }).await;
                            if options.auto_ack { want_ack = Some(seq); }
                        } else if !resync_sent {
                            resync_sent = true;
                            let _ = ws.send(text(serde_json::json!({"t":"resync"}))).await;
                        }
                    }
                    ServerMsg::Sync { seq, state } => {
                        if seq >= s.seq {
                            resync_sent = false;
                            s.seq = seq;
                            s.state = Some(state.clone());
                            let _ = events.send(Event::State { seq, state, cause: Cause::Sync }).await;
                            if options.auto_ack { want_ack = Some(seq); }
                        }
                    }
                    ServerMsg::Ok { id, seq, .. } => {
                        if let Some(reply) = id.and_then(|id| pending.remove(&id)) { let _ = reply.send(Ok(seq)); }
                    }
                    ServerMsg::Error { id, code, message } => {
                        match id.and_then(|id| pending.remove(&id)) {
                            Some(reply) => { let _ = reply.send(Err(RequestError::Refused { code, message })); }
                            None => { let _ = events.send(Event::Error { code, message }).await; }
                        }
                    }
                    ServerMsg::Roster { changes } => { let _ = events.send(Event::Roster(changes)).await; }
                    ServerMsg::Teacher { online } => { let _ = events.send(Event::Teacher { online }).await; }
                    ServerMsg::Pong { id, .. } => {
                        if id.is_some() && id == ping_outstanding { ping_outstanding = None; }
                    }
                }
            }
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { break Outcome::Closed };
                if !welcomed {
                    if matches!(cmd, Command::Close) {
                        let _ = ws.close(None).await;
                        break Outcome::Closed;
                    }
                    offline(cmd, &mut s.offline);
                    continue;
                }
                let frame = match cmd {
                    Command::Close => {
                        let _ = ws.close(None).await;
                        break Outcome::Closed;
                    }
                    Command::Request { mut frame, reply } => {
                        let id = next_id;
                        next_id = next_id.wrapping_add(1).max(1);
                        frame["id"] = id.into();
                        pending.insert(id, reply);
                        frame
                    }
                    Command::Ack(seq) => { want_ack = Some(seq.min(s.seq)); continue; }
                    Command::Hand(up) => serde_json::json!({"t":"hand","up":up}),
                    Command::View(page) => serde_json::json!({"t":"view","page":page}),
                    Command::Resync => serde_json::json!({"t":"resync"}),
                };
                if let Err(e) = ws.send(text(frame)).await {
                    break Outcome::Retry(None, e.to_string());
                }
            }
            _ = ping.tick(), if welcomed => {
                if ping_outstanding.is_some() {
                    break Outcome::Retry(None, format!("no pong within {} ms: dead link", heartbeat.as_millis()));
                }
                let id = next_id;
                next_id = next_id.wrapping_add(1).max(1);
                ping_outstanding = Some(id);
                if let Err(e) = ws.send(text(serde_json::json!({"t":"ping","id":id}))).await {
                    break Outcome::Retry(None, e.to_string());
                }
            }
            _ = ack_tick.tick(), if welcomed => {
                if let Some(seq) = want_ack.take() && (seq > acked || acked == 0) {
                    acked = seq;
                    if let Err(e) = ws.send(text(serde_json::json!({"t":"ack","seq":seq}))).await {
                        break Outcome::Retry(None, e.to_string());
                    }
                }
            }
        }
    };
    for (_, reply) in pending.drain() {
        let _ = reply.send(Err(RequestError::Lost));
    }
    outcome
}

fn text_msg(t: &str, mut body: serde_json::Value) -> Message {
    body["t"] = t.into();
    text(body)
}

/// Whether an error from [`connect`] means the certificate did not match the pin.
pub fn is_pin_mismatch(e: &Error) -> bool {
    e.to_string().contains("fingerprint")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_join_link_carries_code_and_fingerprint() {
        let l = JoinLink::parse("https://192.168.1.20:7443/join#code=482913&fp=abc").unwrap();
        assert_eq!(l.ws_url, "wss://192.168.1.20:7443/v1/ws");
        assert_eq!(l.code.as_deref(), Some("482913"));
        assert_eq!(l.fingerprint.as_deref(), Some("abc"));
        assert_eq!(JoinLink::parse("localhost:9000").unwrap().ws_url, "wss://localhost:9000/v1/ws");
    }

    #[test]
    fn backoff_starts_at_once_and_stays_under_the_cap() {
        assert_eq!(backoff(0, Duration::from_secs(5)), Duration::ZERO);
        for n in 1..20 {
            assert!(backoff(n, Duration::from_secs(5)) <= Duration::from_secs(5));
        }
    }
}
