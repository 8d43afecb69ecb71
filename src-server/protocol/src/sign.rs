//! Signing a room's state, and the checks every client behind a relay makes (docs/PROTOCOL-ADDITIONS.md,
//! section E; the layout is [`crate::signed::message`]).
//!
//! The key is Ed25519; the teacher's server makes it on first use and keeps it in its data directory.
//! Its public half travels in a relay's join links, as `pk`. What is signed is a room's **state** at a seq, hashed as canonical JSON
//! (RFC 8785), so any client that holds the same state computes the same bytes, whatever JSON
//! library it uses; a browser does it with `JSON.stringify` over sorted keys.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::signed::{Kind, message};
use crate::{LessonState, Signed};

/// SHA-256 of a state's canonical JSON (RFC 8785), with the marks stood for by their layer's digest
/// (section L): a change costs the same to sign whatever the pages hold.
pub fn state_hash(state: &LessonState) -> [u8; 32] {
    // Serializing plain data cannot fail; an empty hash would only ever fail to verify.
    let canonical = serde_jcs::to_vec(&Hashed::of(state)).unwrap_or_default();
    Sha256::digest(canonical).into()
}

/// What is hashed of a state: every field as it is, but `marks`, which is the layer's digest. A field
/// added to [`LessonState`] must be added here (`the_hashed_form_is_the_state_with_page_digests`).
#[derive(serde::Serialize)]
struct Hashed<'a> {
    doc: &'a Option<crate::Doc>,
    page: u32,
    pos: &'a Option<crate::Pos>,
    zoom: f64,
    view: &'a Option<crate::Region>,
    highlight: &'a Option<crate::Highlight>,
    mode: crate::Mode,
    notice: &'a Option<String>,
    ended: bool,
    marks: &'a str,
    live: &'a Option<crate::LiveInk>,
}

impl Hashed<'_> {
    fn of(s: &LessonState) -> Hashed<'_> {
        Hashed {
            doc: &s.doc,
            page: s.page,
            pos: &s.pos,
            zoom: s.zoom,
            view: &s.view,
            highlight: &s.highlight,
            mode: s.mode,
            notice: &s.notice,
            ended: s.ended,
            marks: s.marks.layer_digest(),
            live: &s.live,
        }
    }
}

/// Signs a room's states for the relays' clients.
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("public", &self.public()).finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer with this secret (the 32 bytes the teacher's server keeps).
    pub fn from_secret(secret: [u8; 32]) -> Signer {
        Signer { key: SigningKey::from_bytes(&secret) }
    }

    /// The public key as it travels (`pk`): base64url without padding, 43 characters.
    pub fn public(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key.verifying_key().as_bytes())
    }

    /// Signs `state` at `seq` (with counter `n` for a beat, else 0).
    pub fn sign(&self, kind: Kind, room: &str, epoch: u64, seq: u64, n: u64, state: &LessonState) -> Signed {
        self.sign_digest(kind, room, epoch, seq, n, &state_hash(state))
    }

    /// Signs a beat: at `seq` (counter `n`) on the teacher's clock `at`, with or without a teacher.
    pub fn sign_beat(&self, room: &str, epoch: u64, seq: u64, n: u64, at: u64, teacher: bool) -> Signed {
        self.sign_digest(Kind::Beat, room, epoch, seq, n, &crate::signed::beat_digest(at, teacher))
    }

    /// Signs a digest in place of a state's hash (a removal or a refusal, for relays).
    pub fn sign_digest(
        &self,
        kind: Kind,
        room: &str,
        epoch: u64,
        seq: u64,
        n: u64,
        digest: &[u8; 32],
    ) -> Signed {
        let sig = match message(kind, room, epoch, seq, n, digest) {
            Some(m) => URL_SAFE_NO_PAD.encode(self.key.sign(&m).to_bytes()),
            None => String::new(), // a room id over 255 bytes is never made; nothing would verify
        };
        Signed { epoch, sig }
    }
}

/// Checks signatures against one teacher's public key, for one room.
#[derive(Debug, Clone)]
pub struct Verifier {
    key: VerifyingKey,
    room: String,
}

impl Verifier {
    /// A verifier for the key given as `pk` (base64url, 32 bytes), or `None` if it is not one.
    pub fn new(pk: &str, room: &str) -> Option<Verifier> {
        let bytes: [u8; 32] = URL_SAFE_NO_PAD.decode(pk.trim()).ok()?.try_into().ok()?;
        Some(Verifier { key: VerifyingKey::from_bytes(&bytes).ok()?, room: room.to_string() })
    }

    /// Whether `signed` is the teacher's signature of `state` at `seq` in this room
    /// (`verify_strict`: no malleable or small-order signatures).
    pub fn check(&self, kind: Kind, seq: u64, n: u64, state: &LessonState, signed: &Signed) -> bool {
        self.check_digest(kind, seq, n, &state_hash(state), signed)
    }

    /// Whether `signed` is the teacher's beat at `seq` with counter `n`, time `at` and presence
    /// `teacher`.
    pub fn check_beat(&self, seq: u64, n: u64, at: u64, teacher: bool, signed: &Signed) -> bool {
        self.check_digest(Kind::Beat, seq, n, &crate::signed::beat_digest(at, teacher), signed)
    }

    /// Whether `signed` is the teacher's signature of `digest` (in place of a state's hash) at `seq`
    /// with counter `n`, in this room.
    pub fn check_digest(&self, kind: Kind, seq: u64, n: u64, digest: &[u8; 32], signed: &Signed) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(&signed.sig) else { return false };
        let Ok(sig) = Signature::from_slice(&bytes) else { return false };
        let Some(m) = message(kind, &self.room, signed.epoch, seq, n, digest) else {
            return false;
        };
        self.key.verify_strict(&m, &sig).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Patch, Pos};

    #[test]
    fn a_signature_holds_for_its_room_seq_epoch_and_state_only() {
        let signer = Signer::from_secret([9; 32]);
        let v = Verifier::new(&signer.public(), "r1").unwrap();
        let mut state = LessonState::new(None);
        let s = signer.sign(Kind::State, "r1", 5, 10, 0, &state);
        assert!(v.check(Kind::State, 10, 0, &state, &s));
        assert!(!v.check(Kind::State, 11, 0, &state, &s), "another seq");
        assert!(!v.check(Kind::Beat, 10, 0, &state, &s), "another kind");
        assert!(!v.check(Kind::State, 10, 0, &state, &Signed { epoch: 6, ..s.clone() }), "another epoch");
        assert!(!Verifier::new(&signer.public(), "r2").unwrap().check(Kind::State, 10, 0, &state, &s));
        let other = Signer::from_secret([8; 32]);
        assert!(!Verifier::new(&other.public(), "r1").unwrap().check(Kind::State, 10, 0, &state, &s));
        state.apply(&Patch { page: Some(2), ..Patch::default() });
        assert!(!v.check(Kind::State, 10, 0, &state, &s), "another state");
        assert!(!v.check(Kind::State, 10, 0, &state, &Signed { epoch: 5, sig: "!!".into() }));
    }

    #[test]
    fn a_beat_holds_for_its_time_presence_seq_and_counter_only() {
        let signer = Signer::from_secret([9; 32]);
        let v = Verifier::new(&signer.public(), "r1").unwrap();
        let beat = signer.sign_beat("r1", 5, 10, 3, 1_700_000_000_000, true);
        assert!(v.check_beat(10, 3, 1_700_000_000_000, true, &beat));
        assert!(!v.check_beat(10, 3, 1_700_000_000_000, false, &beat), "the teacher said to be away");
        assert!(!v.check_beat(10, 3, 1_700_000_060_000, true, &beat), "another time");
        assert!(!v.check_beat(11, 3, 1_700_000_000_000, true, &beat), "another seq");
        assert!(!v.check_beat(10, 4, 1_700_000_000_000, true, &beat), "another counter");
    }

    #[test]
    fn a_removal_or_refusal_holds_for_its_student_relay_and_connection_only() {
        use crate::signed::{refusal_digest, removal_digest};
        let signer = Signer::from_secret([9; 32]);
        let v = Verifier::new(&signer.public(), "r1").unwrap();
        let removed = signer.sign_digest(Kind::Removed, "r1", 0, 0, 0, &removal_digest("s-1"));
        assert!(v.check_digest(Kind::Removed, 0, 0, &removal_digest("s-1"), &removed));
        assert!(!v.check_digest(Kind::Removed, 0, 0, &removal_digest("s-2"), &removed), "another student");
        assert!(!v.check_digest(Kind::Refused, 0, 0, &removal_digest("s-1"), &removed), "another kind");
        let title = signer.sign_digest(Kind::Title, "r1", 0, 0, 0, &crate::signed::title_digest("Quran 3B"));
        assert!(v.check_digest(Kind::Title, 0, 0, &crate::signed::title_digest("Quran 3B"), &title));
        assert!(!v.check_digest(Kind::Title, 0, 0, &crate::signed::title_digest("Class cancelled"), &title));
        assert!(
            !v.check_digest(Kind::Removed, 0, 0, &crate::signed::title_digest("Quran 3B"), &title),
            "another kind"
        );
        let digest = |relay: &str, pid: &str, entry: &str| refusal_digest(relay, pid, entry);
        let refused = signer.sign_digest(Kind::Refused, "r1", 0, 42, 0, &digest("relay-a", "s-1", "17-0"));
        assert!(v.check_digest(Kind::Refused, 42, 0, &digest("relay-a", "s-1", "17-0"), &refused));
        assert!(
            !v.check_digest(Kind::Refused, 43, 0, &digest("relay-a", "s-1", "17-0"), &refused),
            "another connection"
        );
        assert!(
            !v.check_digest(Kind::Refused, 42, 0, &digest("relay-b", "s-1", "17-0"), &refused),
            "another relay"
        );
        assert!(
            !v.check_digest(Kind::Refused, 42, 0, &digest("relay-a", "s-1", "18-0"), &refused),
            "another entry"
        );
        assert_ne!(digest("ab", "c", "1-0"), digest("a", "bc", "1-0"), "where one id ends is signed");
    }

    #[test]
    fn the_hash_is_of_canonical_json_with_javascript_numbers() {
        let mut state = LessonState::new(None);
        state.apply(&Patch { pos: Some(Some(Pos { x: 0.5, y: 1.0 })), ..Patch::default() });
        let text = String::from_utf8(serde_jcs::to_vec(&state).unwrap()).unwrap();
        // Keys sorted, and 1.0 written as JavaScript writes it.
        assert!(text.contains(r#""pos":{"x":0.5,"y":1}"#), "{text}");
        assert!(text.find("\"doc\"") < text.find("\"ended\""), "{text}");
    }

    #[test]
    fn the_hashed_form_is_the_state_with_the_marks_digest() {
        use crate::{Mark, MarkOp};
        let mut state = LessonState::new(None);
        state.doc = Some(crate::Doc {
            id: "d".into(),
            title: "D".into(),
            pages: 9,
            sha256: "00".into(),
            manifest: None,
        });
        let mark = Mark { id: 1, x: 0.1, y: 0.2, w: 0.3, h: 0.1, ink: None };
        state.apply(&Patch {
            marks: Some(vec![MarkOp::Add { page: 4, mark: mark.clone() }]),
            ..Patch::default()
        });
        // Every field of the state, as JSON, with `marks` replaced by the digest of its pages' digests.
        let hex =
            |bytes: Vec<u8>| -> String { Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect() };
        let mut whole = serde_json::to_value(&state).unwrap();
        let page = hex(serde_jcs::to_vec(&[mark]).unwrap());
        whole["marks"] =
            serde_json::json!(hex(serde_jcs::to_vec(&serde_json::json!({ "4": page })).unwrap()));
        assert_eq!(serde_jcs::to_vec(&whole).unwrap(), serde_jcs::to_vec(&Hashed::of(&state)).unwrap());
    }

    /// The same values are checked by the browser's code (ui/src/relaycheck.test.ts): a change to
    /// the layout or the canonical JSON on either side fails one of the two.
    #[test]
    fn a_known_signature_stays_the_same_so_browsers_keep_checking_it() {
        let signer = Signer::from_secret([7; 32]);
        let mut state = LessonState::new(None);
        let mark = crate::Mark { id: 1, x: 0.125, y: 0.5, w: 0.75, h: 0.0625, ink: None };
        use crate::ink::{Ink, InkColor::Red, LiveStep};
        let ink = Some(Ink { color: Red, width: 4, points: vec![[1000, 2000, 50], [1500, 2500, 70]] });
        let stroke = crate::Mark { id: 2, x: 0.1, y: 0.2, w: 0.05, h: 0.05, ink };
        let points = vec![[5000, 5000, 50]];
        let live = LiveStep { id: 3, page: 2, color: Red, width: 4, laser: true, from: 0, points };
        state.apply(&Patch {
            page: Some(2),
            pos: Some(Some(Pos { x: 0.25, y: 0.5 })),
            marks: Some(vec![
                crate::MarkOp::Add { page: 2, mark },
                crate::MarkOp::Add { page: 2, mark: stroke },
            ]),
            live: Some(Some(live)),
            ..Patch::default()
        });
        assert_eq!(signer.public(), "6kpsY-KcUgq-9VB7Ey7F-ZVHdq6-vnuSQh7qaRRG0iw");
        assert_eq!(
            signer.sign(Kind::State, "r1", 5, 3, 0, &state).sig,
            "SlWewHyYKU7K8I94pIqWjg7f-ckaaqpG62FF1dsQfp6_e_YbSgF_AVAML4vNScJCtgUUJ_fkL23JiKJMjgZUAQ"
        );
        assert_eq!(
            signer.sign_beat("r1", 5, 3, 1, 1_800_000_000_000, true).sig,
            "BHkD_hQE6rMgy85EHcl7DczhJIQP_OnXzqs1DgJTpr91_5lfrpzs6iRjkt6KjUcM5R7jaElDj10wGmDhJCwuDA"
        );
        let title = crate::signed::title_digest("Quran 3B — سورة الملك");
        let signed = signer.sign_digest(Kind::Title, "r1", 5, 0, 0, &title).sig;
        assert_eq!(
            signed,
            "s0o9r0wKs7qaYbDoeQ5YlazihNgs_z4q2zmzHcxgZ3X18QY2g3CyliF-fxQVC1f84JbJbxZNeOAzUIfRGPwXAQ"
        );
    }
}
