//! Protects §10's table: every close code the server uses is provoked here and observed by a real client,
//! because clients decide to stop, retry or ask the user again from these codes alone.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use std::time::Duration;

use common::{CODE, End, TestServer, device};
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn a_normal_close_is_answered_with_1000() {
    let server = TestServer::start().await;
    let (mut s, _) = server.student("A", &device(1)).await;
    s.ws.send(Message::Close(Some(CloseFrame { code: CloseCode::Normal, reason: "bye".into() })))
        .await
        .unwrap();
    assert_eq!(s.close_code().await, 1000);
}

#[tokio::test]
async fn a_binary_frame_closes_1003() {
    let server = TestServer::start().await;
    let (mut s, _) = server.student("A", &device(1)).await;
    s.ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(s.close_code().await, 1003);
}

#[tokio::test]
async fn a_frame_over_16_kib_closes_1009() {
    let server = TestServer::start().await;
    let (mut s, _) = server.student("A", &device(1)).await;
    let big = format!(r#"{{"t":"ping","pad":"{}"}}"#, "x".repeat(17 * 1024));
    s.send_text(&big).await;
    assert_eq!(s.close_code().await, 1009);
    // And before hello too.
    let mut raw = server.raw().await;
    raw.send_text(&big).await;
    assert_eq!(raw.close_code().await, 1009);
}

#[tokio::test]
async fn ending_the_lesson_sends_ended_then_closes_everyone_with_4000() {
    let server = TestServer::start().await;
    let (mut s, _) = server.student("A", &device(1)).await;
    let (mut t, _) = server.teacher().await;
    t.send(json!({"t":"end","id":10})).await;
    let (end, frames) = s.until_end().await;
    assert_eq!(end, End::Close(4000, "the lesson has ended".into()));
    let ended = frames.iter().find(|f| f["t"] == "patch").expect("the ended patch before the close");
    assert_eq!(ended["patch"], json!({"ended": true}));
    let (end, frames) = t.until_end().await;
    assert!(matches!(end, End::Close(4000, _)));
    assert!(frames.iter().any(|f| f["t"] == "ok" && f["id"] == 10));
    // Nobody can join an ended lesson.
    let mut late = server.raw().await;
    late.send(json!({"t":"hello","v":1,"role":"student","code":CODE,"name":"B","device":device(2)})).await;
    assert_eq!(late.close_code().await, 4000);
}

#[tokio::test]
async fn a_wrong_code_key_or_token_closes_4001() {
    let server = TestServer::start().await;
    for hello in [
        json!({"t":"hello","v":1,"role":"student","code":"000000","name":"A","device":device(1)}),
        json!({"t":"hello","v":1,"role":"teacher","key":"not-the-key","device":device(2)}),
        json!({"t":"hello","v":1,"role":"student","resume":"eyJyIjoiciJ9.AAAA","device":device(3)}),
    ] {
        let mut raw = server.raw().await;
        raw.send(hello).await;
        assert_eq!(raw.close_code().await, 4001);
    }
}

#[tokio::test]
async fn a_kicked_student_is_closed_4003_and_cannot_come_back() {
    let server = TestServer::start().await;
    let (mut s, welcome) = server.student("A", &device(1)).await;
    let pid = welcome["you"]["id"].as_str().unwrap().to_string();
    let token = welcome["token"].as_str().unwrap().to_string();
    let (mut t, _) = server.teacher().await;
    t.send(json!({"t":"kick","id":9,"who":pid})).await;
    assert_eq!(s.close_code().await, 4003);
    assert_eq!(t.recv_type("ok").await["id"], 9);
    // The token is revoked...
    let mut again = server.raw().await;
    again.send(json!({"t":"hello","v":1,"role":"student","resume":token,"device":device(1)})).await;
    assert_eq!(again.close_code().await, 4001);
    // ...and the device may not rejoin with the code.
    let mut again = server.raw().await;
    again.send(json!({"t":"hello","v":1,"role":"student","code":CODE,"name":"A","device":device(1)})).await;
    assert_eq!(again.close_code().await, 4003);
    // Kicking someone unknown is not_found.
    t.send(json!({"t":"kick","id":11,"who":"p-nobody"})).await;
    assert_eq!(t.recv_type("error").await["code"], "not_found");
}

#[tokio::test]
async fn no_hello_in_time_closes_4008() {
    let server = TestServer::with(|_, t| t.hello_timeout = Duration::from_millis(300)).await;
    let mut raw = server.raw().await;
    assert_eq!(raw.close_code().await, 4008);
}

#[tokio::test]
async fn students_over_the_class_size_close_4029() {
    let server = TestServer::with(|l, _| l.max_participants = 1).await;
    let _first = server.student("A", &device(1)).await;
    let mut raw = server.raw().await;
    raw.send(json!({"t":"hello","v":1,"role":"student","code":CODE,"name":"B","device":device(2)})).await;
    assert_eq!(raw.close_code().await, 4029);
    // (Wrong codes no longer close 4029: past a quota, a code claim waits for the teacher instead;
    // tests/guessing.rs.)
}

#[tokio::test]
async fn protocol_violations_close_4400() {
    let server = TestServer::start().await;
    // Not JSON, before hello.
    let mut raw = server.raw().await;
    raw.send_text("hello?").await;
    assert_eq!(raw.close_code().await, 4400);
    // A first frame that is not hello.
    let mut raw = server.raw().await;
    raw.send(json!({"t":"ping","id":1})).await;
    assert_eq!(raw.close_code().await, 4400);
    // A malformed hello field: error bad_request, then 4400.
    let mut raw = server.raw().await;
    raw.send(json!({"t":"hello","v":1,"role":"student","code":CODE,"name":"A","device":"short"})).await;
    let (end, frames) = raw.until_end().await;
    assert_eq!(frames[0]["code"], "bad_request");
    assert!(matches!(end, End::Close(4400, _)));
    let mut raw = server.raw().await;
    raw.send(json!({"t":"hello","v":1,"role":"student","code":CODE,"name":"   ","device":device(1)})).await;
    let (end, frames) = raw.until_end().await;
    assert_eq!(frames[0]["code"], "bad_request");
    assert!(matches!(end, End::Close(4400, _)));
    // Not JSON after hello.
    let (mut s, _) = server.student("A", &device(2)).await;
    s.send_text("{\"t\":").await;
    assert_eq!(s.close_code().await, 4400);
}

#[tokio::test]
async fn an_unknown_type_after_hello_is_bad_request_and_the_connection_stays() {
    let server = TestServer::start().await;
    let (mut s, _) = server.student("A", &device(1)).await;
    s.send(json!({"t":"dance","id":7})).await;
    let err = s.recv_type("error").await;
    assert_eq!((err["code"].as_str(), err["id"].as_u64()), (Some("bad_request"), Some(7)));
    s.send(json!({"t":"ping","id":8})).await;
    assert_eq!(s.recv_type("pong").await["id"], 8);
}

#[tokio::test]
async fn the_same_participant_resuming_again_closes_the_older_connection_4409() {
    let server = TestServer::start().await;
    let (mut first, w1) = server.student("A", &device(1)).await;
    let mut second = server.raw().await;
    second.send(json!({"t":"hello","v":1,"role":"student","resume":w1["token"],"device":device(1)})).await;
    let w2 = second.recv_type("welcome").await;
    assert_eq!(first.close_code().await, 4409);
    assert_eq!(w1["you"]["id"], w2["you"]["id"], "the token is the same participant");
}

#[tokio::test]
async fn an_unsupported_version_closes_4426() {
    let server = TestServer::start().await;
    let mut raw = server.raw().await;
    raw.send(json!({"t":"hello","v":2,"role":"student","code":CODE,"name":"A","device":device(1)})).await;
    assert_eq!(raw.close_code().await, 4426);
}

#[tokio::test]
async fn shutdown_closes_every_connection_with_4503() {
    let server = TestServer::start().await;
    let (mut s, _) = server.student("A", &device(1)).await;
    let (mut t, _) = server.teacher().await;
    let mut pending = server.raw().await;
    let stopping = tokio::spawn(server.stop());
    assert_eq!(s.close_code().await, 4503);
    assert_eq!(t.close_code().await, 4503);
    assert_eq!(pending.close_code().await, 4503, "even before hello");
    stopping.await.unwrap();
}

#[tokio::test]
async fn a_full_room_refuses_with_4029() {
    let server = TestServer::with(|l, _| l.max_participants = 2).await;
    let _a = server.student("A", &device(1)).await;
    let _b = server.student("B", &device(2)).await;
    let mut c = server.raw().await;
    c.send(json!({"t":"hello","v":1,"role":"student","code":CODE,"name":"C","device":device(3)})).await;
    assert_eq!(c.close_code().await, 4029);
    // The teacher is not counted.
    let _t = server.teacher().await;
}

/// A frame that breaks the WebSocket protocol itself, written under the client library.
async fn write_raw(raw: &mut common::Raw, bytes: &[u8]) {
    use tokio::io::AsyncWriteExt;
    let stream = raw.ws.get_mut();
    stream.write_all(bytes).await.unwrap();
    stream.flush().await.unwrap();
}

#[tokio::test]
async fn websocket_protocol_violations_close_4400_instead_of_dropping_the_line() {
    let server = TestServer::start().await;
    let mut oversized_ping = vec![0x89, 0x80 | 126, 0, 126, 0, 0, 0, 0];
    oversized_ping.extend([b'x'; 126]);
    let violations: [(&str, Vec<u8>); 3] = [
        ("an unmasked frame", vec![0x81, 0x05, b'h', b'e', b'l', b'l', b'o']),
        ("a control frame over 125 bytes", oversized_ping),
        ("text that is not UTF-8", vec![0x81, 0x82, 0, 0, 0, 0, 0xff, 0xfe]),
    ];
    for (n, (what, bytes)) in violations.iter().enumerate() {
        let (mut s, _) = server.student("A", &device(n)).await;
        write_raw(&mut s, bytes).await;
        assert_eq!(s.close_code().await, 4400, "{what}, after hello");
    }
    // Before hello too.
    let mut raw = server.raw().await;
    write_raw(&mut raw, &violations[0].1).await;
    assert_eq!(raw.close_code().await, 4400, "an unmasked frame before hello");
}

#[tokio::test]
async fn a_students_token_in_a_teachers_hello_is_refused_and_cannot_take_the_teachers_name() {
    let server = TestServer::start().await;
    let (_s, welcome) = server.student("Bored", &device(1)).await;
    let token = welcome["token"].as_str().unwrap();
    let mut raw = server.raw().await;
    raw.send(json!({"t":"hello","v":1,"role":"teacher","resume":token,"name":"Teacher","device":device(1)}))
        .await;
    assert_eq!(raw.close_code().await, 4400, "a student's token is no teacher's");
    let mut raw = server.raw().await;
    raw.send(json!({"t":"hello","v":1,"role":"student","resume":token,"name":"Teacher","device":device(1)}))
        .await;
    let welcome = raw.recv_type("welcome").await;
    assert_eq!(welcome["you"]["name"], "Bored", "nor does a resume let a student take the teacher's name");
}

/// Issue 22, finding 5: look-alikes of the teacher's titles, and of the name the teacher goes by,
/// are refused (4400, with the reason), and so are names of nothing visible or of private-use
/// characters.
#[tokio::test]
async fn names_that_pass_for_the_teacher_or_show_nothing_are_refused() {
    let server = TestServer::start().await;
    let mut teacher = server.raw().await;
    let key = server.teacher_key.clone();
    teacher.send(json!({"t":"hello","v":1,"role":"teacher","key":key,"name":"Ustadh Karim","device":"teacher-device"})).await;
    teacher.recv_type("welcome").await;
    let names = [
        "ᴛᴇᴀᴄʜᴇʀ",
        "Teacher 2",
        "Mr Teacher",
        "Sheikh",
        "الشيخ",
        "الأستاذة",
        "معلمة",
        "المدرس",
        "Ustadh Кarim",
        "\u{1BCA0}\u{13437}",
        "Ali\u{E000}",
    ];
    for (n, name) in names.iter().enumerate() {
        let mut raw = server.raw().await;
        raw.send(json!({"t":"hello","v":1,"role":"student","code":CODE,"name":name,"device":device(20 + n)}))
            .await;
        let (end, frames) = raw.until_end().await;
        assert!(matches!(end, End::Close(4400, _)), "{name:?} was let in: {end:?}");
        assert_eq!(frames.first().map(|f| f["code"].clone()), Some(json!("bad_request")), "{name:?}");
    }
    let (_, welcome) = server.student("Karima", &device(40)).await;
    assert_eq!(welcome["you"]["name"], "Karima", "a name like, but not, the teacher's is fine");
}
