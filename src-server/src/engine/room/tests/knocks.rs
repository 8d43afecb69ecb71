//! Asking to join (docs/PROTOCOL-ADDITIONS.md, "Asking to join", G and H): a student without the
//! code knocks, the teacher sees the list and lets in or turns away; a student who gives up leaves
//! the list; the list is bounded per device, per address and per room, so nobody can bury it.

use super::*;

/// A student without the code knocks: she waits with no seat, and every teacher sees her on the
/// list, a teacher who connects later included (right after its welcome).
#[tokio::test(start_paused = true)]
async fn a_knock_waits_and_the_teacher_sees_it() {
    let room = room();
    let t = teacher(&room);
    let mut aisha = asks(&room, "Aisha", &device(1), lan(2)).unwrap();
    assert_eq!((verdict(&mut aisha), room.online()), (None, (1, 0)));
    let list = sent(&room, &t.outbox).knocks().expect("the teacher is sent the list");
    assert_eq!(list.len(), 1);
    let k = &list[0];
    assert_eq!((k.name.as_str(), k.device.as_str()), ("Aisha", device(1).as_str()));
    assert!(!k.has_code && !k.wrong_code && !k.like_removed, "{k:?}");

    let later = room.join(teacher_hello(), None, false).unwrap();
    let told = sent(&room, &later.outbox);
    assert!(matches!(told.frames[0], ServerMsg::Welcome { .. }));
    assert_eq!(told.knocks().map(|l| ids(&l)), Some(ids(&list)));
}

/// A knock the teacher lets in is welcomed like a student who gave the code: seated, on the
/// roster, with a token that brings it back later without knocking. The list empties.
#[tokio::test(start_paused = true)]
async fn a_knock_let_in_is_a_student_whose_token_resumes() {
    let room = room();
    let t = teacher(&room);
    let mut aisha = asks(&room, "Aisha", &device(1), lan(2)).unwrap();
    let list = sent(&room, &t.outbox).knocks().unwrap();
    room.decide(Some(3), &ids(&list), Verdict::Admitted, &t.outbox);
    assert_eq!(verdict(&mut aisha), Some(Verdict::Admitted));
    let joined = aisha.enter(lan(2), false).unwrap();
    let (you, token) = sent(&room, &joined.outbox).welcome();
    assert_eq!((you.name.as_str(), you.role), ("Aisha", Role::Student));
    let told = sent(&room, &t.outbox);
    assert_eq!((told.knocks(), told.oks()), (Some(vec![]), vec![Some(3)]));
    assert!(told.entry(&joined.pid).is_some_and(|e| e.online && e.name == "Aisha"));

    drop(aisha);
    room.leave(&joined.pid, joined.conn);
    let back = room.join(resume(&token, &device(1)), lan(2), false).unwrap();
    assert_eq!(back.pid, joined.pid);
}

/// A knock the teacher turns away is closed 4003 ("the teacher did not let you in"), leaves the
/// list, and holds no seat.
#[tokio::test(start_paused = true)]
async fn a_knock_turned_away_is_closed_4003() {
    let room = room();
    let t = teacher(&room);
    let mut cyrus = asks(&room, "Cyrus", &device(3), lan(3)).unwrap();
    let list = sent(&room, &t.outbox).knocks().unwrap();
    room.decide(Some(4), &ids(&list), Verdict::Denied, &t.outbox);
    assert_eq!(verdict(&mut cyrus).map(Verdict::close), Some((4003, "the teacher did not let you in")));
    let told = sent(&room, &t.outbox);
    assert_eq!((told.knocks(), told.oks()), (Some(vec![]), vec![Some(4)]));
    assert_eq!(room.online(), (1, 0));
}

/// A student who gives up is taken off the teacher's list. (The transport gives up for a student
/// nobody decided on within `timing.knock_timeout_ms`, closing it 4008: tests/knock.rs.)
#[tokio::test(start_paused = true)]
async fn a_student_who_gives_up_leaves_the_list() {
    let room = room();
    let t = teacher(&room);
    let dana = asks(&room, "Dana", &device(4), lan(4)).unwrap();
    let _eve = asks(&room, "Eve", &device(5), lan(5)).unwrap();
    assert_eq!(sent(&room, &t.outbox).knocks().map(|l| l.len()), Some(2));
    drop(dana);
    let names: Vec<String> = sent(&room, &t.outbox).knocks().unwrap().into_iter().map(|k| k.name).collect();
    assert_eq!(names, ["Eve"]);
}

/// Ids no longer waiting (decided already, or never given) are skipped without an error, and the
/// knocks still waiting are untouched.
#[tokio::test(start_paused = true)]
async fn deciding_on_a_knock_no_longer_waiting_is_skipped() {
    let room = room();
    let t = teacher(&room);
    let mut first = asks(&room, "First", &device(1), lan(1)).unwrap();
    let mut second = asks(&room, "Second", &device(2), lan(2)).unwrap();
    let list = sent(&room, &t.outbox).knocks().unwrap();
    room.decide(Some(1), &ids(&list[..1]), Verdict::Admitted, &t.outbox);
    room.decide(Some(2), &[list[0].id.clone(), "k999".into()], Verdict::Denied, &t.outbox);
    assert_eq!((verdict(&mut first), verdict(&mut second)), (Some(Verdict::Admitted), None));
    let told = sent(&room, &t.outbox);
    assert_eq!((told.oks(), told.errors()), (vec![Some(1), Some(2)], vec![]));
}

/// The same device knocking again from the same address replaces its older knock (closed 4409),
/// so a device is on the list once.
#[tokio::test(start_paused = true)]
async fn a_device_knocking_again_from_its_address_replaces_its_older_knock() {
    let room = room();
    let t = teacher(&room);
    let mut first = asks(&room, "One", &device(11), lan(1)).unwrap();
    let mut again = asks(&room, "One again", &device(11), lan(1)).unwrap();
    assert_eq!(verdict(&mut first).map(Verdict::close).map(|c| c.0), Some(4409));
    assert_eq!(verdict(&mut again), None);
    let names: Vec<String> = sent(&room, &t.outbox).knocks().unwrap().into_iter().map(|k| k.name).collect();
    assert_eq!(names, ["One again"]);
}

/// At most three knocks without the code wait from one address (an IPv6 /64 is one): a fourth is
/// refused 4029 and the list does not grow; another address still knocks.
#[tokio::test(start_paused = true)]
async fn knocks_without_the_code_wait_three_per_address() {
    let room = room();
    let t = teacher(&room);
    let _three: Vec<Waiting> = (0..3).map(|n| asks(&room, "More", &device(n), lan(5)).unwrap()).collect();
    let err = asks(&room, "Too many", &device(3), lan(5)).unwrap_err();
    assert_eq!((err.clone(), err.close_code()), (JoinError::TooManyWaiting, 4029));
    assert_eq!(sent(&room, &t.outbox).knocks().map(|l| l.len()), Some(3));
    let _other = asks(&room, "Other", &device(4), lan(6)).unwrap();

    let v6 = |s: &str| Some(s.parse::<IpAddr>().unwrap());
    let _v6: Vec<Waiting> = (0..3)
        .map(|n| asks(&room, "Six", &device(10 + n), v6(&format!("2001:db8:1:2::{n}"))).unwrap())
        .collect();
    let rotated = asks(&room, "Six", &device(20), v6("2001:db8:1:2:ffff::1"));
    assert_eq!(rotated.unwrap_err(), JoinError::TooManyWaiting, "a /64 is one address");
}

/// At most 32 knocks without the code wait in a room, from however many addresses; claims with
/// the code are bounded by the class size instead, so they still wait.
#[tokio::test(start_paused = true)]
async fn at_most_32_knocks_without_the_code_wait_in_a_room() {
    let room = room();
    let _full: Vec<Waiting> =
        (0..32u8).map(|n| asks(&room, "Asking", &device(n.into()), lan(n)).unwrap()).collect();
    let err = asks(&room, "One more", &device(99), lan(99)).unwrap_err();
    assert_eq!(err.close_code(), 4029);
    assert!(with_code(&room, "With the code", &device(100), lan(100)).is_ok());
}

/// Claims with the code wait by what their address could still seat
/// (`limits.max_students_per_address` less its students online): past that, the address's own
/// oldest claim is closed 4029 to make room; an address with no seat left cannot wait at all.
#[tokio::test(start_paused = true)]
async fn claims_with_the_code_wait_by_what_their_address_could_seat() {
    let room = room_with(CODE, |l| l.max_students_per_address = 3);
    seated(&room, "In", &device(1), lan(7));
    let mut oldest = with_code(&room, "Fake 0", &device(10), lan(7)).unwrap();
    let mut next = with_code(&room, "Fake 1", &device(11), lan(7)).unwrap();
    let _newest = with_code(&room, "Fake 2", &device(12), lan(7)).unwrap();
    let bumped = verdict(&mut oldest).unwrap();
    assert_eq!((bumped, bumped.close().0), (Verdict::Bumped, 4029));
    assert_eq!(verdict(&mut next), None);
    let _other = with_code(&room, "Real", &device(20), lan(8)).unwrap();

    for n in 30..33 {
        seated(&room, "Full", &device(n), lan(9));
    }
    let err = with_code(&room, "No seat", &device(33), lan(9)).unwrap_err();
    assert_eq!(err, JoinError::TooManyWaiting);
}

/// The list of claims holds at most the class size: past that, the oldest claim of the address
/// with the most waiting goes, if it has more than the newcomer's, so a guesser with many
/// addresses cannot keep a classmate from a quieter address off the list, nor push out others.
#[tokio::test(start_paused = true)]
async fn a_full_list_of_claims_makes_room_for_a_quieter_address_only() {
    let room = room_with(CODE, |l| l.max_participants = 3);
    let held = Came::Held { right: Some(false) };
    let claim = |name: &str, n: usize, addr| room.knock(&knocking(name, &device(n)), addr, held);
    let mut guess_a = claim("Guess", 1, lan(1)).unwrap();
    let mut guess_b = claim("Guess", 2, lan(1)).unwrap();
    let mut quiet = claim("Quiet", 3, lan(2)).unwrap();
    let more = claim("Guess", 4, lan(1)).unwrap_err();
    assert_eq!(more, JoinError::TooManyWaiting, "the fullest address cannot push out a quieter one");
    let right = Came::Held { right: Some(true) };
    let _classmate = room.knock(&knocking("Aisha", &device(5)), lan(3), right).unwrap();
    assert_eq!(verdict(&mut guess_a), Some(Verdict::Bumped), "the fullest address's oldest goes");
    assert_eq!((verdict(&mut guess_b), verdict(&mut quiet)), (None, None));
}

/// Ending the lesson closes every waiting knock with 4000, and a knock after the end is refused
/// 4000 too.
#[tokio::test(start_paused = true)]
async fn ending_the_lesson_ends_every_knock() {
    let room = room();
    let t = teacher(&room);
    let mut farah = asks(&room, "Farah", &device(7), lan(7)).unwrap();
    room.end(Some(1), &t.outbox);
    assert_eq!(verdict(&mut farah).map(Verdict::close).map(|c| c.0), Some(4000));
    let late = asks(&room, "Late", &device(8), lan(8)).unwrap_err();
    assert_eq!((late.clone(), late.close_code()), (JoinError::Ended, 4000));
}

/// Only a student may knock, and a knock needs a name it is allowed (4400).
#[tokio::test(start_paused = true)]
async fn only_a_student_with_a_name_may_knock() {
    let room = room();
    let as_teacher = Hello { role: Some("teacher".into()), ..knocking("Sir", &device(1)) };
    let nameless = Hello { name: None, ..knocking("", &device(2)) };
    let posing = knocking("The Teacher", &device(3));
    for hello in [as_teacher, nameless, posing] {
        let err = room.knock(&hello, lan(1), Came::Asking).unwrap_err();
        assert_eq!(err.close_code(), 4400, "{hello:?}");
    }
}
