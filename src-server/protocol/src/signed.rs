//! What a frame that crossed a relay carries to prove the teacher's server sent it
//! (docs/PROTOCOL-ADDITIONS.md, section E).
//!
//! The teacher's server signs the lesson **state** at every seq with its Ed25519 key. A `welcome` or
//! `sync` carries the signature of its own state; a `patch` carries the signature of the state it
//! leads to, so a client applies it and checks the result. A relay forwards these frames byte for
//! byte and can make none of them: it cannot change a patch (the state would not match), reorder or
//! replay one (the seq and epoch are signed), or present another room's lesson (the room is signed).

use serde::{Deserialize, Serialize};

/// A signature over a room's state at a seq, and the epoch it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct Signed {
    /// Changes whenever the teacher's server may have lost continuity with the relays (its bridge
    /// reconnected, or it restarted): a client seeing a new epoch starts from the snapshot it gets.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub epoch: u64,
    /// Ed25519 signature, base64url without padding (86 characters), over [`message`].
    pub sig: String,
}

/// What is signed, kind by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The state at a seq (welcome, sync, and the state a patch leads to).
    State = 1,
    /// A heartbeat: the teacher's server's latest seq at a time on its clock, whether a teacher is
    /// connected there, and a counter (the digest is [`beat_digest`]).
    Beat = 2,
    /// The teacher removed a remote student, for relays (the digest is [`removal_digest`]; the
    /// epoch, seq and counter are 0: a removal holds for the whole lesson).
    Removed = 3,
    /// The teacher's server refused one remote student's connection on one relay (the room was
    /// full, say), for that relay (the digest is [`refusal_digest`]; the seq is the connection's
    /// number on the relay; the epoch and counter are 0).
    Refused = 4,
    /// The room's title, as relays pass it on to join pages and welcomes (the digest is
    /// [`title_digest`]; the epoch, seq and counter are 0: it holds for the lesson).
    Title = 5,
}

/// What a beat signs in place of a state's hash: SHA-256 of the teacher's server's clock (Unix ms,
/// 8 bytes, big-endian) and whether a teacher is connected there (1 byte, 1 or 0). The seq it
/// names is signed beside it, so a client can check a beat whatever state it holds.
pub fn beat_digest(at: u64, teacher: bool) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::new().chain_update(at.to_be_bytes()).chain_update([u8::from(teacher)]).finalize().into()
}

/// What a room's title signs in place of a state's hash: SHA-256 of the title's UTF-8 bytes.
pub fn title_digest(title: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(title.as_bytes()).into()
}

/// What a removal signs in place of a state's hash: SHA-256 of the student's id on the relays.
pub fn removal_digest(pid: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(pid.as_bytes()).into()
}

/// What a refusal signs in place of a state's hash: SHA-256 of the relay id's length (4 bytes,
/// big-endian) and the relay's id, the student id's length and the student's id on the relays, and
/// the id of the relay's own entry (its join, or its `here`) that the refusal answers: a relay takes
/// only a refusal of an entry it wrote itself, so nobody can make the teacher's server sign one by
/// writing entries in a relay's name.
pub fn refusal_digest(relay: &str, pid: &str, entry: &str) -> [u8; 32] {
    use sha2::Digest;
    let len = |s: &str| u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes();
    sha2::Sha256::new()
        .chain_update(len(relay))
        .chain_update(relay.as_bytes())
        .chain_update(len(pid))
        .chain_update(pid.as_bytes())
        .chain_update(entry.as_bytes())
        .finalize()
        .into()
}

/// The bytes a signature covers: `"lectern-sig-v1"`, the kind (one byte), the room id's length (one
/// byte) and bytes, then the epoch, the seq and the counter (8 bytes each, big-endian; the counter is
/// 0 except in a beat), then SHA-256 of the state's canonical JSON (RFC 8785), 32 bytes. `None` for a
/// room id over 255 bytes.
pub fn message(
    kind: Kind,
    room: &str,
    epoch: u64,
    seq: u64,
    n: u64,
    state_hash: &[u8; 32],
) -> Option<Vec<u8>> {
    let room_len = u8::try_from(room.len()).ok()?;
    let mut m = Vec::with_capacity(14 + 2 + room.len() + 24 + 32);
    m.extend_from_slice(b"lectern-sig-v1");
    m.push(kind as u8);
    m.push(room_len);
    m.extend_from_slice(room.as_bytes());
    m.extend_from_slice(&epoch.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(&n.to_be_bytes());
    m.extend_from_slice(state_hash);
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_is_fixed_and_binds_every_field() {
        let h = [7u8; 32];
        let m = message(Kind::State, "r1", 2, 3, 0, &h).unwrap();
        let mut want = b"lectern-sig-v1".to_vec();
        want.extend_from_slice(&[1, 2, b'r', b'1']);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0]);
        want.extend_from_slice(&h);
        assert_eq!(m, want);
        assert_ne!(m, message(Kind::Beat, "r1", 2, 3, 0, &h).unwrap());
        assert_ne!(m, message(Kind::State, "r11", 2, 3, 0, &h).unwrap());
        assert!(message(Kind::State, &"x".repeat(256), 0, 0, 0, &h).is_none());
    }
}
