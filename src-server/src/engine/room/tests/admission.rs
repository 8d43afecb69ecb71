//! Who is seated at once, and who waits (§3; docs/PROTOCOL-ADDITIONS.md, F and H): the right join
//! code seats a student and a wrong one is refused 4001; a resume token brings back the same seat,
//! under the name it was issued with; the class size and the students per address bound the seats;
//! the teacher's waiting room holds students with the code until the teacher lets them in.

use super::*;

/// A student with the right code is seated at once: her `welcome` names her and carries a token,
/// and the teacher sees her join on the roster.
#[tokio::test(start_paused = true)]
async fn the_right_code_seats_a_student_and_the_teacher_sees_her_join() {
    let room = room();
    let teacher = teacher(&room);
    let aisha = room.join(student(CODE, "Aisha", &device(1)), lan(2), false).unwrap();
    assert_eq!(aisha.role, Role::Student);
    assert_eq!(aisha.pid, room.student_id(&device(1)), "a new device gets its own seat");
    let (you, token) = sent(&room, &aisha.outbox).welcome();
    assert_eq!((you.name.as_str(), you.role), ("Aisha", Role::Student));
    assert_eq!(room.authorize_bearer(&token), Some(Role::Student), "the token is hers");
    let entry = sent(&room, &teacher.outbox).entry(&aisha.pid).expect("the teacher sees her join");
    assert!(entry.online && entry.name == "Aisha", "{entry:?}");
    assert_eq!(room.online(), (1, 1));
}

/// A wrong code is refused with 4001, and nobody is seated for it; a hello with no code at all is
/// a bad request (4400).
#[tokio::test(start_paused = true)]
async fn a_wrong_code_is_refused_4001_and_seats_nobody() {
    let room = room();
    let teacher = teacher(&room);
    let err = room.join(student("000000", "Guess", &device(1)), lan(2), false).unwrap_err();
    assert_eq!((err.clone(), err.close_code()), (JoinError::Credentials, 4001));
    let no_code = Hello { code: None, ..student("", "Guess", &device(2)) };
    assert_eq!(room.join(no_code, lan(2), false).unwrap_err().close_code(), 4400);
    assert_eq!(room.online(), (1, 0));
    assert!(sent(&room, &teacher.outbox).roster().is_empty(), "nobody joined");
}

/// The teacher key seats a teacher, whose welcome carries the roster and who is told whether the
/// waiting room is on; a wrong key is refused 4001, and so is a student's token in a teacher's hello.
#[tokio::test(start_paused = true)]
async fn the_teacher_key_seats_a_teacher_and_nothing_else_does() {
    let room = room();
    let aisha = seated(&room, "Aisha", &device(1), lan(2));
    let token = token_of(&room, &aisha);
    let t = room.join(teacher_hello(), None, false).unwrap();
    assert_eq!(t.role, Role::Teacher);
    let first = sent(&room, &t.outbox);
    let roster = match &first.frames[0] {
        ServerMsg::Welcome { roster: Some(roster), .. } => roster.clone(),
        other => panic!("a teacher's first frame is its welcome with the roster: {other:?}"),
    };
    assert_eq!(roster.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["Aisha"]);
    assert_eq!(first.waiting_room(), [false]);
    assert_eq!(sent(&room, &aisha.outbox).teacher_online(), [true], "students hear the teacher came");

    let wrong = Hello { key: Some("not-the-key".into()), ..teacher_hello() };
    assert_eq!(room.join(wrong, None, false).unwrap_err(), JoinError::Credentials);
    let posing = Hello { role: Some("teacher".into()), ..resume(&token, &device(1)) };
    assert_eq!(room.join(posing, None, false).unwrap_err().close_code(), 4400);
    assert_eq!(room.online(), (1, 1));
}

/// A resume token brings back the same seat, under the name the token was issued with whatever
/// the hello says, and closes the older connection of that seat with 4409. A forged token is 4001.
#[tokio::test(start_paused = true)]
async fn a_resume_token_brings_back_the_same_seat_under_its_name_and_replaces_the_older_connection() {
    let room = room();
    let first = seated(&room, "Aisha", &device(1), lan(2));
    let token = token_of(&room, &first);
    let renamed = Hello { name: Some("Maryam".into()), ..resume(&token, &device(1)) };
    let back = room.join(renamed, lan(3), false).unwrap();
    assert_eq!(back.pid, first.pid);
    assert_eq!(sent(&room, &back.outbox).welcome().0.name, "Aisha", "the name let in stays");
    assert_eq!(sent(&room, &first.outbox).closed(), Some(4409), "the older connection is replaced");
    assert_eq!(room.online(), (0, 1), "one seat, one connection");

    let (payload, _) = token.split_once('.').unwrap();
    let forged = resume(&format!("{payload}.AAAA"), &device(1));
    assert_eq!(room.join(forged, lan(3), false).unwrap_err().close_code(), 4001);
}

/// The room seats at most `limits.max_participants` students online (4029 past that); the teacher
/// is not counted, a seated student resuming is not a newcomer, and one who leaves frees a place.
#[tokio::test(start_paused = true)]
async fn no_more_students_than_the_class_size_are_online() {
    let room = room_with(CODE, |l| l.max_participants = 2);
    let a = seated(&room, "A", &device(1), lan(1));
    let a_token = token_of(&room, &a);
    let _b = seated(&room, "B", &device(2), lan(2));
    let err = room.join(student(CODE, "C", &device(3)), lan(3), false).unwrap_err();
    assert_eq!((err.clone(), err.close_code()), (JoinError::Full, 4029));
    let _t = teacher(&room);
    let again = room.join(resume(&a_token, &device(1)), lan(1), false).unwrap();
    assert_eq!(again.pid, a.pid, "a full room still takes back a seated student");
    room.leave(&again.pid, again.conn);
    assert!(room.join(student(CODE, "C", &device(3)), lan(3), false).is_ok(), "a place is free");
}

/// One address (an IPv6 /64 counts as one) seats at most `limits.max_students_per_address`
/// students (4029 past that); another address is not affected, nor is this machine's own.
#[tokio::test(start_paused = true)]
async fn one_address_seats_no_more_than_its_share() {
    let room = room_with(CODE, |l| l.max_students_per_address = 2);
    seated(&room, "A", &device(1), lan(7));
    seated(&room, "B", &device(2), lan(7));
    let err = room.join(student(CODE, "C", &device(3)), lan(7), false).unwrap_err();
    assert_eq!((err.clone(), err.close_code()), (JoinError::TooManyFromAddress, 4029));
    seated(&room, "C", &device(3), lan(8));

    let v6 = |s: &str| Some(s.parse::<IpAddr>().unwrap());
    seated(&room, "D", &device(4), v6("2001:db8:1:2::1"));
    seated(&room, "E", &device(5), v6("2001:db8:1:2::2"));
    let rotated = room.join(student(CODE, "F", &device(6)), v6("2001:db8:1:2:ffff::9"), false);
    assert_eq!(rotated.unwrap_err(), JoinError::TooManyFromAddress, "a /64 is one address");

    let here = Some(IpAddr::from([127, 0, 0, 1]));
    for n in 10..14 {
        seated(&room, "Local", &device(n), here);
    }
}

/// Departed students never lock the class out: when the table of known participants is full (4 ×
/// the class size), the student who left longest ago is forgotten to seat a newcomer.
#[tokio::test(start_paused = true)]
async fn departed_students_never_fill_the_room() {
    let room = room_with(CODE, |l| l.max_participants = 2);
    for n in 0..20 {
        let s = seated(&room, "Passing", &device(n), lan(1));
        room.leave(&s.pid, s.conn);
    }
    let _a = seated(&room, "A", &device(100), lan(2));
    assert!(room.join(student(CODE, "B", &device(101)), lan(3), false).is_ok());
    let ServerMsg::Roster { changes: known } = serde_json::from_slice(&room.roster_frame()).unwrap() else {
        panic!("a roster frame")
    };
    assert_eq!(known.len(), 8, "the table holds 4 × the class size, the two online among them");
}

/// The teacher turns the waiting room on: teachers are told and the request is answered. A student
/// whose right code the room checked waits, marked as having the code, with no seat; let in, she is
/// welcomed into her device's own seat (the code proved it, as a knock alone would not).
#[tokio::test(start_paused = true)]
async fn in_the_waiting_room_a_student_with_the_code_waits_until_let_in() {
    let room = room();
    let t = teacher(&room);
    room.set_waiting_room(Some(3), true, &t.outbox);
    let told = sent(&room, &t.outbox);
    assert_eq!((told.waiting_room(), told.oks()), (vec![true], vec![Some(3)]));
    assert!(room.waiting_room());

    assert_eq!(room.check_code(CODE), Some(true));
    let mut aisha = with_code(&room, "Aisha", &device(1), lan(2)).unwrap();
    let list = sent(&room, &t.outbox).knocks().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].name.as_str(), list[0].has_code, list[0].wrong_code), ("Aisha", true, false));
    assert_eq!((verdict(&mut aisha), room.online()), (None, (1, 0)), "she waits, unseated");

    room.decide(Some(4), &ids(&list), Verdict::Admitted, &t.outbox);
    assert_eq!(verdict(&mut aisha), Some(Verdict::Admitted));
    let joined = aisha.enter(lan(2), false).unwrap();
    assert_eq!(joined.pid, room.student_id(&device(1)), "her code earns her device's own seat");
    assert_eq!(sent(&room, &joined.outbox).welcome().0.name, "Aisha");
    let after = sent(&room, &t.outbox);
    assert_eq!((after.knocks(), after.oks()), (Some(vec![]), vec![Some(4)]));
    assert!(after.entry(&joined.pid).is_some_and(|e| e.online));
}

/// The teacher may turn away a student who waits with the code: she is closed 4003 ("the teacher
/// did not let you in") and never seated.
#[tokio::test(start_paused = true)]
async fn in_the_waiting_room_the_teacher_may_turn_a_student_away() {
    let room = room();
    let t = teacher(&room);
    room.set_waiting_room(None, true, &t.outbox);
    let mut aisha = with_code(&room, "Aisha", &device(1), lan(2)).unwrap();
    let list = sent(&room, &t.outbox).knocks().unwrap();
    room.decide(Some(5), &ids(&list), Verdict::Denied, &t.outbox);
    let turned = verdict(&mut aisha).unwrap();
    assert_eq!(turned.close(), (4003, "the teacher did not let you in"));
    assert_eq!(sent(&room, &t.outbox).knocks(), Some(vec![]));
    assert_eq!(room.online(), (1, 0));
}

/// Turning the waiting room off lets in those who wait only for it (with the right code), but not
/// students who asked without a code nor claims held while someone guesses.
#[tokio::test(start_paused = true)]
async fn turning_the_waiting_room_off_lets_in_only_those_who_wait_with_the_code() {
    let room = room();
    let t = teacher(&room);
    room.set_waiting_room(None, true, &t.outbox);
    let mut patient = with_code(&room, "Patient", &device(1), lan(1)).unwrap();
    let mut asking = asks(&room, "Asking", &device(2), lan(2)).unwrap();
    let mut held =
        room.knock(&knocking("Held", &device(3)), lan(3), Came::Held { right: Some(true) }).unwrap();
    let _ = sent(&room, &t.outbox);

    room.set_waiting_room(Some(6), false, &t.outbox);
    assert_eq!(verdict(&mut patient), Some(Verdict::Admitted));
    assert_eq!((verdict(&mut asking), verdict(&mut held)), (None, None), "they wait for the teacher");
    let told = sent(&room, &t.outbox);
    assert_eq!((told.waiting_room(), told.oks()), (vec![false], vec![Some(6)]));
    let names: Vec<String> = told.knocks().unwrap().into_iter().map(|k| k.name).collect();
    assert_eq!(names, ["Asking", "Held"]);
    assert!(!room.waiting_room());
}

/// A new code takes the mark from everyone waiting with the old one, so turning the waiting room
/// off then lets nobody in unseen: the teacher decides for each.
#[tokio::test(start_paused = true)]
async fn a_new_code_takes_the_mark_from_those_who_wait_with_the_old_one() {
    let room = room();
    let t = teacher(&room);
    room.set_waiting_room(None, true, &t.outbox);
    let mut leaked = with_code(&room, "Leaked", &device(7), lan(7)).unwrap();
    room.new_code(Some(2), &t.outbox);
    let list = sent(&room, &t.outbox).knocks().unwrap();
    assert_eq!((list[0].name.as_str(), list[0].has_code), ("Leaked", false));
    room.set_waiting_room(None, false, &t.outbox);
    assert_eq!(verdict(&mut leaked), None, "still waiting for the teacher");
}

/// A relay's copy of the room cannot let anyone in: while the waiting room is on, a code claim
/// there is closed 4029, but a resume token still gets in. No teacher key opens it.
#[tokio::test(start_paused = true)]
async fn a_relays_room_refuses_code_claims_while_the_waiting_room_is_on() {
    let room = mirror();
    assert_eq!(room.join(teacher_hello(), None, false).unwrap_err(), JoinError::Credentials);
    let aisha = room.join(student(CODE, "Aisha", &device(1)), lan(1), true).unwrap();
    let token = token_of(&room, &aisha);
    room.leave(&aisha.pid, aisha.conn);

    room.mirror_details(CODE, true);
    let err = room.join(student(CODE, "Bilal", &device(2)), lan(2), true).unwrap_err();
    assert_eq!((err.clone(), err.close_code()), (JoinError::LetIn, 4029));
    assert_eq!(room.join(resume(&token, &device(1)), lan(1), true).unwrap().pid, aisha.pid);
}
