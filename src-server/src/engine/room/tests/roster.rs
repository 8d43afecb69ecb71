//! What the teacher's roster shows, and when (§6): joins, hands and leaves at once; acks and round
//! trips held for the next roster interval (the server's upkeep calls `flush_roster` every 100 ms,
//! server/upkeep.rs); and every student knows whether the teacher is there.

use super::*;

/// Joins, raised hands and leaves reach the teacher at once, each as it happens.
#[tokio::test(start_paused = true)]
async fn joins_hands_and_leaves_reach_the_teacher_at_once() {
    let room = room();
    let t = teacher(&room);
    let aisha = seated(&room, "Aisha", &device(1), lan(1));
    assert!(sent(&room, &t.outbox).entry(&aisha.pid).is_some_and(|e| e.online && !e.hand));
    room.hand(&aisha.pid, true);
    assert!(sent(&room, &t.outbox).entry(&aisha.pid).is_some_and(|e| e.hand));
    room.leave(&aisha.pid, aisha.conn);
    assert!(sent(&room, &t.outbox).entry(&aisha.pid).is_some_and(|e| !e.online));
}

/// Acks and round trips wait for the roster interval, then arrive folded into one update; an ack
/// ahead of the lesson is refused with `bad_request` and changes nothing.
#[tokio::test(start_paused = true)]
async fn acks_and_round_trips_wait_for_the_roster_interval() {
    let room = room();
    let t = teacher(&room);
    let aisha = seated(&room, "Aisha", &device(1), lan(1));
    let _ = sent(&room, &t.outbox);
    room.ack(&aisha.pid, 0, &aisha.outbox);
    room.rtt(&aisha.pid, 7);
    assert!(sent(&room, &t.outbox).roster().is_empty(), "held until the interval");
    room.flush_roster();
    let changes = sent(&room, &t.outbox).roster();
    assert_eq!(changes.len(), 1, "one update: {changes:?}");
    assert_eq!((changes[0].acked, changes[0].rtt_ms), (Some(0), Some(7)));

    let _ = sent(&room, &aisha.outbox);
    room.ack(&aisha.pid, 5, &aisha.outbox);
    assert_eq!(sent(&room, &aisha.outbox).errors(), [(None, ErrorCode::BadRequest)]);
    room.flush_roster();
    assert!(sent(&room, &t.outbox).roster().is_empty());
}

/// Students are told when the teacher comes and goes (while the teacher is away, their views
/// unlock), and a student's welcome says whether the teacher is there.
#[tokio::test(start_paused = true)]
async fn students_know_whether_the_teacher_is_there() {
    let room = room();
    let aisha = seated(&room, "Aisha", &device(1), lan(1));
    let teacher_online = |s: &Sent| {
        s.frames.iter().find_map(|f| match f {
            ServerMsg::Welcome { teacher_online, .. } => Some(*teacher_online),
            _ => None,
        })
    };
    assert_eq!(teacher_online(&sent(&room, &aisha.outbox)), Some(false));
    let t = teacher(&room);
    assert_eq!(sent(&room, &aisha.outbox).teacher_online(), [true]);
    let bilal = seated(&room, "Bilal", &device(2), lan(2));
    assert_eq!(teacher_online(&sent(&room, &bilal.outbox)), Some(true));
    room.leave(&t.pid, t.conn);
    assert_eq!(sent(&room, &aisha.outbox).teacher_online(), [false]);
}
