//! Who comes in, and as whom (issue 15, finding 4; docs/PROTOCOL-ADDITIONS.md, B and H): a device id
//! proves nothing, so a code claim never inherits another student's seat; the teacher's waiting room
//! holds students with the code until they are let in, even a whole class behind one address; and a
//! removed student back on a new device is flagged on the teacher's roster.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use axum::http::StatusCode;
use common::{CODE, Raw, TestServer, device};
use lectern::engine::room::knock::{Came, Verdict};
use serde_json::{Value, json};

async fn code_hello(server: &TestServer, code: &str, name: &str, device: &str) -> Raw {
    let mut raw = server.raw().await;
    raw.send(json!({"t":"hello","v":1,"role":"student","code":code,"name":name,"device":device})).await;
    raw
}

/// Reads the teacher's roster changes into `seen` (the latest entry of each student) until `done`.
async fn roster_until(teacher: &mut Raw, seen: &mut Vec<Value>, done: impl Fn(&[Value]) -> bool) {
    loop {
        let frame = teacher.recv_type("roster").await;
        for change in frame["changes"].as_array().unwrap() {
            seen.retain(|e| e["id"] != change["id"]);
            seen.push(change.clone());
        }
        if done(seen) {
            return;
        }
    }
}

#[tokio::test]
async fn a_code_hello_with_a_classmates_device_id_gets_a_seat_of_its_own() {
    let server = TestServer::start().await;
    let (mut teacher, _) = server.teacher().await;
    let (amina, welcome) = server.student("Amina", &device(1)).await;
    let amina_id = welcome["you"]["id"].as_str().unwrap().to_string();
    let token = welcome["token"].as_str().unwrap().to_string();
    drop(amina); // Amina's tablet sleeps: her seat is offline
    let mut roster = Vec::new();
    roster_until(&mut teacher, &mut roster, |r| {
        r.iter().any(|e| e["id"] == amina_id.as_str() && e["online"] == false)
    })
    .await;

    // A classmate read Amina's device id off a screen and joins with it and the code.
    let mut bored = code_hello(&server, CODE, "Bored", &device(1)).await;
    let w = bored.recv_type("welcome").await;
    assert_ne!(w["you"]["id"], amina_id.as_str(), "a device id alone must not take Amina's seat");
    roster_until(&mut teacher, &mut roster, |r| r.iter().any(|e| e["name"] == "Bored")).await;
    let seat = roster.iter().find(|e| e["id"] == amina_id.as_str()).unwrap();
    assert_eq!((seat["name"].as_str(), seat["online"].as_bool()), (Some("Amina"), Some(false)));

    // Amina's token still proves her seat, and neither closes the other.
    let mut back = server.raw().await;
    back.send(json!({"t":"hello","v":1,"role":"student","resume":token,"device":device(1)})).await;
    let again = back.recv_type("welcome").await;
    assert_eq!(
        (again["you"]["id"].as_str(), again["you"]["name"].as_str()),
        (Some(&*amina_id), Some("Amina"))
    );
    bored.send(json!({"t":"ping","id":3})).await;
    assert_eq!(bored.recv_type("pong").await["id"], 3, "the classmate was not closed either");
}

#[tokio::test]
async fn the_waiting_room_holds_a_whole_class_behind_one_address_until_the_teacher_lets_it_in() {
    let server = TestServer::start().await;
    let (mut teacher, welcome) = server.teacher().await;
    assert_eq!(welcome["t"], "welcome");
    assert_eq!(teacher.recv_type("waiting_room").await["on"], false);
    let (mut early, early_welcome) = server.student("Early", &device(1)).await;
    let early_token = early_welcome["token"].as_str().unwrap().to_string();

    teacher.send(json!({"t":"waiting_room","id":4,"on":true})).await;
    // Every teacher hears of it, then the request is answered.
    assert_eq!(teacher.recv_type("waiting_room").await["on"], true);
    assert_eq!(teacher.recv_type("ok").await["id"], 4);

    // Twelve students with the right code, all from one address (a school's NAT): each waits,
    // where knocks without the code are held to a few per address.
    let mut class = Vec::new();
    for n in 0..12 {
        let mut s = code_hello(&server, CODE, &format!("Student {n}"), &device(10 + n)).await;
        assert_eq!(s.recv_type("waiting").await["t"], "waiting", "student {n} waits");
        class.push(s);
    }
    let list = loop {
        let list = teacher.recv_type("knocks").await;
        if list["knocks"].as_array().unwrap().len() == 12 {
            break list;
        }
    };
    assert!(list["knocks"].as_array().unwrap().iter().all(|k| k["has_code"] == true));
    // A wrong code does not even wait.
    let mut wrong = code_hello(&server, "000000", "Guess", &device(99)).await;
    assert_eq!(wrong.close_code().await, 4001);
    // A student already in, coming back with its token, does not wait.
    drop(early);
    early = server.raw().await;
    early.send(json!({"t":"hello","v":1,"role":"student","resume":early_token,"device":device(1)})).await;
    assert_eq!(early.recv_type("welcome").await["you"]["name"], "Early");

    let ids: Vec<Value> = list["knocks"].as_array().unwrap().iter().map(|k| k["id"].clone()).collect();
    teacher.send(json!({"t":"admit","id":5,"knocks":ids})).await;
    for (n, s) in class.iter_mut().enumerate() {
        assert_eq!(s.recv_type("welcome").await["you"]["name"], format!("Student {n}"));
    }

    // Off again: the next student with the code walks in.
    teacher.send(json!({"t":"waiting_room","id":6,"on":false})).await;
    assert_eq!(teacher.recv_type("waiting_room").await["on"], false);
    let (_, late) = server.student("Late", &device(50)).await;
    assert_eq!(late["you"]["name"], "Late");
}

#[tokio::test]
async fn a_student_cannot_open_or_close_the_waiting_room() {
    let server = TestServer::start().await;
    let (mut student, _) = server.student("Bored", &device(1)).await;
    student.send(json!({"t":"waiting_room","id":8,"on":true})).await;
    let err = student.recv_type("error").await;
    assert_eq!((err["id"].as_u64(), err["code"].as_str()), (Some(8), Some("forbidden")));
    let (_, next) = server.student("Next", &device(2)).await;
    assert_eq!(next["you"]["name"], "Next", "the door is still open");
}

#[tokio::test]
async fn the_waiting_room_stays_on_across_a_restart() {
    let server = TestServer::start().await;
    let (mut teacher, _) = server.teacher().await;
    teacher.send(json!({"t":"waiting_room","id":1,"on":true})).await;
    assert_eq!(teacher.recv_type("ok").await["id"], 1);
    drop(teacher);
    let port = server.port();
    let dir = server.stop().await;
    let server = TestServer::in_dir(dir, |_, _| {}, &format!("127.0.0.1:{port}")).await;
    let (mut teacher, _) = server.teacher().await;
    assert_eq!(teacher.recv_type("waiting_room").await["on"], true);
    let mut s = code_hello(&server, CODE, "After", &device(3)).await;
    assert_eq!(s.recv_type("waiting").await["t"], "waiting");
}

#[tokio::test]
async fn a_removed_student_back_on_a_new_device_is_flagged_for_the_teacher() {
    let server = TestServer::start().await;
    let (mut teacher, _) = server.teacher().await;
    let (mut yusuf, welcome) = server.student("Yusuf", &device(1)).await;
    let yusuf_id = welcome["you"]["id"].as_str().unwrap().to_string();
    teacher.send(json!({"t":"kick","id":2,"who":yusuf_id})).await;
    assert_eq!(yusuf.close_code().await, 4003);

    // Back with a new device id and the same name, written a little differently.
    let (_, back) = server.student("yusuf ", &device(2)).await;
    let back_id = back["you"]["id"].as_str().unwrap().to_string();
    let (_, other) = server.student("Maryam", &device(3)).await;
    let other_id = other["you"]["id"].as_str().unwrap().to_string();
    let mut roster = Vec::new();
    roster_until(&mut teacher, &mut roster, |r| {
        r.iter().any(|e| e["id"] == back_id.as_str()) && r.iter().any(|e| e["id"] == other_id.as_str())
    })
    .await;
    let entry = |id: &str| roster.iter().find(|e| e["id"] == id).unwrap().clone();
    assert_eq!(entry(&back_id)["like_removed"], true, "flagged: {roster:?}");
    assert_eq!(entry(&other_id).get("like_removed"), None, "a classmate is not");

    // In the waiting room, the knock carries the flag before the teacher lets anyone in.
    teacher.send(json!({"t":"waiting_room","id":3,"on":true})).await;
    let mut again = code_hello(&server, CODE, "YUSUF", &device(4)).await;
    assert_eq!(again.recv_type("waiting").await["t"], "waiting");
    let list = teacher.recv_type("knocks").await;
    assert_eq!(list["knocks"][0]["like_removed"], true);
}

fn lan(n: u8) -> Option<std::net::IpAddr> {
    Some(std::net::IpAddr::from([192, 168, 1, n]))
}

fn hello_with_code(name: &str, device: &str) -> lectern::protocol::Hello {
    lectern::protocol::Hello {
        v: Some(1.into()),
        role: Some("student".into()),
        code: Some(CODE.into()),
        name: Some(name.into()),
        device: Some(device.into()),
        ..lectern::protocol::Hello::default()
    }
}

#[tokio::test]
async fn one_address_cannot_bury_the_waiting_room_in_knocks_with_the_code() {
    let server = TestServer::with(|limits, _| limits.max_students_per_address = 3).await;
    let room = server.app().room();
    let held: Vec<_> = (0..3)
        .map(|n| {
            room.knock(&hello_with_code(&format!("Fake {n}"), &device(100 + n)), lan(7), Came::WithCode)
                .unwrap()
        })
        .collect();
    let mut held = held;
    let fourth = room.knock(&hello_with_code("Fake 3", &device(103)), lan(7), Came::WithCode);
    assert!(fourth.is_ok(), "a newer knock from the address takes the place of its oldest");
    assert_eq!(held[0].verdict().await, Verdict::Bumped, "no more knocks than the address could seat");
    assert!(
        room.knock(&hello_with_code("Real", &device(200)), lan(8), Came::WithCode).is_ok(),
        "another address waits"
    );
    drop(held);
}

/// Issue 22, finding 2: a guesser with as many addresses as the list has places, one claim each,
/// still cannot keep a classmate from a fresh address off it: the oldest of the fullest goes.
#[tokio::test]
async fn a_full_list_of_held_claims_makes_room_for_a_quieter_address() {
    let server = TestServer::with(|limits, _| limits.max_participants = 5).await;
    let room = server.app().room();
    let held = Came::Held { right: Some(false) };
    let mut guesses: Vec<_> = (0..5u8)
        .map(|n| {
            room.knock(&hello_with_code("Aisha", &device(100 + usize::from(n))), lan(10 + n), held).unwrap()
        })
        .collect();
    let classmate =
        room.knock(&hello_with_code("Aisha", &device(1)), lan(99), Came::Held { right: Some(true) });
    assert!(classmate.is_ok(), "the classmate's claim is listed");
    assert_eq!(guesses[0].verdict().await, Verdict::Bumped, "the oldest claim of an address as full went");
    // The list is full again (1 each): a second fresh address takes the oldest place, not the classmate's
    // while an older one is there.
    let next = room.knock(&hello_with_code("Aisha", &device(2)), lan(98), held);
    assert!(next.is_ok());
    assert_eq!(guesses[1].verdict().await, Verdict::Bumped);
    drop(classmate);
}

#[tokio::test]
async fn a_device_that_keeps_losing_its_token_is_never_locked_out_and_never_takes_its_own_first_seat() {
    let server = TestServer::start().await;
    let room = server.app().room();
    let first = room.join(hello_with_code("Sami", &device(1)), lan(9), false).unwrap();
    room.leave(&first.pid, first.conn);
    let mut seats = vec![first.pid.clone()];
    for _ in 0..7 {
        let j = room.join(hello_with_code("Sami", &device(1)), lan(9), false).unwrap();
        assert!(!seats.contains(&j.pid), "a fresh seat while the device has twins left");
        seats.push(j.pid.clone());
        room.leave(&j.pid, j.conn);
    }
    // Every id of the device is known now: the twin that left longest ago is used again, afresh.
    let again = room.join(hello_with_code("Sami", &device(1)), lan(9), false).unwrap();
    assert_eq!(again.pid, seats[1], "the oldest twin, never the device's own id");
}

#[tokio::test]
async fn turning_the_waiting_room_off_lets_in_those_who_wait_with_the_code() {
    let server = TestServer::start().await;
    let (mut teacher, _) = server.teacher().await;
    waiting_room_on(&mut teacher).await;
    let mut waiting = code_hello(&server, CODE, "Patient", &device(5)).await;
    assert_eq!(waiting.recv_type("waiting").await["t"], "waiting");
    teacher.send(json!({"t":"waiting_room","id":2,"on":false})).await;
    assert_eq!(waiting.recv_type("welcome").await["you"]["name"], "Patient");
}

#[tokio::test]
async fn a_twin_given_afresh_refuses_the_tokens_of_its_earlier_holder() {
    let server = TestServer::start().await;
    let (mut teacher, _) = server.teacher().await;
    let mut roster = Vec::new();
    let mut tokens = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..8 {
        let mut s = code_hello(&server, CODE, "Sami", &device(1)).await;
        let w = s.recv_type("welcome").await;
        let id = w["you"]["id"].as_str().unwrap().to_string();
        tokens.push(w["token"].as_str().unwrap().to_string());
        ids.push(id.clone());
        drop(s);
        roster_until(&mut teacher, &mut roster, |r| {
            r.iter().any(|e| e["id"] == id.as_str() && e["online"] == false)
        })
        .await;
    }
    // The ninth join by code reuses the twin that left longest ago (the second seat).
    let mut ninth = code_hello(&server, CODE, "Sami", &device(1)).await;
    assert_eq!(ninth.recv_type("welcome").await["you"]["id"], ids[1].as_str());
    // Whoever held that seat before cannot resume into it; the device's own first seat still can.
    let mut stale = server.raw().await;
    stale.send(json!({"t":"hello","v":1,"role":"student","resume":tokens[1],"device":device(1)})).await;
    assert_eq!(stale.close_code().await, 4001);
    let mut owner = server.raw().await;
    owner.send(json!({"t":"hello","v":1,"role":"student","resume":tokens[0],"device":device(1)})).await;
    assert_eq!(owner.recv_type("welcome").await["you"]["id"], ids[0].as_str());
    // Issue 22, finding 8: nor can that token fetch the lesson's documents; the owner's can.
    assert_eq!(fetch_doc(&server, &tokens[1]).await, StatusCode::UNAUTHORIZED);
    assert_eq!(fetch_doc(&server, &tokens[0]).await, StatusCode::OK);
}

/// `GET /v1/docs/demo` (the document the lesson shows) with `bearer`: its status.
async fn fetch_doc(server: &TestServer, bearer: &str) -> StatusCode {
    use axum::extract::ConnectInfo;
    use tower::ServiceExt;
    let req = axum::http::Request::get("/v1/docs/demo")
        .header("authorization", format!("Bearer {bearer}"))
        .extension(ConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 50000))))
        .body(axum::body::Body::empty())
        .unwrap();
    lectern::server::http::router(server.app().clone()).oneshot(req).await.unwrap().status()
}

/// Issue 22, finding 3: a student let in under one name cannot resume under another (a rename to a
/// removed student's name would go unflagged); the roster keeps the name the teacher let in.
#[tokio::test]
async fn a_student_let_in_comes_back_under_the_name_it_was_let_in_with() {
    let server = TestServer::start().await;
    let (mut teacher, _) = server.teacher().await;
    waiting_room_on(&mut teacher).await;
    let mut ali = code_hello(&server, CODE, "Ali", &device(3)).await;
    ali.recv_type("waiting").await;
    let list = teacher.recv_type("knocks").await;
    let id = list["knocks"][0]["id"].as_str().unwrap().to_string();
    teacher.send(json!({"t":"admit","id":2,"knocks":[id]})).await;
    let token = ali.recv_type("welcome").await["token"].as_str().unwrap().to_string();
    drop(ali);
    let mut back = server.raw().await;
    back.send(json!({"t":"hello","v":1,"role":"student","resume":token,"name":"Aisha","device":device(3)}))
        .await;
    assert_eq!(back.recv_type("welcome").await["you"]["name"], "Ali", "the name let in stays");
    let mut roster = Vec::new();
    roster_until(&mut teacher, &mut roster, |r| r.iter().any(|e| e["online"] == true && e["name"] == "Ali"))
        .await;
    assert!(roster.iter().all(|e| e["name"] != "Aisha"), "{roster:?}");
}

/// Issue 22, finding 4: a stranger knocking with a classmate's device id, from another address,
/// neither keeps her right-code claim off the teacher's list nor, let in, takes her device's seat.
#[tokio::test]
async fn a_knock_with_a_classmates_device_id_neither_blocks_her_nor_takes_her_seat() {
    let server = TestServer::start().await;
    let (mut teacher, _) = server.teacher().await;
    waiting_room_on(&mut teacher).await;
    let mut stranger = server.raw_from(40).await;
    stranger
        .send(json!({"t":"hello","v":1,"role":"student","knock":true,"name":"Aisha","device":device(9)}))
        .await;
    stranger.recv_type("waiting").await;
    let mut aisha = server.raw_from(41).await;
    aisha
        .send(json!({"t":"hello","v":1,"role":"student","code":CODE,"name":"Aisha","device":device(9)}))
        .await;
    assert_eq!(aisha.recv_type("waiting").await["t"], "waiting", "her claim is on the list too");
    let list = loop {
        let list = teacher.recv_type("knocks").await;
        if list["knocks"].as_array().unwrap().len() == 2 {
            break list;
        }
    };
    let entries = list["knocks"].as_array().unwrap();
    let theirs = entries.iter().find(|k| k.get("has_code").is_none()).unwrap()["id"].as_str().unwrap();
    let hers = entries.iter().find(|k| k["has_code"] == true).unwrap()["id"].as_str().unwrap();
    teacher.send(json!({"t":"admit","id":2,"knocks":[theirs]})).await;
    let theirs = stranger.recv_type("welcome").await["you"]["id"].as_str().unwrap().to_string();
    teacher.send(json!({"t":"admit","id":3,"knocks":[hers]})).await;
    let hers = aisha.recv_type("welcome").await["you"]["id"].as_str().unwrap().to_string();
    assert_ne!(theirs, hers);
    assert_eq!(
        hers,
        server.app().room().student_id(&device(9)),
        "her right code takes her device's own seat"
    );
}

#[tokio::test]
async fn a_new_code_takes_the_code_from_those_who_wait_with_the_old_one() {
    let server = TestServer::start().await;
    let (mut teacher, _) = server.teacher().await;
    waiting_room_on(&mut teacher).await;
    let mut stranger = code_hello(&server, CODE, "Leaked", &device(7)).await;
    assert_eq!(stranger.recv_type("waiting").await["t"], "waiting");
    teacher.send(json!({"t":"new_code","id":2})).await;
    let list = loop {
        let list = teacher.recv_type("knocks").await;
        if list["knocks"][0].get("has_code").is_none() {
            break list;
        }
    };
    assert_eq!(list["knocks"][0]["name"], "Leaked");
    // Turning the waiting room off now lets nobody in unseen.
    teacher.send(json!({"t":"waiting_room","id":3,"on":false})).await;
    teacher.recv_type("ok").await;
    stranger.send(json!({"t":"ping","id":1})).await;
    assert_eq!(stranger.recv_type("waiting").await["t"], "waiting", "still waiting for the teacher");
}

/// The teacher turns the waiting room on, and it is on.
async fn waiting_room_on(teacher: &mut Raw) {
    teacher.send(json!({"t":"waiting_room","id":1,"on":true})).await;
    teacher.recv_type("ok").await;
}
