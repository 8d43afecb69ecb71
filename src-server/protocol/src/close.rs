//! WebSocket close codes of PROTOCOL.md §10, and which of them a client should answer by reconnecting.

/// Normal close.
pub const NORMAL: u16 = 1000;
/// A binary frame was received.
pub const UNSUPPORTED_DATA: u16 = 1003;
/// A frame larger than the frame limit was received.
pub const TOO_BIG: u16 = 1009;
/// The lesson ended.
pub const ENDED: u16 = 4000;
/// Bad join code, teacher key or resume token.
pub const BAD_CREDENTIALS: u16 = 4001;
/// Kicked by the teacher.
pub const KICKED: u16 = 4003;
/// No `hello` in time.
pub const HELLO_TIMEOUT: u16 = 4008;
/// Rate limited, or too many failed joins.
pub const RATE_LIMITED: u16 = 4029;
/// Protocol violation.
pub const PROTOCOL: u16 = 4400;
/// Replaced by a newer connection of the same device.
pub const REPLACED: u16 = 4409;
/// Unsupported protocol version.
pub const VERSION: u16 = 4426;
/// Server shutting down or restarting.
pub const RESTARTING: u16 = 4503;

/// Whether a client that saw this close code should reconnect (with resume) rather than stop.
pub fn should_reconnect(code: u16) -> bool {
    matches!(code, HELLO_TIMEOUT | RATE_LIMITED | RESTARTING | 1001 | 1006 | 1011 | 1012 | 1013)
}
