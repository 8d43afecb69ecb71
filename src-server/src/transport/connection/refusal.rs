//! Refusals before a connection joins a room: what to count in the metrics, what `error` to send, and
//! which close code and reason end the connection (§3, §10).

use std::net::IpAddr;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures_util::SinkExt;
use futures_util::stream::SplitSink;

use super::socket::close_frame;
use crate::engine::room::join::JoinError;
use crate::metrics::Rejected;
use crate::protocol::{ErrorCode, ServerMsg, close};
use crate::transport::host::Host;

/// Why the hello phase ends without a participant: what to count, say and close with. `None` where
/// the peer left on its own and there is nobody to tell.
pub(super) struct Refusal {
    pub(super) counted: Option<Rejected>,
    pub(super) error: Option<ServerMsg>,
    pub(super) code: u16,
    pub(super) reason: String,
}

impl Refusal {
    /// Sends the error (if any), then closes: for refusals before the connection joins a room.
    pub(super) async fn send(self, sink: &mut SplitSink<WebSocket, Message>) {
        let send = async {
            if let Some(e) = self.error {
                sink.send(Message::Text(e.encode().into())).await?;
            }
            sink.send(close_frame(self.code, &self.reason)).await
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), send).await;
    }
}

/// A refusal with no error frame.
pub(super) fn refusal(
    counted: impl Into<Option<Rejected>>,
    code: u16,
    reason: impl Into<String>,
) -> Option<Box<Refusal>> {
    Some(Box::new(Refusal { counted: counted.into(), error: None, code, reason: reason.into() }))
}

/// What to count, say and close with for a refused join; a wrong code (`code_claim`) counts against
/// the address: past its quota, its next code claims wait for the teacher instead of being checked.
pub(super) fn join_refusal(
    e: JoinError,
    app: &Host,
    addr: Option<IpAddr>,
    code_claim: bool,
) -> Option<Box<Refusal>> {
    match e {
        JoinError::BadRequest(m) => Some(Box::new(Refusal {
            counted: Some(Rejected::BadRequest),
            error: Some(ServerMsg::error(None, ErrorCode::BadRequest, m.clone())),
            code: close::PROTOCOL,
            reason: m,
        })),
        e @ JoinError::Credentials => {
            if code_claim && let Some(ip) = addr {
                app.failed_hellos.fail(ip);
            }
            refusal(Rejected::Auth, e.close_code(), e.to_string())
        }
        e => refusal(None, e.close_code(), e.to_string()),
    }
}
