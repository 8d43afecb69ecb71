//! A lesson's identity: its room id and join code, and the record that carries them across restarts.

use serde::{Deserialize, Serialize};

use crate::protocol::Doc;

/// What identifies a lesson across restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LessonRecord {
    /// Room id.
    pub room: String,
    /// Lesson title.
    pub title: String,
    /// Join code.
    pub code: String,
    /// Start, Unix ms.
    pub started_ms: u64,
    /// End, Unix ms, once ended.
    pub ended_ms: Option<u64>,
    /// The document the lesson opened on.
    pub doc: Option<String>,
    /// Participants kicked by the teacher: their tokens are refused and their devices may not rejoin.
    pub revoked: Vec<String>,
    /// Students with the join code wait for the teacher to let them in (the waiting room).
    #[serde(default)]
    pub waiting_room: bool,
}

/// A random 6-digit join code.
pub fn join_code() -> String {
    format!("{:06}", rand::random_range(0..1_000_000u32))
}

/// A random room id: 96 random bits, so that nobody finds a lesson by trying ids at a relay (a
/// relay's join link names its room, and a relay answers `/v1/info` for a room that exists).
pub fn room_id() -> String {
    let (a, b): (u64, u32) = (rand::random(), rand::random());
    format!("r{a:016x}{b:08x}")
}

/// Whether a join code has the form the server accepts from `--code`: 4 to 12 digits.
pub fn is_valid_code(code: &str) -> bool {
    (4..=12).contains(&code.len()) && code.chars().all(|c| c.is_ascii_digit())
}

/// Where a room finds the documents a teacher may show: the teacher's server's library on disk, or
/// nothing on a relay (whose rooms only follow the teacher's choice). The engine asks only this.
pub trait Documents: Send + Sync {
    /// The document with this id, if there is one.
    fn get(&self, id: &str) -> Option<Doc>;
}

/// No documents at all.
#[derive(Debug, Default)]
pub struct NoDocuments;

impl Documents for NoDocuments {
    fn get(&self, _id: &str) -> Option<Doc> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_codes_are_six_digits() {
        for _ in 0..100 {
            let c = join_code();
            assert!(c.len() == 6 && is_valid_code(&c), "{c}");
        }
    }
}
