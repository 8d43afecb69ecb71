//! Removing a student, and ending the lesson (§6; docs/PROTOCOL-ADDITIONS.md, B and H): a removed
//! student is closed 4003, greyed out on the roster, and cannot come back, by token, code or knock,
//! under any of its device's ids, while a classmate who borrowed the device id of someone else
//! never gets its owner removed; a newcomer who looks like a removed student is flagged, not refused.

use super::*;

/// The teacher removes a student: she is closed 4003 at once, her raised hand goes down, and the
/// teacher's roster greys her out; the teacher's request is answered `ok`.
#[tokio::test(start_paused = true)]
async fn a_removed_student_is_closed_4003_and_greyed_out() {
    let room = room();
    let t = teacher(&room);
    let yusuf = seated(&room, "Yusuf", &device(1), lan(1));
    room.hand(&yusuf.pid, true);
    let _ = sent(&room, &t.outbox);
    room.kick(Some(9), &yusuf.pid, &t.outbox);
    let closed = sent(&room, &yusuf.outbox).close;
    assert_eq!(closed, Some((4003, "removed from this lesson by the teacher".into())));
    let told = sent(&room, &t.outbox);
    assert_eq!(told.oks(), [Some(9)]);
    let entry = told.entry(&yusuf.pid).unwrap();
    assert!(entry.kicked && !entry.hand, "{entry:?}");
}

/// A removed student's token is revoked: it no longer resumes (4001) nor fetches documents.
#[tokio::test(start_paused = true)]
async fn a_removed_students_token_is_refused() {
    let room = room();
    let t = teacher(&room);
    let yusuf = seated(&room, "Yusuf", &device(1), lan(1));
    let token = token_of(&room, &yusuf);
    assert_eq!(room.authorize_bearer(&token), Some(Role::Student));
    room.kick(None, &yusuf.pid, &t.outbox);
    room.leave(&yusuf.pid, yusuf.conn);
    let err = room.join(resume(&token, &device(1)), lan(1), false).unwrap_err();
    assert_eq!((err.clone(), err.close_code()), (JoinError::Credentials, 4001));
    assert_eq!(room.authorize_bearer(&token), None);
}

/// A removed device cannot come back by code (4003, under none of its twins either) nor by knock
/// (4003); a classmate on another device still joins.
#[tokio::test(start_paused = true)]
async fn a_removed_device_cannot_come_back_by_code_or_knock() {
    let room = room();
    let t = teacher(&room);
    let gus = seated(&room, "Gus", &device(9), lan(1));
    room.kick(None, &gus.pid, &t.outbox);
    room.leave(&gus.pid, gus.conn);
    let by_code = room.join(student(CODE, "Gus", &device(9)), lan(1), false).unwrap_err();
    assert_eq!((by_code.clone(), by_code.close_code()), (JoinError::Kicked, 4003));
    let by_knock = asks(&room, "Gus", &device(9), lan(1)).unwrap_err();
    assert_eq!((by_knock.clone(), by_knock.close_code()), (JoinError::Kicked, 4003));
    assert!(room.join(student(CODE, "Ida", &device(10)), lan(1), false).is_ok());
}

/// Removing a twin (a classmate who borrowed a device id) removes every twin of that device and
/// turns away its waiting knocks (4003), so it cannot come straight back; the device's owner, in
/// its own seat, is not removed with it and still resumes.
#[tokio::test(start_paused = true)]
async fn removing_a_twin_removes_its_device_but_not_the_owner() {
    let room = room();
    let t = teacher(&room);
    let aisha = seated(&room, "Aisha", &device(1), lan(1));
    let token = token_of(&room, &aisha);
    let twin = seated(&room, "Twin", &device(1), lan(2));
    let mut waiting = asks(&room, "Twin again", &device(1), lan(2)).unwrap();
    room.kick(Some(2), &twin.pid, &t.outbox);
    assert_eq!(sent(&room, &twin.outbox).closed(), Some(4003));
    assert_eq!(verdict(&mut waiting).map(Verdict::close).map(|c| c.0), Some(4003));
    assert_eq!(sent(&room, &t.outbox).knocks(), Some(vec![]));

    let by_code = room.join(student(CODE, "Back", &device(1)), lan(2), false).unwrap_err();
    assert_eq!(by_code.close_code(), 4003);
    assert_eq!(asks(&room, "Back", &device(1), lan(2)).unwrap_err().close_code(), 4003);
    assert_eq!(sent(&room, &aisha.outbox).closed(), None, "Aisha is still connected");
    let back = room.join(resume(&token, &device(1)), lan(1), false).unwrap();
    assert_eq!(back.pid, aisha.pid);
}

/// Only a student the room knows can be removed: any other id (the teacher's included) is
/// answered `not_found`, and nobody is closed.
#[tokio::test(start_paused = true)]
async fn removing_someone_who_is_not_a_student_is_not_found() {
    let room = room();
    let t = teacher(&room);
    let aisha = seated(&room, "Aisha", &device(1), lan(1));
    room.kick(Some(11), "p-nobody", &t.outbox);
    room.kick(Some(12), &t.pid, &t.outbox);
    let told = sent(&room, &t.outbox);
    assert_eq!(told.errors(), [(Some(11), ErrorCode::NotFound), (Some(12), ErrorCode::NotFound)]);
    assert_eq!((told.closed(), sent(&room, &aisha.outbox).closed()), (None, None));
    assert_eq!(room.online(), (1, 1));
}

/// A removed student back on a new device (a browser makes up device ids) is let in, but flagged
/// for the teacher when its name is the removed student's (however written) or it comes from an
/// address the removed student had to itself; a classmate is not. A knock carries the flag too.
#[tokio::test(start_paused = true)]
async fn a_newcomer_like_a_removed_student_is_flagged_not_refused() {
    let room = room();
    let t = teacher(&room);
    let yusuf = seated(&room, "Yusuf", &device(1), lan(3));
    room.kick(None, &yusuf.pid, &t.outbox);
    room.leave(&yusuf.pid, yusuf.conn);
    let _ = sent(&room, &t.outbox);

    let renamed = seated(&room, "yusuf ", &device(2), lan(4));
    let same_address = seated(&room, "Someone", &device(3), lan(3));
    let classmate = seated(&room, "Maryam", &device(4), lan(5));
    let told = sent(&room, &t.outbox);
    let flagged = |j: &Joined| told.entry(&j.pid).unwrap().like_removed;
    assert!(flagged(&renamed) && flagged(&same_address), "{:?}", told.roster());
    assert!(!flagged(&classmate));

    let _knock = asks(&room, "YUSUF", &device(5), lan(6)).unwrap();
    assert!(sent(&room, &t.outbox).knocks().unwrap()[0].like_removed);
}

/// An address the removed student shared with a classmate (a school's NAT) flags nobody: only the
/// name does.
#[tokio::test(start_paused = true)]
async fn a_shared_address_flags_nobody() {
    let room = room();
    let t = teacher(&room);
    let yusuf = seated(&room, "Yusuf", &device(1), lan(6));
    let _ali = seated(&room, "Ali", &device(2), lan(6));
    room.kick(None, &yusuf.pid, &t.outbox);
    let _ = sent(&room, &t.outbox);
    let newcomer = seated(&room, "Hana", &device(3), lan(6));
    assert!(!sent(&room, &t.outbox).entry(&newcomer.pid).unwrap().like_removed);
}

/// Ending the lesson sends everyone the `ended` patch and closes them 4000 (the teacher who asked,
/// after its `ok`); nobody joins an ended lesson.
#[tokio::test(start_paused = true)]
async fn ending_the_lesson_closes_everyone_and_lets_nobody_in() {
    let room = room();
    let t = teacher(&room);
    let aisha = seated(&room, "Aisha", &device(1), lan(1));
    let token = token_of(&room, &aisha);
    room.end(Some(1), &t.outbox);
    let hers = sent(&room, &aisha.outbox);
    assert!(
        hers.frames.iter().any(|f| matches!(f, ServerMsg::Patch { patch, .. } if patch.ended == Some(true)))
    );
    assert_eq!(hers.closed(), Some(4000));
    let told = sent(&room, &t.outbox);
    assert_eq!((told.oks(), told.closed()), (vec![Some(1)], Some(4000)));

    let late = room.join(student(CODE, "Late", &device(2)), lan(2), false).unwrap_err();
    assert_eq!((late.clone(), late.close_code()), (JoinError::Ended, 4000));
    assert_eq!(room.join(resume(&token, &device(1)), lan(1), false).unwrap_err(), JoinError::Ended);
}
