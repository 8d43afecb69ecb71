//! The checks a client behind a relay makes on the teacher's beats: freshness on the teacher's
//! clock, and whether the teacher is there.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

use super::*;
use crate::protocol::sign::Signer;
use crate::protocol::{Beat, Role, RoomInfo, You};

const NOW: u64 = 1_800_000_000_000;

fn signer() -> Signer {
    Signer::from_secret([3; 32])
}

fn check() -> RelayCheck {
    RelayCheck::new(&signer().public(), "r1").unwrap()
}

fn beat(epoch: u64, seq: u64, n: u64, at: u64, teacher: bool) -> Beat {
    Beat { seq, n, at, teacher, signed: signer().sign_beat("r1", epoch, seq, n, at, teacher) }
}

/// A welcome at `seq` of epoch 7, with this beat.
fn welcome(seq: u64, beat: Option<Beat>) -> ServerMsg {
    let state = LessonState::new(None);
    ServerMsg::Welcome {
        v: 1,
        you: You { id: "s-1".into(), role: Role::Student, name: "A".into() },
        token: String::new(),
        room: Box::new(RoomInfo { id: "r1".into(), title: "T".into(), title_sig: None }),
        seq,
        signed: Some(signer().sign(Kind::State, "r1", 7, seq, 0, &state)),
        state,
        heartbeat_ms: 10_000,
        time: NOW,
        teacher_online: true,
        roster: None,
        beat: beat.map(Box::new),
        second: true,
    }
}

#[test]
fn a_welcome_is_taken_only_with_a_fresh_signed_beat_of_its_epoch() {
    let fresh = beat(7, 5, 3, NOW - 9_000, true);
    assert_eq!(check().check(&welcome(5, Some(fresh.clone())), 0, None, NOW), Ok(Some(true)));
    // An older seq's beat still says the state is at least as new.
    assert!(check().check(&welcome(6, Some(fresh.clone())), 0, None, NOW).is_ok());
    let refused = |w: ServerMsg| check().check(&w, 0, None, NOW).unwrap_err();
    assert!(refused(welcome(5, None)).contains("how current"));
    // A state older than the beat: a replayed snapshot beside the teacher's latest word.
    assert!(refused(welcome(4, Some(fresh.clone()))).contains("older than the teacher's latest"));
    // A beat from a minute ago: the snapshot and its beat replayed together.
    assert!(refused(welcome(5, Some(beat(7, 5, 3, NOW - 60_000, true)))).contains("60 s old"));
    assert!(refused(welcome(5, Some(beat(7, 5, 3, NOW + 60_000, true)))).contains("ahead"));
    assert!(refused(welcome(5, Some(beat(6, 5, 3, NOW, true)))).contains("no current word"), "another epoch");
    let mut forged = fresh;
    forged.teacher = false; // the relay says the teacher is away
    assert!(refused(welcome(5, Some(forged))).contains("did not sign"));
}

#[test]
fn whether_the_teacher_is_there_comes_from_signed_beats_only_and_is_said_when_it_changes() {
    let mut c = check();
    c.check(&welcome(5, Some(beat(7, 5, 1, NOW, true))), 0, None, NOW).unwrap();
    let state = LessonState::new(None);
    let frame = |b: Beat| b.frame();
    assert_eq!(c.check(&frame(beat(7, 5, 2, NOW + 1_000, true)), 5, Some(&state), NOW + 1_000), Ok(None));
    assert_eq!(
        c.check(&frame(beat(7, 5, 3, NOW + 2_000, false)), 5, Some(&state), NOW + 2_000),
        Ok(Some(false))
    );
    // A beat replayed (its counter is not new) proves nothing and changes nothing.
    assert_eq!(c.check(&frame(beat(7, 5, 2, NOW + 1_000, true)), 5, Some(&state), NOW + 3_000), Ok(None));
    let mut forged = beat(7, 5, 4, NOW + 3_000, false);
    forged.teacher = true;
    assert!(c.check(&frame(forged), 5, Some(&state), NOW + 3_000).is_err());
    // A beat the relay held back until it is stale: the relay is withholding.
    let late = c.check(&frame(beat(7, 5, 5, NOW + 4_000, false)), 5, Some(&state), NOW + 60_000);
    assert!(late.unwrap_err().contains("old"));
}

#[test]
fn a_relay_that_goes_quiet_or_replays_an_older_beat_is_dropped_within_the_freshness_bound() {
    let mut c = check();
    c.check(&welcome(5, Some(beat(7, 5, 4, NOW, false))), 0, None, NOW).unwrap();
    // No beat at all after the welcome: the teacher's last word ages past 50 s on this device's clock,
    // whatever heartbeat the relay named.
    assert!(c.withholding(std::time::Duration::from_secs(30), NOW + 49_000).is_none());
    let quiet = c.withholding(std::time::Duration::from_secs(30), NOW + 51_000).unwrap();
    assert!(quiet.contains("51 s old"), "{quiet}");
    // A welcome again on a new link with an older beat of the same epoch (saying the teacher is
    // there, or away) is refused: presence never rolls back.
    let again = c.check(&welcome(5, Some(beat(7, 5, 2, NOW, true))), 5, None, NOW).unwrap_err();
    assert!(again.contains("older heartbeat"), "{again}");
}

#[test]
fn a_relays_title_is_taken_only_as_the_teacher_signed_it_in_the_states_epoch() {
    let relay = RelayTrust { room: "r1".into(), pk: signer().public() };
    let title = "Quran 3B";
    let digest = crate::protocol::signed::title_digest(title);
    let sig = signer().sign_digest(Kind::Title, "r1", 7, 0, 0, &digest).sig;
    let room = |title: &str, sig: Option<&str>| RoomInfo {
        id: "r1".into(),
        title: title.into(),
        title_sig: sig.map(str::to_string),
    };
    assert!(title_signed(&relay, &room(title, Some(&sig)), 7));
    assert!(!title_signed(&relay, &room("Class cancelled: join at https://evil.example", Some(&sig)), 7));
    assert!(!title_signed(&relay, &room(title, None), 7), "a title with no signature is the relay's word");
    let other_room = RelayTrust { room: "r2".into(), pk: signer().public() };
    assert!(!title_signed(&other_room, &room(title, Some(&sig)), 7), "signed for another room");
    // The teacher's server restarted with another title (epoch 8): the old one, signed in 7, is
    // not put back by a relay.
    assert!(!title_signed(&relay, &room(title, Some(&sig)), 8), "signed in another epoch");
}
