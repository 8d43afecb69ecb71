//! Guessing the join code (docs/PROTOCOL-ADDITIONS.md, G): the room answers at most a thousandth
//! of all codes an hour (a tenth of that at once, the rest over the hour); past that every code
//! claim waits, right code or wrong, and a held claim's code is checked for the teacher's eyes
//! only, three wrong an hour per address. The teacher is told, and a new code refills nothing.

use std::time::Duration;

use super::*;

/// A wrong code, never the room's.
const WRONG: &str = "000000";

/// Spends a six-digit room's budget: a hundred wrong codes, each answered 4001.
fn spend(room: &Room) {
    for n in 0..100 {
        let err = room.join(student(WRONG, "Guess", &device(1000 + n)), lan(1), false).unwrap_err();
        assert_eq!(err, JoinError::Credentials, "wrong code {n} is answered");
    }
}

/// Wrong codes are answered (4001) until the room's budget of a hundred at once is spent; then a
/// code claim is not answered at all, right code or wrong: it must wait for the teacher (a relay,
/// which cannot hold it, closes it 4029). Nobody is seated by the right code meanwhile.
#[tokio::test(start_paused = true)]
async fn once_the_budget_is_spent_even_the_right_code_waits() {
    let room = room();
    assert!(room.code_checks_open());
    spend(&room);
    assert!(!room.code_checks_open());
    assert_eq!((room.check_code(CODE), room.check_code(WRONG)), (None, None));
    let right = room.join(student(CODE, "Maryam", &device(1)), lan(2), false).unwrap_err();
    let wrong = room.join(student(WRONG, "Guess", &device(2)), lan(3), false).unwrap_err();
    assert_eq!((right.clone(), right.close_code()), (JoinError::WaitingRoom, 4029));
    assert_eq!(wrong, right, "the guesser learns nothing");
    assert_eq!(room.online(), (0, 0));
}

/// The budget refills with the rest of the hour (900 more, one every 4 s for six digits; one every
/// 400 s for four), so no hour answers more than a thousandth of the codes there are.
#[tokio::test(start_paused = true)]
async fn the_budget_refills_over_the_hour_and_no_hour_answers_more() {
    let room = room();
    spend(&room);
    tokio::time::advance(Duration::from_millis(3_500)).await;
    assert_eq!(room.check_code(WRONG), None);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(room.check_code(WRONG), Some(false), "one more after 4 s");
    assert_eq!(room.check_code(WRONG), None);

    let room = room_with("4821", |_| {});
    let start = tokio::time::Instant::now();
    let mut answered = 0;
    while start.elapsed() < Duration::from_secs(3600) {
        // At most a few at a time, so that a room with no budget fails here rather than hangs.
        answered += (0..10).take_while(|_| room.check_code("1111").is_some()).count();
        tokio::time::advance(Duration::from_secs(10)).await;
    }
    assert!((9..=10).contains(&answered), "ten wrong 4-digit codes an hour at most: {answered}");
}

/// A few wrong codes are typos and tell nobody; the fifth tells the teachers (`guessing`), then at
/// most every 5 s; the budget running out is told at once, with `waiting_room: true`.
#[tokio::test(start_paused = true)]
async fn the_teacher_hears_of_a_guesser_but_not_of_typos() {
    let room = room();
    let t = teacher(&room);
    let guess = |n: usize| room.join(student(WRONG, "Guess", &device(n)), lan(1), false);
    for n in 0..4 {
        guess(n).unwrap_err();
    }
    assert_eq!(sent(&room, &t.outbox).guessing(), []);
    guess(4).unwrap_err();
    guess(5).unwrap_err();
    assert_eq!(sent(&room, &t.outbox).guessing(), [(5, false)], "the fifth, and not again at once");
    tokio::time::advance(Duration::from_secs(5)).await;
    for n in 6..200 {
        guess(n).unwrap_err();
    }
    // The 5 s refilled one and a quarter: the 101st wrong code spends the budget.
    assert_eq!(sent(&room, &t.outbox).guessing(), [(7, false), (101, true)]);

    let small = room_with("4821", |_| {});
    let t = teacher(&small);
    assert_eq!(small.check_code("1111"), Some(false));
    assert_eq!(sent(&small, &t.outbox).guessing(), [(1, true)], "a spent budget is told at once");
}

/// A held claim's code is still compared, for the teacher's eyes: right or wrong, three wrong an
/// hour per address (an IPv6 /64 is one); past that, the address's claims are not checked at all,
/// the right code included, while other addresses still are. The teacher's list carries the marks.
#[tokio::test(start_paused = true)]
async fn a_held_claims_code_is_checked_three_wrong_an_hour_per_address() {
    let room = room();
    let t = teacher(&room);
    spend(&room);
    let guesser = lan(2);
    for n in 0..3 {
        assert_eq!(room.check_held_code(WRONG, guesser), Some(false), "wrong code {n} is marked");
    }
    assert_eq!(room.check_held_code(WRONG, guesser), None, "the fourth is not marked");
    assert_eq!(room.check_held_code(CODE, guesser), None, "nor, now, the right code from there");
    assert_eq!(room.check_held_code(WRONG, lan(3)), Some(false), "another address is still checked");
    assert_eq!(room.check_held_code(CODE, lan(4)), Some(true));

    let held = |n: u8, right| {
        room.knock(&knocking("Aisha", &device(n.into())), lan(10 + n), Came::Held { right }).unwrap()
    };
    let _waiting = [held(1, Some(true)), held(2, Some(false)), held(3, None)];
    let list = sent(&room, &t.outbox).knocks().unwrap();
    let marks: Vec<(bool, bool)> = list.iter().map(|k| (k.has_code, k.wrong_code)).collect();
    assert_eq!(marks, [(true, false), (false, true), (false, false)]);
}

/// Past its three, an address gets one wrong code checked every 20 minutes.
#[tokio::test(start_paused = true)]
#[ignore = "untestable under a paused clock: the held quota (rate::FailedHellos, governor) runs on \
            the wall clock, not tokio's, while the room's budget runs on tokio's"]
async fn past_its_three_an_address_gets_one_wrong_code_checked_every_20_minutes() {
    let room = room();
    spend(&room);
    for _ in 0..4 {
        room.check_held_code(WRONG, lan(2));
    }
    tokio::time::advance(Duration::from_secs(20 * 60)).await;
    assert_eq!(room.check_held_code(WRONG, lan(2)), Some(false));
    assert_eq!(room.check_held_code(WRONG, lan(2)), None);
}

/// Wrong codes count in all, held ones included: the teacher's alert says how many since the code
/// was set, answered or held.
#[tokio::test(start_paused = true)]
async fn held_wrong_codes_count_with_the_answered_ones() {
    let room = room_with("4821", |_| {});
    let t = teacher(&room);
    assert_eq!(room.check_code("1111"), Some(false));
    for n in 0..5u8 {
        room.check_held_code("2222", lan(n));
    }
    tokio::time::advance(Duration::from_secs(5)).await;
    room.check_held_code("3333", lan(9));
    assert_eq!(sent(&room, &t.outbox).guessing(), [(1, true), (7, true)], "the seventh, held, is told");
}

/// A new code shuts the old one out and keeps the class: students already in stay, the old code
/// is refused 4001, the new one (of the same length) seats.
#[tokio::test(start_paused = true)]
async fn a_new_code_shuts_the_old_one_out_and_keeps_the_class() {
    let room = room();
    let t = teacher(&room);
    let idris = seated(&room, "Idris", &device(1), lan(1));
    room.new_code(Some(9), &t.outbox);
    assert_eq!(sent(&room, &t.outbox).oks(), [Some(9)]);
    let code = room.code();
    assert!(code != CODE && code.len() == CODE.len(), "{code}");
    let old = room.join(student(CODE, "Late", &device(2)), lan(2), false).unwrap_err();
    assert_eq!(old.close_code(), 4001, "the old code lets no one in");
    assert!(room.join(student(&code, "Late", &device(2)), lan(2), false).is_ok());
    assert_eq!(sent(&room, &idris.outbox).closed(), None, "Idris stays");
}

/// A new code starts the count of wrong codes again but adds nothing to the budget: the hour's
/// guesses count against every code the lesson has had.
#[tokio::test(start_paused = true)]
async fn a_new_code_adds_no_budget() {
    let room = room_with("4821", |_| {});
    let t = teacher(&room);
    assert_eq!(room.check_code("1111"), Some(false));
    let _ = sent(&room, &t.outbox);
    room.new_code(None, &t.outbox);
    assert_eq!(sent(&room, &t.outbox).guessing(), [(0, true)], "the count starts again");
    assert!(!room.code_checks_open(), "the budget does not");
    assert_eq!(room.check_code(&room.code()), None);
}

/// Wrong codes never keep out a resume token or the teacher key, however spent the budget.
#[tokio::test(start_paused = true)]
async fn wrong_codes_never_keep_out_a_token_or_the_key() {
    let room = room();
    let aisha = seated(&room, "Aisha", &device(1), lan(1));
    let token = token_of(&room, &aisha);
    room.leave(&aisha.pid, aisha.conn);
    spend(&room);
    assert_eq!(room.join(resume(&token, &device(1)), lan(1), false).unwrap().pid, aisha.pid);
    assert_eq!(room.join(teacher_hello(), lan(1), false).unwrap().role, Role::Teacher);
}
