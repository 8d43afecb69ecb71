//! Resume tokens and participant ids, both derived with HMAC-SHA-256 from one server secret.
//!
//! A token is self-contained (`base64url(payload).base64url(mac)`): it names the room, participant, role,
//! device and name, so a restarted server can restore the participant with no table to reload, which is
//! what §3's "valid across a restart of the server, until the lesson ends" needs. Tokens of an ended lesson
//! fail because they name another room; a kicked participant's token is refused by the room's revocation
//! list. Participant ids are a MAC of (room, role, device), so the same device is the same participant even
//! across restarts.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::protocol::Role;

type HmacSha256 = Hmac<Sha256>;

/// What a resume token carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Room id.
    #[serde(rename = "r")]
    pub room: String,
    /// Participant id.
    #[serde(rename = "p")]
    pub pid: String,
    /// Role.
    #[serde(rename = "o")]
    pub role: Role,
    /// Device id.
    #[serde(rename = "d")]
    pub device: String,
    /// Display name.
    #[serde(rename = "n")]
    pub name: String,
    /// When the token was issued (ms since the epoch; 0 in tokens from before this field): a
    /// participant id given afresh to another (a reused twin) refuses tokens issued before.
    #[serde(rename = "t", default)]
    pub issued: u64,
}

/// Signs and checks tokens with the server's secret.
#[derive(Clone)]
pub struct TokenKey {
    secret: [u8; 32],
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// Derives the token secret from the teacher key, so one secret file protects both.
    pub fn from_teacher_key(teacher_key: &str) -> TokenKey {
        let mut mac = mac_with(teacher_key.as_bytes());
        mac.update(b"lectern resume tokens v1");
        TokenKey { secret: mac.finalize().into_bytes().into() }
    }

    fn mac(&self) -> HmacSha256 {
        mac_with(&self.secret)
    }

    /// Issues a token for these claims.
    pub fn issue(&self, claims: &Claims) -> String {
        let claims = Claims { issued: crate::now_ms(), ..claims.clone() };
        let payload = serde_json::to_vec(&claims).unwrap_or_default();
        let mut mac = self.mac();
        mac.update(&payload);
        let tag = mac.finalize().into_bytes();
        format!("{}.{}", URL_SAFE_NO_PAD.encode(&payload), URL_SAFE_NO_PAD.encode(tag))
    }

    /// Checks a token's signature and returns its claims.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        if token.len() > 1024 {
            return None;
        }
        let (payload, tag) = token.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let mut mac = self.mac();
        mac.update(&payload);
        mac.verify_slice(&tag).ok()?;
        serde_json::from_slice(&payload).ok()
    }

    /// The stable participant id of a device in a room.
    pub fn participant_id(&self, room: &str, role: Role, device: &str) -> String {
        let mut mac = self.mac();
        mac.update(b"pid\0");
        mac.update(room.as_bytes());
        mac.update(b"\0");
        mac.update(role.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(device.as_bytes());
        let tag = mac.finalize().into_bytes();
        let hex: String = tag.iter().take(5).map(|b| format!("{b:02x}")).collect();
        format!("p{hex}")
    }
}

/// The claims a token carries, read without checking its signature.
fn unchecked_claims(token: &str) -> Option<Claims> {
    if token.len() > 1024 {
        return None;
    }
    let payload = URL_SAFE_NO_PAD.decode(token.split_once('.')?.0).ok()?;
    serde_json::from_slice::<Claims>(&payload).ok()
}

/// The room a token names, read without checking it: a relay needs the room to find the key that
/// checks the token. Nothing else may be trusted from it.
pub fn unchecked_room(token: &str) -> Option<String> {
    unchecked_claims(token).map(|c| c.room)
}

/// The participant a token names, read without checking it: to be trusted only once the token was
/// checked (`Room::authorize_bearer`), to count what one student does whatever token it holds.
pub fn unchecked_pid(token: &str) -> Option<String> {
    unchecked_claims(token).map(|c| c.pid)
}

/// The secret the relays' copies of room `room` issue resume tokens under: derived from the teacher
/// key for that room alone, so every relay derives nothing it is not given, and the teacher's server
/// (whose tokens come from the teacher key itself) never accepts a relay's token.
pub fn relay_secret(teacher_key: &str, room: &str) -> String {
    let mut mac = mac_with(teacher_key.as_bytes());
    mac.update(b"lectern relay room v1\0");
    mac.update(room.as_bytes());
    crate::hex(&mac.finalize().into_bytes())
}

fn mac_with(key: &[u8]) -> HmacSha256 {
    #[allow(clippy::expect_used)]
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes keys of any length")
}

/// Hex SHA-256 of a token, as the session log keeps it: the token itself is never stored.
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    crate::hex(&sha2::Sha256::digest(token.as_bytes()))
}

/// Compares two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            room: "r1".into(),
            pid: "p1".into(),
            role: Role::Student,
            device: "dev-0001".into(),
            name: "A".into(),
            issued: 0,
        }
    }

    #[test]
    fn a_token_round_trips_and_a_forgery_fails() {
        let key = TokenKey::from_teacher_key("k");
        let token = key.issue(&claims());
        let back = key.verify(&token).unwrap();
        assert!(back.issued > 0, "a token says when it was issued");
        assert_eq!(back, Claims { issued: back.issued, ..claims() });
        assert_eq!(TokenKey::from_teacher_key("other").verify(&token), None);
        let (_, tag) = token.split_once('.').unwrap();
        assert_eq!(key.verify(&format!("eyJyIjoicjIifQ.{tag}")), None);
        assert_eq!(key.verify("garbage"), None);
    }

    #[test]
    fn participant_ids_are_stable_per_device_and_role() {
        let key = TokenKey::from_teacher_key("k");
        let a = key.participant_id("r1", Role::Student, "dev-0001");
        assert_eq!(a, key.participant_id("r1", Role::Student, "dev-0001"));
        assert_ne!(a, key.participant_id("r1", Role::Teacher, "dev-0001"));
        assert_ne!(a, key.participant_id("r1", Role::Student, "dev-0002"));
    }
}
