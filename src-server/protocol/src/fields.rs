//! The document on screen and whether students follow: parts of the lesson state (PROTOCOL.md §4)
//! that a change names whole.

use serde::{Deserialize, Serialize};

/// A document the lesson can show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct Doc {
    /// Server-side id, used in `set` and in `/v1/docs/{id}`.
    pub id: String,
    /// Human title.
    pub title: String,
    /// Number of pages.
    pub pages: u32,
    /// Hex SHA-256 of the bytes, for caching.
    pub sha256: String,
    /// Hex SHA-256 of the document's manifest (`GET /v1/docs/{id}/manifest`, PROTOCOL-ADDITIONS.md
    /// section J): the list of its pieces' hashes and of its scanned pages, so that a device behind
    /// a relay checks each piece it is given, not only the whole. Absent for a document the server
    /// has not described yet (it is then checked whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub manifest: Option<String>,
}

/// Whether students are locked to the teacher's page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Students' views follow the teacher.
    #[default]
    Follow,
    /// Students browse freely.
    Free,
}
