//! A student's second path (docs/PROTOCOL-ADDITIONS.md, N): a second connection, opened with the
//! student's resume token while the first is online, that is sent every change the first is and
//! holds nothing of the student's: no seat, no place on the roster, no say.

use super::*;
use crate::protocol::{Pos, SetPatch};

/// A resume hello that asks for a second path.
fn second(token: &str, device: &str) -> Hello {
    Hello { second: true, ..resume(token, device) }
}

/// A pointer move, as a teacher's `set`.
fn pointer(x: f64) -> SetPatch {
    SetPatch { pos: Some(Some(Pos { x, y: 0.5 })), ..SetPatch::default() }
}

/// The seqs of every patch in what was sent.
fn patch_seqs(sent: &Sent) -> Vec<u64> {
    sent.frames
        .iter()
        .filter_map(|f| if let ServerMsg::Patch { seq, .. } = f { Some(*seq) } else { None })
        .collect()
}

/// A room on a teacher's server that takes second paths.
fn offering() -> Arc<Room> {
    room_with(CODE, |l| l.second_paths = true)
}

/// The second path gets the same patches as the first, in order, after a welcome of its own; the
/// teacher's roster and the room's count of students do not change.
#[tokio::test(start_paused = true)]
async fn a_second_path_is_sent_every_change_and_holds_no_seat() {
    let room = offering();
    let t = teacher(&room);
    let aisha = seated(&room, "Aisha", &device(1), lan(1));
    let first = sent(&room, &aisha.outbox);
    assert!(
        matches!(first.frames[0], ServerMsg::Welcome { second: true, .. }),
        "the welcome offers a second path"
    );
    let token = first.welcome().1;
    let _ = sent(&room, &t.outbox);

    let path = room.join(second(&token, &device(1)), lan(1), false).unwrap();
    assert!(path.second);
    assert_eq!(path.pid, aisha.pid);
    assert_eq!(sent(&room, &path.outbox).welcome().0.id, aisha.pid);
    assert_eq!(room.online(), (1, 1), "one student, whatever her paths");
    assert!(sent(&room, &t.outbox).roster().is_empty(), "the teacher hears nothing of a second path");

    room.set(Some(1), pointer(0.25), &t.outbox);
    room.set(Some(2), pointer(0.5), &t.outbox);
    assert_eq!(patch_seqs(&sent(&room, &aisha.outbox)), vec![1, 2]);
    assert_eq!(patch_seqs(&sent(&room, &path.outbox)), vec![1, 2]);

    // Closing the second path leaves the student online.
    room.leave_second(path.conn);
    assert!(sent(&room, &t.outbox).roster().is_empty());
    room.set(Some(3), pointer(0.75), &t.outbox);
    assert_eq!(patch_seqs(&sent(&room, &aisha.outbox)), vec![3]);
}

/// A second path needs its student's token and its student online, and a server that offers it;
/// a classroom's server does not unless configured.
#[tokio::test(start_paused = true)]
async fn a_second_path_needs_a_token_an_online_student_and_a_server_that_offers_it() {
    let room = offering();
    let aisha = seated(&room, "Aisha", &device(1), lan(1));
    let token = token_of(&room, &aisha);
    let by_code = Hello { second: true, ..student(CODE, "Aisha", &device(2)) };
    assert!(matches!(room.join(by_code, lan(2), false), Err(JoinError::BadRequest(_))));
    let forged = second("not-a-token", &device(1));
    assert_eq!(room.join(forged, lan(2), false).unwrap_err(), JoinError::Credentials);

    room.leave(&aisha.pid, aisha.conn);
    assert!(
        matches!(room.join(second(&token, &device(1)), lan(1), false), Err(JoinError::BadRequest(_))),
        "no second path for a student who is offline"
    );

    let classroom = room_with(CODE, |_| {});
    let bilal = seated(&classroom, "Bilal", &device(3), lan(3));
    let first = sent(&classroom, &bilal.outbox);
    assert!(matches!(first.frames[0], ServerMsg::Welcome { second: false, .. }));
    let refused = classroom.join(second(&first.welcome().1, &device(3)), lan(3), false);
    assert!(matches!(refused, Err(JoinError::BadRequest(_))), "a classroom's server offers none by default");
}

/// One second path a student: a newer one closes the older (4409). When the first path closes, or
/// the teacher removes the student, the second closes with it.
#[tokio::test(start_paused = true)]
async fn a_second_path_goes_with_its_student() {
    let room = offering();
    let t = teacher(&room);
    let aisha = seated(&room, "Aisha", &device(1), lan(1));
    let token = token_of(&room, &aisha);
    let older = room.join(second(&token, &device(1)), lan(1), false).unwrap();
    let newer = room.join(second(&token, &device(1)), lan(1), false).unwrap();
    assert_eq!(sent(&room, &older.outbox).closed(), Some(4409));
    assert_eq!(sent(&room, &newer.outbox).closed(), None);

    room.leave(&aisha.pid, aisha.conn);
    assert_eq!(sent(&room, &newer.outbox).closed(), Some(4409), "the first path closed");

    let back = room.join(resume(&token, &device(1)), lan(1), false).unwrap();
    let path = room.join(second(&token, &device(1)), lan(1), false).unwrap();
    let _ = sent(&room, &path.outbox);
    let _ = sent(&room, &t.outbox);
    room.kick(Some(9), &back.pid, &t.outbox);
    assert_eq!(sent(&room, &back.outbox).closed(), Some(4003));
    assert_eq!(sent(&room, &path.outbox).closed(), Some(4003), "removed on both paths");
    assert_eq!(
        room.join(second(&token, &device(1)), lan(1), false).unwrap_err(),
        JoinError::Credentials,
        "a removed student's token opens no path"
    );
}

/// Second paths take no seats: a student at the address cap can still open one, and they do not
/// count against the room's seats.
#[tokio::test(start_paused = true)]
async fn second_paths_take_no_seats() {
    let room = room_with(CODE, |l| {
        l.second_paths = true;
        l.max_participants = 2;
        l.max_students_per_address = 1;
    });
    let a = seated(&room, "Aisha", &device(1), lan(1));
    let b = seated(&room, "Bilal", &device(2), lan(2));
    for (s, n) in [(&a, 1), (&b, 2)] {
        let token = token_of(&room, s);
        room.join(second(&token, &device(n)), lan(n as u8), false).unwrap();
    }
    assert_eq!(room.online(), (0, 2));
    // The room is full of students, not of paths: one leaving frees a seat for a newcomer.
    room.leave(&b.pid, b.conn);
    assert!(room.join(student(CODE, "Chen", &device(3)), lan(3), false).is_ok());
}

/// A second path comes from its student's address: a token read off a classmate's screen does not
/// make a silent listener on another machine. A resume from a new address moves the student, and
/// the old second path with it goes.
#[tokio::test(start_paused = true)]
async fn a_second_path_comes_from_its_students_address() {
    let room = offering();
    let aisha = seated(&room, "Aisha", &device(1), lan(1));
    let token = token_of(&room, &aisha);
    let path = room.join(second(&token, &device(1)), lan(1), false).unwrap();
    let elsewhere = room.join(second(&token, &device(1)), lan(7), false);
    assert!(matches!(elsewhere, Err(JoinError::BadRequest(_))), "{elsewhere:?}");
    assert_eq!(sent(&room, &path.outbox).closed(), None, "her own second path is untouched");

    // She moves (Wi-Fi to mobile): her resume replaces the first path, and the second goes with it.
    let _moved = room.join(resume(&token, &device(1)), lan(7), false).unwrap();
    assert_eq!(sent(&room, &path.outbox).closed(), Some(4409));
    assert!(room.join(second(&token, &device(1)), lan(7), false).is_ok());
}

/// The teacher removes a student who had a second path: her address is remembered as hers alone
/// (her own second path is not another student there), so a newcomer from it is flagged.
#[tokio::test(start_paused = true)]
async fn a_removed_students_second_path_does_not_hide_her_address() {
    let room = offering();
    let t = teacher(&room);
    let bored = seated(&room, "Bored", &device(1), lan(1));
    let token = token_of(&room, &bored);
    room.join(second(&token, &device(1)), lan(1), false).unwrap();
    room.kick(Some(1), &bored.pid, &t.outbox);
    let _ = sent(&room, &t.outbox);
    let again = seated(&room, "Someone Else", &device(9), lan(1));
    let entry = sent(&room, &t.outbox).entry(&again.pid).unwrap();
    assert!(entry.like_removed, "a newcomer from the removed student's address is flagged: {entry:?}");
}

/// Each second path is a welcome with the whole state: a token holder who opens them in a loop is
/// refused (4029) after a minute's worth, and the student's first path is untouched.
#[tokio::test(start_paused = true)]
async fn a_student_opening_second_paths_in_a_loop_is_refused() {
    let room = offering();
    let aisha = seated(&room, "Aisha", &device(1), lan(1));
    let token = token_of(&room, &aisha);
    for _ in 0..crate::engine::room::second::SECOND_OPENS_PER_MINUTE {
        room.join(second(&token, &device(1)), lan(1), false).unwrap();
    }
    let refused = room.join(second(&token, &device(1)), lan(1), false).unwrap_err();
    assert_eq!((refused.clone(), refused.close_code()), (JoinError::TooManySecondPaths, 4029));
    assert_eq!(sent(&room, &aisha.outbox).closed(), None);
    assert_eq!(room.online(), (0, 1));
}

/// On a relay's copy, a student who is not online here may be on another relay: the room says so
/// (with the student's id, its token checked) for the relay to ask Redis, and such asks are counted
/// per student before Redis is asked, twenty a minute. A student online on another relay gets its
/// second path here with its own name; a forged token never gets that far.
#[tokio::test(start_paused = true)]
async fn a_relays_copy_hands_a_second_path_for_a_student_elsewhere_to_the_relay_counted() {
    let home = mirror();
    let aisha = home.join(student(CODE, "Aisha", &device(1)), lan(1), true).unwrap();
    let token = token_of(&home, &aisha);
    // Another relay's copy of the same room, where Aisha is not.
    let other = mirror();
    let forged = second("not-a-token", &device(1));
    assert_eq!(other.join(forged, lan(1), true).unwrap_err(), JoinError::Credentials);
    assert_eq!(
        other.join(second(&token, &device(1)), lan(1), true).unwrap_err(),
        JoinError::NotHere(aisha.pid.clone())
    );
    for _ in 0..crate::engine::room::second::SECOND_OPENS_PER_MINUTE {
        other.count_second_elsewhere(&aisha.pid).unwrap();
    }
    assert_eq!(other.count_second_elsewhere(&aisha.pid).unwrap_err(), JoinError::TooManySecondPaths);
    other.count_second_elsewhere("r-someone-else").unwrap();
    let opened = other.enter_second_elsewhere(&second(&token, &device(1)), lan(1), lan(1)).unwrap();
    assert!(opened.second);
    let welcome = sent(&other, &opened.outbox);
    assert!(matches!(&welcome.frames[0], ServerMsg::Welcome { you, .. } if you.name == "Aisha"));
    assert_eq!(other.online(), (0, 0), "it holds no seat there either");
    // From another address than the first connection's: refused.
    let elsewhere = other.enter_second_elsewhere(&second(&token, &device(1)), lan(2), lan(1));
    assert!(matches!(elsewhere, Err(JoinError::BadRequest(_))));
}
