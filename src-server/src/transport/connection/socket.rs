//! What a connection's phases share: its liveness clock, close frames, and how an oversized frame shows
//! up in the WebSocket library's errors.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use tokio_tungstenite::tungstenite;

/// Liveness shared by a connection's reader and writer.
#[derive(Debug)]
pub(super) struct Live {
    pub(super) start: Instant,
    /// Milliseconds since `start` when the peer last sent anything.
    pub(super) last_seen_ms: AtomicU64,
    /// Payload (µs since `start`) of the last WebSocket Ping sent; only its Pong counts as a round trip.
    pub(super) last_ping_us: AtomicU64,
}

impl Live {
    pub(super) fn touch(&self) {
        self.last_seen_ms.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    pub(super) fn silent_for(&self) -> Duration {
        let last = self.last_seen_ms.load(Ordering::Relaxed);
        Duration::from_millis((self.start.elapsed().as_millis() as u64).saturating_sub(last))
    }
}

pub(super) fn close_frame(code: u16, reason: &str) -> Message {
    // A close reason may hold at most 123 bytes.
    let mut end = reason.len().min(120);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from(&reason[..end]) }))
}

/// The WebSocket library's error under `e`, if it is one.
fn ws_error(e: &axum::Error) -> Option<&tungstenite::Error> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(ws) = err.downcast_ref::<tungstenite::Error>() {
            return Some(ws);
        }
        source = err.source();
    }
    None
}

pub(super) fn is_too_big(e: &axum::Error) -> bool {
    matches!(ws_error(e), Some(tungstenite::Error::Capacity(_)))
}

/// A frame that breaks the WebSocket protocol itself (an unmasked frame, a control frame over 125
/// bytes, text that is not UTF-8, reserved bits): answered with close 4400 (§10), not a dropped line.
pub(super) fn is_malformed(e: &axum::Error) -> bool {
    use tungstenite::error::ProtocolError as P;
    match ws_error(e) {
        Some(tungstenite::Error::Utf8(_)) => true,
        Some(tungstenite::Error::Protocol(p)) => matches!(
            p,
            P::NonZeroReservedBits
                | P::UnmaskedFrameFromClient
                | P::FragmentedControlFrame
                | P::ControlFrameTooBig
                | P::UnknownControlFrameType(_)
                | P::UnknownDataFrameType(_)
                | P::UnexpectedContinueFrame
                | P::ExpectedFragment(_)
                | P::InvalidCloseSequence
                | P::InvalidOpcode(_)
        ),
        // A line that ends without a close frame (a tablet that went away) is no violation.
        _ => false,
    }
}
