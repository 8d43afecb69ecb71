//! Guessing the join code (issue 15, finding 3; docs/PROTOCOL-ADDITIONS.md, G). Wrong codes from one
//! address never keep out a resume token or the teacher key, nor a classmate with the right code
//! (who waits for the teacher instead); the room checks only so many wrong codes an hour whatever
//! the addresses; the teacher is told, and a new code in one tap shuts the old one out.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use common::{CODE, Raw, TestServer, device};
use serde_json::{Value, json};

async fn code_hello(server: &TestServer, code: &str, name: &str, device: &str) -> Raw {
    let mut raw = server.raw().await;
    raw.send(json!({"t":"hello","v":1,"role":"student","code":code,"name":name,"device":device})).await;
    raw
}

fn wrong(code: &str) -> String {
    code.chars().map(|c| if c == '9' { '0' } else { '9' }).collect()
}

#[tokio::test]
async fn wrong_codes_from_one_address_never_keep_out_a_token_the_key_or_a_classmate_with_the_code() {
    let server = TestServer::with(|limits, _| limits.failed_hellos_per_minute = 3).await;
    let (mut teacher, _) = server.teacher().await;
    let (_, welcome) = server.student("Aisha", &device(1)).await;
    let token = welcome["token"].as_str().unwrap().to_string();
    // A guesser on the same address (a school's NAT) tries wrong codes until the address is over.
    for n in 0..4 {
        let mut guess = code_hello(&server, &wrong(CODE), "Guess", &device(100 + n)).await;
        assert_eq!(guess.close_code().await, 4001);
    }
    // A classmate with the right code is not refused: the code is not checked now (right or
    // wrong), so the classmate waits for the teacher, who lets them in.
    let mut classmate = code_hello(&server, CODE, "Yusuf", &device(2)).await;
    assert_eq!(classmate.recv_type("waiting").await["t"], "waiting");
    let list = teacher.recv_type("knocks").await;
    let id = list["knocks"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(list["knocks"][0]["name"], "Yusuf");
    teacher.send(json!({"t":"admit","id":5,"knocks":[id]})).await;
    assert_eq!(classmate.recv_type("welcome").await["you"]["name"], "Yusuf");
    // A resume token and the teacher key from the same address are let in at once.
    let mut back = server.raw().await;
    back.send(json!({"t":"hello","v":1,"role":"student","resume":token,"device":device(1)})).await;
    assert_eq!(back.recv_type("welcome").await["you"]["name"], "Aisha");
    let (_, teacher_again) = server.teacher().await;
    assert_eq!(teacher_again["you"]["role"], "teacher");
}

#[tokio::test]
async fn the_room_checks_few_wrong_codes_whatever_the_addresses_and_tells_the_teacher() {
    // A 4-digit code: the room checks at most 10 wrong codes an hour (one in a thousand of the codes).
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::test_config(dir.path(), Default::default(), Default::default());
    config.code = Some("4821".into());
    let server = TestServer::from_config(dir, config, "127.0.0.1:0").await;
    let (mut teacher, _) = server.teacher().await;
    let mut guess = code_hello(&server, "1111", "Guess", &device(100)).await;
    assert_eq!(guess.close_code().await, 4001, "the first wrong code is checked");
    let alert = teacher.recv_type("guessing").await;
    assert_eq!((alert["wrong"].as_u64(), alert["waiting_room"].as_bool()), (Some(1), Some(true)));
    // The budget is spent: even the right code, from anyone, now waits for the teacher.
    let mut right = code_hello(&server, "4821", "Maryam", &device(2)).await;
    assert_eq!(right.recv_type("waiting").await["t"], "waiting");
    let mut again = code_hello(&server, "2222", "Guess", &device(101)).await;
    assert_eq!(again.recv_type("waiting").await["t"], "waiting", "a wrong code is not even checked");
}

#[tokio::test]
async fn a_new_code_in_one_tap_shuts_the_old_one_out_and_keeps_the_class() {
    let server = TestServer::start().await;
    let (mut teacher, _) = server.teacher().await;
    let (mut student, _) = server.student("Idris", &device(1)).await;
    teacher.send(json!({"t":"new_code","id":9})).await;
    let ok: Value = teacher.recv_type("ok").await;
    assert_eq!(ok["id"], 9);
    let code = server.app().room().code();
    assert_ne!(code, CODE);
    assert_eq!(code.len(), CODE.len());
    let mut old = code_hello(&server, CODE, "Late", &device(2)).await;
    assert_eq!(old.close_code().await, 4001, "the old code lets no one in");
    let mut new = code_hello(&server, &code, "Late", &device(2)).await;
    assert_eq!(new.recv_type("welcome").await["you"]["name"], "Late");
    // The student already in stays and follows.
    teacher.send(json!({"t":"set","id":10,"patch":{"page":3}})).await;
    while student.recv_type("patch").await["patch"]["page"] != 3 {}
    // A student cannot change the code.
    student.send(json!({"t":"new_code","id":11})).await;
    assert_eq!(student.recv_type("error").await["code"], "forbidden");
}
