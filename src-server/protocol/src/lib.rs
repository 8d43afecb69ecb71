//! Lectern's wire contract, PROTOCOL.md v1, in one place: the frames a client and a server exchange, the
//! lesson state and the rules for changing it, the HTTP bodies, join links, the mDNS TXT keys and the
//! fingerprint format.
//!
//! The server, the relay, the Rust client, the app and the benchmark all speak through these types, and
//! the UI's TypeScript types are generated from them (feature `ts`), so a change here is a change to the
//! protocol everywhere at once. The crate depends on serde (and serde_json, its JSON format), and for
//! [`sign`] on Ed25519, SHA-256 and canonical JSON: what a signature covers is part of the contract.

pub mod close;
pub mod fields;
pub mod frame;
pub mod http;
pub mod ink;
pub mod link;
pub mod manifest;
pub mod marks;
pub mod parse;
pub mod partial;
pub mod patch;
pub mod people;
pub mod shapes;
pub mod sign;
pub mod signed;
pub mod state;

pub use frame::{Beat, ClientMsg, ErrorCode, Hello, KnockEntry, Role, RoomInfo, RosterEntry, ServerMsg, You};
pub use ink::{Ink, InkColor, LiveInk, LiveStep};
pub use marks::{Mark, MarkOp, Marks};
pub use parse::{CLIENT_TYPES, ParseError};
pub use signed::Signed;
pub use state::{Doc, Highlight, LessonState, Mode, Patch, Pos, Region, SetPatch};

/// The protocol version this crate speaks.
pub const VERSION: u32 = 1;
/// The WebSocket subprotocol clients offer and the server selects.
pub const SUBPROTOCOL: &str = "lectern.v1";
/// The WebSocket path on every Lectern server.
pub const WS_PATH: &str = "/v1/ws";
/// The port a Lectern server listens on unless told otherwise, and the one a link without a port means.
pub const DEFAULT_PORT: u16 = 7443;
