//! The fallback transport (issue 15; docs/PROTOCOL-ADDITIONS.md, I): server-sent events and POSTs
//! carry the same frames as the WebSocket, with the same rules, for networks that break WebSockets.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use axum::body::Bytes;
use common::{CODE, TestServer, device};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use lectern::client::fetch::request;
use serde_json::{Value, json};

/// An open event stream: the frames as they come.
struct Events {
    body: hyper::body::Incoming,
    buf: String,
    _driver: tokio::task::JoinHandle<()>,
}

impl Events {
    async fn open(server: &TestServer, link: &str) -> Events {
        let url = format!("https://127.0.0.1:{}/v1/sse", server.port());
        let tls = lectern::client::tls(&url, &server.fingerprint).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
        let driver = tokio::spawn(async move {
            conn.await.ok();
        });
        let req = Request::get("/v1/sse")
            .header("host", "127.0.0.1")
            .header("authorization", format!("Bearer {link}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let res = sender.send_request(req).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        Events { body: res.into_body(), buf: String::new(), _driver: driver }
    }

    /// The next event: `("message", frame)` or `("close", {code, reason})`.
    async fn next(&mut self) -> (String, Value) {
        tokio::time::timeout(common::PATIENCE, async {
            loop {
                if let Some(end) = self.buf.find("\n\n") {
                    let event: String = self.buf.drain(..end + 2).collect();
                    let mut kind = "message".to_string();
                    let mut data = String::new();
                    for line in event.lines() {
                        if let Some(k) = line.strip_prefix("event: ") {
                            kind = k.to_string();
                        } else if let Some(d) = line.strip_prefix("data: ") {
                            data.push_str(d);
                        }
                    }
                    return (kind, serde_json::from_str(&data).unwrap());
                }
                let frame = self.body.frame().await.expect("the stream goes on").unwrap();
                if let Ok(data) = frame.into_data() {
                    self.buf.push_str(std::str::from_utf8(&data).unwrap());
                }
            }
        })
        .await
        .expect("an event in time")
    }

    /// Skips events until a frame of type `t`.
    async fn frame(&mut self, t: &str) -> Value {
        loop {
            let (kind, v) = self.next().await;
            assert_eq!(kind, "message", "closed while waiting for {t}: {v}");
            if v["t"] == t {
                return v;
            }
        }
    }
}

async fn open_link(server: &TestServer, hello: Value) -> String {
    let url = format!("https://127.0.0.1:{}/v1/sse", server.port());
    let answer =
        request("POST", &url, &server.fingerprint, None, Some(hello.to_string().into())).await.unwrap();
    assert_eq!(answer.status, 201, "{}", String::from_utf8_lossy(&answer.body));
    let v: Value = serde_json::from_slice(&answer.body).unwrap();
    v["link"].as_str().unwrap().to_string()
}

async fn post(server: &TestServer, link: &str, frames: &[Value]) -> u16 {
    let url = format!("https://127.0.0.1:{}/v1/sse/send", server.port());
    let body: Vec<String> = frames.iter().map(Value::to_string).collect();
    request("POST", &url, &server.fingerprint, Some(link), Some(body.join("\n").into())).await.unwrap().status
}

fn student_hello(name: &str, n: usize) -> Value {
    json!({"t":"hello","v":1,"role":"student","code":CODE,"name":name,"device":device(n)})
}

#[tokio::test]
async fn a_student_on_the_fallback_follows_the_lesson_and_talks_back() {
    let server = TestServer::start().await;
    let (mut teacher, _) = server.teacher().await;
    let link = open_link(&server, student_hello("Hafsa", 1)).await;
    let mut events = Events::open(&server, &link).await;
    let welcome = events.frame("welcome").await;
    assert_eq!(welcome["you"]["name"], "Hafsa");

    // The teacher turns the page: it arrives as an event.
    teacher.send(json!({"t":"set","id":1,"patch":{"page":1,"pos":{"x":0.25,"y":0.5}}})).await;
    let patch = events.frame("patch").await;
    assert_eq!(patch["patch"]["pos"]["x"], 0.25);

    // Frames posted arrive in order: a hand goes up, a ping is answered on the stream.
    assert_eq!(post(&server, &link, &[json!({"t":"hand","up":true}), json!({"t":"ping","id":7})]).await, 204);
    assert_eq!(events.frame("pong").await["id"], 7);
    let roster =
        common::remote::roster_where(&mut teacher, |e| e["name"] == "Hafsa" && e["hand"] == true).await;
    assert_eq!(roster["online"], true);

    // A student may not send teacher commands this way either.
    assert_eq!(post(&server, &link, &[json!({"t":"end","id":9})]).await, 204);
    let err = events.frame("error").await;
    assert_eq!((err["id"].as_u64(), err["code"].as_str()), (Some(9), Some("forbidden")));
}

#[tokio::test]
async fn a_broken_event_stream_is_picked_up_again_and_nothing_is_lost() {
    let server = TestServer::start().await;
    let (mut teacher, _) = server.teacher().await;
    let link = open_link(&server, student_hello("Bilal", 2)).await;
    let mut events = Events::open(&server, &link).await;
    events.frame("welcome").await;
    drop(events); // a proxy cut the long response
    teacher.send(json!({"t":"set","id":1,"patch":{"notice":"while away"}})).await;
    teacher.recv_type("ok").await;
    let mut events = Events::open(&server, &link).await;
    assert_eq!(events.frame("patch").await["patch"]["notice"], "while away");
}

#[tokio::test]
async fn refusals_arrive_as_a_close_event_with_the_websockets_code() {
    let server = TestServer::start().await;
    let hello = json!({"t":"hello","v":1,"role":"student","code":"000000","name":"Guess","device":device(3)});
    let link = open_link(&server, hello).await;
    let mut events = Events::open(&server, &link).await;
    let (kind, close) = events.next().await;
    assert_eq!((kind.as_str(), close["code"].as_u64()), ("close", Some(4001)));
    // The link is gone with it.
    assert_eq!(post(&server, &link, &[json!({"t":"ping"})]).await, 404);
    // A forged link is no link.
    assert_eq!(post(&server, &"0".repeat(64), &[json!({"t":"ping"})]).await, 404);
}

#[tokio::test]
async fn a_teacher_removal_closes_a_fallback_student_with_4003() {
    let server = TestServer::start().await;
    let (mut teacher, _) = server.teacher().await;
    let link = open_link(&server, student_hello("Zaid", 4)).await;
    let mut events = Events::open(&server, &link).await;
    let id = events.frame("welcome").await["you"]["id"].as_str().unwrap().to_string();
    teacher.send(json!({"t":"kick","id":2,"who":id})).await;
    loop {
        let (kind, v) = events.next().await;
        if kind == "close" {
            assert_eq!(v["code"], 4003);
            break;
        }
    }
}

#[tokio::test]
async fn refused_links_stop_counting_at_once_so_strangers_cannot_fill_the_table() {
    // (The address's budget of failed hellos is raised: it is not what this test is about.)
    let server = TestServer::with(|limits, _| {
        limits.failed_hellos_per_minute = 1000;
        limits.max_students_per_address = 8;
    })
    .await;
    // More refused hellos from one address than it may hold links (8 here), fewer than the refused
    // opens it may make in a minute (20): each is closed by the lesson at once, and a closed link no
    // longer counts.
    for n in 0..12 {
        let link = open_link(
            &server,
            json!({"t":"hello","v":1,"role":"student","code":"000000","name":"X","device":device(300 + n)}),
        )
        .await;
        drop(link);
    }
    let link = open_link(&server, student_hello("Honest", 9)).await;
    let mut events = Events::open(&server, &link).await;
    assert_eq!(events.frame("welcome").await["you"]["name"], "Honest");
}
