//! A student's second path (docs/PROTOCOL-ADDITIONS.md, N), for the Rust client as the browser has it
//! (`ui/src/secondpath.ts`): a second connection, opened with the resume token 3 s after a welcome
//! that offers one, that only listens. Its frames are taken by the session like the first path's,
//! once a copy of what the session has is dropped unread.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::apply::{Session, frame};
use super::connect::{ConnectError, Socket, connect};
use super::types::ClientOptions;
use crate::protocol::{ClientMsg, Hello, ServerMsg, VERSION, close};

/// How long after the first path's welcome the second is opened: a student joining over a thin link
/// fetches the page it must show first.
pub(super) const AFTER_WELCOME: Duration = Duration::from_secs(3);
/// How long to wait before opening it again after it dropped.
const RETRY: Duration = Duration::from_secs(5);
/// How many times a second path refused with 4400 (behind a balancer, a relay without its student)
/// is tried again, after 1, 2 and 4 s.
const REFUSED_TRIES: u32 = 3;
/// Longest a TCP connect, TLS handshake and WebSocket upgrade may take together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One student's second path, while its first is in.
pub(super) struct SecondPath {
    token: Option<String>,
    socket: Option<Socket>,
    connecting: Option<JoinHandle<Result<Socket, ConnectError>>>,
    due: Option<Instant>,
    refused: u32,
    heard: Instant,
    pinged: Option<Instant>,
}

impl Drop for SecondPath {
    fn drop(&mut self) {
        // A connect under way when the first path goes must not finish into a stray connection.
        self.stop();
    }
}

impl SecondPath {
    /// None yet.
    pub(super) fn new() -> SecondPath {
        SecondPath {
            token: None,
            socket: None,
            connecting: None,
            due: None,
            refused: 0,
            heard: Instant::now(),
            pinged: None,
        }
    }

    /// Whether a second path is wanted (open, being opened, or due).
    pub(super) fn active(&self) -> bool {
        self.token.is_some()
    }

    /// Whether the second path is open: only then can the first bring copies of what it brought.
    pub(super) fn open(&self) -> bool {
        self.socket.is_some()
    }

    /// Opens one with this resume token a little after the welcome that offered it, replacing any.
    pub(super) fn start(&mut self, token: String) {
        self.stop();
        self.token = Some(token);
        self.refused = 0;
        self.due = Some(Instant::now() + AFTER_WELCOME);
    }

    /// Closes it; not opened again until `start`.
    pub(super) fn stop(&mut self) {
        self.token = None;
        self.due = None;
        if let Some(task) = self.connecting.take() {
            task.abort();
        }
        self.socket = None; // dropped: the server sees the connection go
    }

    /// Waits for what happens next on the second path (pending for ever while there is none): a frame
    /// that may move the lesson forward (a patch, a sync, a beat; its welcome comes as a sync), or
    /// `None` for anything else (a pong, a frame it cannot read, an attempt begun or failed).
    pub(super) async fn next(&mut self, options: &ClientOptions, heartbeat: Duration) -> Option<ServerMsg> {
        if let Some(socket) = self.socket.as_mut() {
            let ping_at = self.pinged.unwrap_or(self.heard) + heartbeat;
            tokio::select! {
                msg = socket.next() => return self.on_message(msg),
                _ = tokio::time::sleep_until(ping_at) => {
                    if self.heard.elapsed() >= 2 * heartbeat {
                        // Heard nothing for two heartbeats: a half-open connection is no path.
                        self.dropped(None);
                    } else if socket.send(frame(&ClientMsg::Ping { id: None })).await.is_err() {
                        self.dropped(None);
                    } else {
                        self.pinged = Some(Instant::now());
                    }
                    return None;
                }
            }
        }
        if let Some(task) = self.connecting.as_mut() {
            // The task connects and says hello: the socket is kept the moment it comes back, with
            // no await between (this future may be dropped at any await, when another branch wins).
            let connected = task.await;
            self.connecting = None;
            match connected {
                Ok(Ok(socket)) => {
                    self.heard = Instant::now();
                    self.pinged = None;
                    self.socket = Some(socket);
                }
                _ => self.dropped(None),
            }
            return None;
        }
        match self.due {
            Some(due) if self.token.is_some() => {
                tokio::time::sleep_until(due).await;
                self.due = None;
                let (url, fingerprint) = (options.url.clone(), options.fingerprint.clone());
                let hello = frame(&self.hello(options));
                self.connecting = Some(tokio::spawn(async move {
                    let opened = async {
                        let mut socket = connect(&url, &fingerprint).await?;
                        socket
                            .send(hello)
                            .await
                            .map_err(|e| ConnectError::Upgrade(format!("sending hello: {e}")))?;
                        Ok(socket)
                    };
                    tokio::time::timeout(CONNECT_TIMEOUT, opened).await.unwrap_or(Err(ConnectError::Timeout))
                }));
                None
            }
            _ => std::future::pending().await,
        }
    }

    /// Whether a patch or snapshot is a copy of what the session has (of its epoch, at or before its
    /// seq): with two paths the slower brings every change again, and its snapshots may be older than
    /// the lesson shown. Dropped unread, from either path, never refused as a replay.
    pub(super) fn is_copy(msg: &ServerMsg, s: &Session) -> bool {
        let copy = |seq: u64, epoch: Option<u64>| seq <= s.seq && epoch == s.epoch;
        match msg {
            ServerMsg::Patch { seq, signed, .. } | ServerMsg::Sync { seq, signed, .. } => {
                copy(*seq, signed.as_ref().map(|s| s.epoch))
            }
            _ => false,
        }
    }

    /// Whether a frame from the second path is dropped unread: a copy, or a patch past the next one
    /// (the first path brings those between, and asks for a snapshot on a gap of its own).
    pub(super) fn stale(msg: &ServerMsg, s: &Session) -> bool {
        SecondPath::is_copy(msg, s) || matches!(msg, ServerMsg::Patch { seq, .. } if *seq > s.seq + 1)
    }

    fn hello(&self, options: &ClientOptions) -> ClientMsg {
        ClientMsg::Hello(Hello {
            v: Some(VERSION.into()),
            role: Some("student".into()),
            resume: self.token.clone(),
            device: Some(options.device.clone()),
            room: options.relay.as_ref().map(|r| r.room.clone()),
            second: true,
            partial_sync: true,
            ..Hello::default()
        })
    }

    fn on_message(
        &mut self,
        msg: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) -> Option<ServerMsg> {
        let text = match msg {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(close))) => {
                self.dropped(close.map(|c| u16::from(c.code)));
                return None;
            }
            Some(Ok(_)) => {
                self.heard = Instant::now();
                return None;
            }
            None | Some(Err(_)) => {
                self.dropped(None);
                return None;
            }
        };
        self.heard = Instant::now();
        match serde_json::from_str::<ServerMsg>(&text) {
            Ok(ServerMsg::Welcome { seq, state, signed, .. }) => {
                self.refused = 0;
                Some(ServerMsg::Sync { seq, state, signed, partial: None })
            }
            Ok(msg @ (ServerMsg::Patch { .. } | ServerMsg::Sync { .. } | ServerMsg::Beat { .. })) => {
                Some(msg)
            }
            Ok(ServerMsg::Pong { .. }) => {
                self.pinged = None;
                None
            }
            _ => None,
        }
    }

    /// The connection went: opened again later, or not until the next welcome.
    fn dropped(&mut self, code: Option<u16>) {
        self.socket = None;
        self.pinged = None;
        if self.token.is_none() {
            return;
        }
        self.due = match code {
            // Most often a balancer that sent it to a relay where the student is not: tried again,
            // sooner each time.
            Some(close::PROTOCOL) if self.refused < REFUSED_TRIES => {
                self.refused += 1;
                Some(Instant::now() + Duration::from_secs(1 << (self.refused - 1)))
            }
            // Refused for what it is, replaced, removed, or the lesson is over: the next welcome decides.
            Some(c)
                if [
                    close::ENDED,
                    close::BAD_CREDENTIALS,
                    close::KICKED,
                    close::RATE_LIMITED,
                    close::REPLACED,
                    close::PROTOCOL,
                ]
                .contains(&c) =>
            {
                None
            }
            _ => Some(Instant::now() + RETRY),
        };
    }
}
