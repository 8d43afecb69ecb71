//! What the relay tests share: a teacher's server bridged to Redis, relays, remote students, and
//! waiting for what they show.

use std::net::IpAddr;

use lectern::client::{Client, ClientOptions, Credentials, Event, RelayTrust};
use lectern::config::{Limits, Timing};
use lectern::protocol::LessonState;
use lectern::relay::serve::{Relay, RelayConfig};
use lectern::tls::Identity;
use serde_json::{Value, json};

use super::redis::RedisServer;
use super::{CODE, PATIENCE, Raw, TestServer, test_config};

/// A teacher's server bridged to `redis`.
pub async fn bridged(redis: &RedisServer) -> TestServer {
    bridged_to(redis.url(), redis.ca()).await
}

/// A teacher's server bridged to the Redis at `url`.
pub async fn bridged_to(url: String, ca: Option<std::path::PathBuf>) -> TestServer {
    bridged_with(url, ca, Limits::default()).await
}

/// A teacher's server bridged to the Redis at `url`, with these limits.
pub async fn bridged_with(url: String, ca: Option<std::path::PathBuf>, limits: Limits) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), limits, Timing::default());
    config.redis = Some(url);
    config.redis_ca = ca;
    TestServer::from_config(dir, config, "127.0.0.1:0").await
}

/// A relay on loopback with a self-signed certificate: its address and fingerprint.
pub async fn relay(redis: &RedisServer) -> (Relay, String, String) {
    relay_with(redis, Identity::generate(&["localhost".into()], &[IpAddr::from([127, 0, 0, 1])]).unwrap())
        .await
}

/// A relay with this certificate (relays behind one load balancer share theirs).
pub async fn relay_with(redis: &RedisServer, identity: Identity) -> (Relay, String, String) {
    relay_to(redis.url(), redis.ca(), identity).await
}

/// A relay on the Redis at `url`, with this certificate.
pub async fn relay_to(
    url: String,
    ca: Option<std::path::PathBuf>,
    identity: Identity,
) -> (Relay, String, String) {
    relay_limited(url, ca, identity, Limits::default()).await
}

/// A relay on the Redis at `url`, with this certificate and these limits.
pub async fn relay_limited(
    url: String,
    ca: Option<std::path::PathBuf>,
    identity: Identity,
    limits: Limits,
) -> (Relay, String, String) {
    relay_proxied_to(url, ca, identity, limits, lectern::transport::proxy::TrustedProxies::default()).await
}

/// A relay behind the load balancers `proxies`, which name their clients in PROXY headers.
pub async fn relay_proxied(
    url: String,
    identity: Identity,
    limits: Limits,
    proxies: lectern::transport::proxy::TrustedProxies,
) -> (Relay, String, String) {
    relay_proxied_to(url, None, identity, limits, proxies).await
}

async fn relay_proxied_to(
    url: String,
    ca: Option<std::path::PathBuf>,
    identity: Identity,
    limits: Limits,
    proxy_from: lectern::transport::proxy::TrustedProxies,
) -> (Relay, String, String) {
    let fingerprint = identity.fingerprint();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = RelayConfig {
        redis: url,
        redis_ca: ca,
        identity,
        limits,
        timing: Timing::default(),
        alive: std::time::Duration::from_secs(2),
        proxy_from,
        acme: None,
    };
    let relay = Relay::start(config, listener).unwrap();
    let ws = format!("wss://127.0.0.1:{}/v1/ws", relay.addr().port());
    (relay, ws, fingerprint)
}

/// A remote student's client: behind the relay at `ws`, checking against the teacher's key.
pub fn remote_student(server: &TestServer, ws: &str, fingerprint: &str, name: &str) -> Client {
    let pk = lectern::files::load_signer(server.dir.path()).unwrap().public();
    let room = server.handle.as_ref().unwrap().ready().room.clone();
    let credentials = Credentials::Student { code: CODE.into(), name: name.into() };
    let mut options = ClientOptions::new(ws, fingerprint, credentials, format!("remote-{name}-device"));
    options.relay = Some(RelayTrust { room, pk });
    Client::start(options)
}

/// Polls the teacher's roster (a second console's welcome) until an entry satisfies `want`.
pub async fn on_roster(server: &TestServer, want: impl Fn(&Value) -> bool) -> Value {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let mut raw = server.raw().await;
            raw.send(
                json!({"t":"hello","v":1,"role":"teacher","key":server.teacher_key,"device":"roster-poller"}),
            )
            .await;
            let welcome = raw.recv_type("welcome").await;
            if let Some(e) = welcome["roster"].as_array().unwrap().iter().find(|e| want(e)) {
                return e.clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await; // polled, not waited out
        }
    })
    .await
    .expect("on the roster in time")
}

/// The attendance of the running lesson, as the teacher downloads it.
pub async fn attendance(server: &TestServer) -> String {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let bearer = format!("Bearer {}", server.teacher_key);
    let get = |uri: String| {
        axum::http::Request::get(uri)
            .header("authorization", bearer.clone())
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let router = || lectern::server::http::router(server.app().clone());
    let body =
        router().oneshot(get("/v1/lessons".into())).await.unwrap().into_body().collect().await.unwrap();
    let lessons: Value = serde_json::from_slice(&body.to_bytes()).unwrap();
    let id = lessons["lessons"][0]["id"].as_i64().unwrap();
    let res = router().oneshot(get(format!("/v1/lessons/{id}/attendance.csv"))).await.unwrap();
    String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

/// Waits for the client's state to satisfy `want`.
pub async fn state_where(client: &mut Client, want: impl Fn(&LessonState) -> bool) -> (u64, LessonState) {
    tokio::time::timeout(PATIENCE, async {
        loop {
            match client.next_event().await {
                Some(Event::State { seq, state, .. }) if want(&state) => return (seq, *state),
                Some(Event::Stopped { code, reason }) => panic!("stopped: {code:?} {reason}"),
                Some(_) => {}
                None => panic!("the client ended"),
            }
        }
    })
    .await
    .expect("the state in time")
}

/// The teacher's newest roster entry for a remote student whose entry satisfies `want`.
pub async fn roster_where(teacher: &mut Raw, want: impl Fn(&Value) -> bool) -> Value {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let roster = teacher.recv_type("roster").await;
            if let Some(e) = roster["changes"].as_array().unwrap().iter().find(|e| want(e)) {
                return e.clone();
            }
        }
    })
    .await
    .expect("the roster in time")
}

/// Says a student's `hello` with `code` to a relay from 127.0.0.`host`; the welcome, or the close
/// code (a knock's `waiting` is not an answer: it waits on).
pub async fn relay_hello(
    host: u8,
    ws: &str,
    fingerprint: &str,
    room: &str,
    code: &str,
    device: &str,
) -> Result<Value, u16> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let mut raw = Raw { ws: super::connect_from(host, ws, fingerprint).await };
    raw.send(
        json!({"t":"hello","v":1,"role":"student","code":code,"name":"Remote","device":device,"room":room}),
    )
    .await;
    let end = tokio::time::timeout(PATIENCE, async {
        loop {
            match raw.ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if v["t"] == "welcome" {
                        return Ok(v);
                    }
                }
                Some(Ok(Message::Close(Some(c)))) => return Err(u16::from(c.code)),
                Some(Ok(_)) => {}
                other => panic!("the relay dropped the connection: {other:?}"),
            }
        }
    });
    end.await.expect("an answer in time")
}
