//! The IPC bridge: the view's lesson connections, held in Rust. The webview cannot pin a self-signed
//! certificate, so it never opens a socket to a classroom: it asks for a connection here, Rust opens
//! the WebSocket with the pin, and PROTOCOL.md frames cross IPC unchanged in both directions, in order.
//!
//! Nothing here knows Tauri: a link reports to any `Fn(LinkEvent)`, so the bridge is tested against a
//! real server with no window, and the Tauri command that uses it is an adapter.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use lectern::client::ConnectError;
use lectern_protocol::ClientMsg;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// The close code the view sees when the server's certificate is not the pinned one (the reason is
/// the mismatch) or, for a relay link checked by name, not valid (the reason is the problem's key,
/// `tls::CertProblem::key`): WebSocket's "TLS handshake failed". The view stops and says which.
pub const UNTRUSTED_CERTIFICATE: u16 = 1015;
/// The close code for a connection that never opened or dropped without a close frame.
pub const ABNORMAL: u16 = 1006;
/// The longest a TCP connect, TLS handshake and WebSocket upgrade may take together.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What a link reports to the view, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LinkEvent {
    /// The WebSocket is open: the view says `hello` now.
    Open,
    /// One text frame from the server, as sent.
    Frame {
        /// The frame's JSON.
        text: String,
    },
    /// The connection is over, with a close code of §10, 1006, or 1015 for a certificate not trusted
    /// (a pin mismatch, or one not valid for its name).
    Closed {
        /// Close code.
        code: u16,
        /// Why.
        reason: String,
    },
}

/// Why the view's request to a link was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BridgeError {
    /// No such link (it closed, or never existed).
    #[error("that connection is closed")]
    Closed,
    /// The frame is not a client frame of PROTOCOL.md.
    #[error("not a Lectern frame: {0}")]
    BadFrame(String),
}

enum Down {
    Text(String),
    Close(u16, String),
}

/// The view's open links, by id.
#[derive(Default)]
pub struct Bridge {
    links: Arc<Mutex<HashMap<u32, mpsc::UnboundedSender<Down>>>>,
    next: AtomicU32,
}

impl Bridge {
    /// Opens a link to `ws_url`, pinned to `fingerprint`; events go to `report` until `Closed`.
    pub fn connect(
        &self,
        ws_url: String,
        fingerprint: String,
        report: impl Fn(LinkEvent) + Send + Sync + 'static,
    ) -> u32 {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = mpsc::unbounded_channel();
        self.links.lock().unwrap_or_else(|p| p.into_inner()).insert(id, tx);
        let links = self.links.clone();
        tokio::spawn(async move {
            let (code, reason) = run(&ws_url, &fingerprint, rx, &report).await;
            links.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            report(LinkEvent::Closed { code, reason });
        });
        id
    }

    /// Sends a frame the view built; it must parse as a client frame.
    pub fn send(&self, id: u32, frame: String) -> Result<(), BridgeError> {
        if let Err(e) = serde_json::from_str::<ClientMsg>(&frame) {
            return Err(BridgeError::BadFrame(e.to_string()));
        }
        let links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        let link = links.get(&id).ok_or(BridgeError::Closed)?;
        link.send(Down::Text(frame)).map_err(|_| BridgeError::Closed)
    }

    /// Closes a link (a `Closed` event follows); closing one already gone is not an error.
    pub fn close(&self, id: u32, code: u16, reason: String) {
        // Only codes an endpoint may send (1000, or 3000 to 4999); reserved ones become 1000.
        let code = if code == 1000 || (3000..5000).contains(&code) { code } else { 1000 };
        if let Some(link) = self.links.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
            let _ = link.send(Down::Close(code, reason));
        }
    }

    /// Closes every link (the window is going away).
    pub fn close_all(&self) {
        for link in self.links.lock().unwrap_or_else(|p| p.into_inner()).values() {
            let _ = link.send(Down::Close(1001, "the app is closing".into()));
        }
    }
}

async fn run(
    ws_url: &str,
    fingerprint: &str,
    mut rx: mpsc::UnboundedReceiver<Down>,
    report: &(impl Fn(LinkEvent) + Send + Sync),
) -> (u16, String) {
    // A connect on dead Wi-Fi can hang for minutes: bound it, and let the view close it meanwhile.
    let connecting = tokio::time::timeout(CONNECT_TIMEOUT, lectern::client::connect(ws_url, fingerprint));
    let connected = tokio::select! {
        c = connecting => c,
        down = rx.recv() => return match down {
            Some(Down::Close(code, reason)) => (code, reason),
            _ => (1000, String::new()),
        },
    };
    let mut ws = match connected {
        Ok(Ok(ws)) => ws,
        Ok(Err(e @ ConnectError::PinMismatch { .. })) => return (UNTRUSTED_CERTIFICATE, e.to_string()),
        // The problem's key, which the view words in its own language.
        Ok(Err(ConnectError::Certificate { problem, .. })) => {
            return (UNTRUSTED_CERTIFICATE, problem.key().into());
        }
        Ok(Err(e)) => return (ABNORMAL, e.to_string()),
        Err(_) => return (ABNORMAL, "connecting timed out".into()),
    };
    report(LinkEvent::Open);
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => report(LinkEvent::Frame { text: text.to_string() }),
                Some(Ok(Message::Close(frame))) => {
                    return frame.map_or((ABNORMAL, String::new()), |f| (u16::from(f.code), f.reason.to_string()));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return (ABNORMAL, e.to_string()),
                None => return (ABNORMAL, "connection closed".into()),
            },
            down = rx.recv() => match down {
                Some(Down::Text(text)) => {
                    if let Err(e) = ws.send(Message::text(text)).await {
                        return (ABNORMAL, e.to_string());
                    }
                }
                Some(Down::Close(code, reason)) => {
                    let frame = CloseFrame { code: CloseCode::from(code), reason: reason.clone().into() };
                    let _ = ws.close(Some(frame)).await;
                    return (code, reason);
                }
                None => {
                    let _ = ws.close(None).await;
                    return (1000, String::new());
                }
            },
        }
    }
}
