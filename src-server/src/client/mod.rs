//! The Rust client: follows a lesson as a student (or leads it as a teacher) over pinned TLS, and keeps
//! following it through dropped links, server restarts and weak Wi-Fi. The student app, the CLI's
//! `lectern join`, the doctor and the benchmark use it.
//!
//! [`Client::start`] returns a handle at once; a session task ([`session`]) connects, says hello or
//! resumes, applies patches in seq order (a gap asks for a snapshot), acks what is shown, pings to tell
//! a dead link, and reconnects with backoff. The handle sends requests and reads [`Event`]s.

mod apply;
mod connect;
pub mod fetch;
mod second;
mod session;
mod trust;
mod types;

use tokio::sync::{mpsc, oneshot};

pub use self::connect::{ConnectError, Socket, connect, connect_over, tls, tls_over};
pub use self::trust::RelayCheck;
pub use self::types::{Cause, ClientOptions, Credentials, Event, RelayTrust, RequestError};
use self::types::{Command, Request};
use crate::protocol::SetPatch;
pub use crate::protocol::link::JoinLink;

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
        let task = tokio::spawn(session::run(options, rx, ev_tx));
        Client { tx, events, task }
    }

    /// The next event; `None` once the client has stopped and every event was read.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    async fn request(&self, request: Request) -> Result<Option<u64>, RequestError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Request { request: Box::new(request), reply })
            .map_err(|_| RequestError::Offline)?;
        rx.await.unwrap_or(Err(RequestError::Lost))
    }

    /// Teacher: sends a `set` and waits for its seq.
    pub async fn set(&self, patch: SetPatch) -> Result<u64, RequestError> {
        self.request(Request::Set(Box::new(patch))).await.map(|s| s.unwrap_or(0))
    }

    /// Teacher: removes a student.
    pub async fn kick(&self, who: &str) -> Result<(), RequestError> {
        self.request(Request::Kick(who.to_string())).await.map(|_| ())
    }

    /// Teacher: lets in students who knocked (ids from [`Event::Knocks`]).
    pub async fn admit(&self, knocks: Vec<String>) -> Result<(), RequestError> {
        self.request(Request::Admit(knocks)).await.map(|_| ())
    }

    /// Teacher: turns away students who knocked.
    pub async fn deny(&self, knocks: Vec<String>) -> Result<(), RequestError> {
        self.request(Request::Deny(knocks)).await.map(|_| ())
    }

    /// Teacher: ends the lesson.
    pub async fn end(&self) -> Result<(), RequestError> {
        self.request(Request::End).await.map(|_| ())
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
