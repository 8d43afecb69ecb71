//! The session log: every lesson, join, change, ack and hand, in SQLite, and what a restarted server
//! reads back to continue the lesson it was teaching.
//!
//! The store is a [`ReportSink`](crate::engine::report::ReportSink): rooms offer it their reports
//! without waiting, and its own writer thread commits them ([`writer`]). It confirms durability: the
//! teacher's `ok` for a change is sent once the change is on disk. [`report`] reads the log back for
//! the CLI and the HTTPS API.

pub mod annotated;
pub mod report;
pub mod schema;
mod snapshot;
mod sqlite;
pub mod timeline;
mod writer;

pub use sqlite::{OpenLesson, SqliteStore};
pub use writer::{COMMIT_WINDOW, SYNC_EVERY};
