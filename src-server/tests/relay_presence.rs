//! Whether the teacher is there, as remote students hear it (docs/PROTOCOL-ADDITIONS.md, E): only
//! the teacher's signed beats say so, at once when the teacher comes or goes; a relay that says the
//! teacher is away in its own name (which would free students from following) is not believed.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use common::PATIENCE;
use common::redis::RedisServer;
use common::relays::{Tamper, tampering_relay};
use common::remote::*;
use lectern::client::{Client, Event};
use serde_json::json;

/// The next time `client` says whether the teacher is there (skipping other events).
async fn teacher_said(client: &mut Client) -> bool {
    tokio::time::timeout(PATIENCE, async {
        loop {
            match client.next_event().await {
                Some(Event::Teacher { online }) | Some(Event::Connected { teacher_online: online, .. }) => {
                    return online;
                }
                Some(Event::Stopped { code, reason }) => panic!("stopped: {code:?} {reason}"),
                Some(Event::Disconnected { reason, .. }) => panic!("the relay was dropped: {reason}"),
                Some(_) => {}
                None => panic!("the client ended"),
            }
        }
    })
    .await
    .expect("the teacher's presence in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_student_hears_the_teacher_come_and_go_from_signed_beats_only() {
    let redis = RedisServer::start().await;
    let server = bridged(&redis).await;
    let (relay, ws, fingerprint) = relay(&redis).await;
    let (teacher, _) = server.teacher().await;
    let mut student = remote_student(&server, &ws, &fingerprint, "Bilal");
    // The welcome's beat, or the next, says the teacher is there (a relay's copy of the room has no
    // teacher; a relay that opened the room before the beat of the teacher's arrival came says
    // "away" once first, as its latest beat said).
    if !teacher_said(&mut student).await {
        assert!(teacher_said(&mut student).await, "the teacher is connected");
    }
    drop(teacher);
    assert!(!teacher_said(&mut student).await, "the teacher left");
    let (_teacher, _) = server.teacher().await;
    assert!(teacher_said(&mut student).await, "the teacher is back");
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_saying_in_its_own_name_that_the_teacher_is_away_is_not_believed() {
    let redis = RedisServer::start().await;
    let server = bridged(&redis).await;
    let (relay, ws, fingerprint) = relay(&redis).await;
    let (mut teacher, _) = server.teacher().await;
    let (url, fp) = tampering_relay(ws, fingerprint, Tamper::SayTeacherAway).await;
    let mut student = remote_student(&server, &url, &fp, "Sumayya");
    state_where(&mut student, |_| true).await;
    teacher.send(json!({"t":"set","patch":{"page":2}})).await;
    teacher.send(json!({"t":"set","patch":{"page":3}})).await;
    // The relay's own `teacher` frame came between the two changes; the client took no word of it.
    tokio::time::timeout(PATIENCE, async {
        loop {
            match student.next_event().await {
                Some(Event::Teacher { online: false }) => panic!("the relay's word was taken"),
                Some(Event::State { state, .. }) if state.page == 3 => return,
                Some(_) => {}
                None => panic!("the client ended"),
            }
        }
    })
    .await
    .expect("the teacher's next change");
    relay.stop().await;
}
