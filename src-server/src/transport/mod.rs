//! The transport both hosts stand on: what turns a socket into a room's participant. The teacher's
//! server ([`crate::server`]) and the relay ([`crate::relay`]) each depend on it, and never on each
//! other; it knows neither (a host hands it its rooms as a [`host::Rooms`]).
//!
//! - [`accept`] takes connections (capped in all and per address by [`slots`]), speaks TLS and
//!   HTTP/1.1, and runs each connection as a task of the host's tracker; [`proxy`] reads the PROXY
//!   protocol header of the load balancers a relay trusts;
//! - [`connection`] is a lesson's WebSocket: hello, admission, the reader and the writer;
//! - [`sse`] is the fallback transport (Server-Sent Events down, POSTs up) for networks that break
//!   WebSockets, with [`body`] bounding the request bodies it reads;
//! - [`ui`] serves the embedded pages; [`api_error`] is the one shape of every HTTP error.

pub mod accept;
pub mod api_error;
pub mod body;
pub mod connection;
pub mod host;
pub mod proxy;
pub mod slots;
pub mod sse;
pub mod ui;
