//! The client's session task: connect with the pin, say hello (or resume), follow the lesson, reconnect
//! with backoff when the link dies, and keep what the user does while offline (§5 to §7).

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::apply::{Link, Offline, Session, frame, on_frame};
use super::connect::{ConnectError, Socket, connect};
use super::second::SecondPath;
use super::trust::RelayCheck;
use super::types::{ClientOptions, Command, Credentials, Event, RequestError};
use crate::protocol::{ClientMsg, Hello, Role, ServerMsg, VERSION, close};

enum Outcome {
    Retry(Option<u16>, String),
    Stop(Option<u16>, String),
    BadResume,
    Closed,
}

/// Longest a TCP connect, TLS handshake and WebSocket upgrade may take together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait before reconnection attempt `attempt` (0: at once), with jitter so a class of 30
/// does not reconnect in lock-step.
pub(crate) fn backoff(attempt: u32, max: Duration) -> Duration {
    if attempt == 0 {
        return Duration::ZERO;
    }
    let base = Duration::from_millis(250).saturating_mul(1 << attempt.min(6).saturating_sub(1)).min(max);
    base.mul_f64(rand::random_range(0.5..=1.0))
}

/// Runs a client until it is closed or stops for good.
pub(crate) async fn run(
    options: ClientOptions,
    mut rx: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<Event>,
) {
    let relay = options.relay.as_ref().and_then(|r| RelayCheck::new(&r.pk, &r.room));
    // A relay with no key to check it against would be trusted whole: never follow one.
    if options.relay.is_some() && relay.is_none() {
        let reason =
            "the link's key for checking the relay is not a key (pk=…): ask for the link again".into();
        let _ = events.send(Event::Stopped { code: None, reason }).await;
        return;
    }
    let mut session =
        Session { token: None, seq: 0, state: None, offline: Offline::default(), relay, epoch: None };
    let mut attempt = 0u32;
    loop {
        // On dead Wi-Fi a connect can hang for minutes; bound it so the backoff stays meaningful.
        let connecting = tokio::time::timeout(CONNECT_TIMEOUT, connect(&options.url, &options.fingerprint));
        tokio::pin!(connecting);
        let connected = loop {
            tokio::select! {
                c = &mut connecting => break c.unwrap_or(Err(ConnectError::Timeout)),
                cmd = rx.recv() => match cmd {
                    None | Some(Command::Close) => return,
                    Some(cmd) => offline(cmd, &mut session.offline),
                },
            }
        };
        let outcome = match connected {
            Ok(ws) => live(ws, &options, &mut session, &mut rx, &events, &mut attempt).await,
            Err(e) if e.is_final() => Outcome::Stop(None, e.to_string()),
            Err(e) => Outcome::Retry(None, e.to_string()),
        };
        let wait = match outcome {
            Outcome::Closed => return,
            Outcome::Stop(code, reason) => {
                let _ = events.send(Event::Stopped { code, reason }).await;
                return;
            }
            Outcome::BadResume => {
                session.token = None;
                Duration::ZERO
            }
            Outcome::Retry(code, reason) => {
                let _ = events.send(Event::Disconnected { code, reason }).await;
                let mut wait = backoff(attempt, options.max_backoff);
                if code == Some(close::RATE_LIMITED) {
                    wait = wait.max(Duration::from_secs(1));
                }
                attempt += 1;
                wait
            }
        };
        // While waiting, keep what the user does for later, and fail requests at once.
        let sleep = tokio::time::sleep(wait);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                cmd = rx.recv() => match cmd {
                    None | Some(Command::Close) => return,
                    Some(cmd) => offline(cmd, &mut session.offline),
                },
            }
        }
    }
}

fn offline(cmd: Command, o: &mut Offline) {
    match cmd {
        Command::Request { reply, .. } => {
            let _ = reply.send(Err(RequestError::Offline));
        }
        Command::Ack(seq) => o.ack = Some(seq.max(o.ack.unwrap_or(0))),
        Command::Hand(up) => o.hand = Some(up),
        Command::View(page) => o.view = Some(page),
        Command::Resync | Command::Close => {}
    }
}

/// The `hello` for this client: a resume when it has a token, else the code or key.
fn hello(options: &ClientOptions, token: Option<&String>) -> ClientMsg {
    let mut hello = Hello {
        v: Some(VERSION.into()),
        device: Some(options.device.clone()),
        resume: token.cloned(),
        room: options.relay.as_ref().map(|r| r.room.clone()),
        partial_sync: true,
        ..Hello::default()
    };
    match &options.credentials {
        Credentials::Student { code, name } => {
            hello.role = Some("student".into());
            if token.is_none() {
                hello.code = Some(code.clone());
                hello.name = Some(name.clone());
            }
        }
        Credentials::Knock { name } => {
            hello.role = Some("student".into());
            if token.is_none() {
                hello.knock = true;
                hello.name = Some(name.clone());
            }
        }
        Credentials::Teacher { key } => {
            hello.role = Some("teacher".into());
            if token.is_none() {
                hello.key = Some(key.clone());
            }
        }
    }
    ClientMsg::Hello(hello)
}

async fn live(
    mut ws: Socket,
    options: &ClientOptions,
    s: &mut Session,
    rx: &mut mpsc::UnboundedReceiver<Command>,
    events: &mpsc::Sender<Event>,
    attempt: &mut u32,
) -> Outcome {
    if let Err(e) = ws.send(frame(&hello(options, s.token.as_ref()))).await {
        return Outcome::Retry(None, format!("sending hello: {e}"));
    }
    let heartbeat = Duration::from_secs(10);
    let mut link = Link {
        resumed: s.token.is_some(),
        welcomed: false,
        heartbeat,
        pending: HashMap::new(),
        next_id: 1,
        ping_outstanding: None,
        ping: tokio::time::interval(heartbeat),
        acked: 0,
        want_ack: None,
        resync_sent: false,
        waiting_until: None,
        heard: false,
    };
    let mut ack_tick = tokio::time::interval(Duration::from_millis(100));
    let mut second = SecondPath::new();
    let welcome_deadline = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(welcome_deadline);

    let outcome = loop {
        tokio::select! {
            _ = &mut welcome_deadline, if !link.welcomed => break Outcome::Retry(None, "no welcome in time".into()),
            msg = ws.next() => {
                let msg = match msg {
                    None => break Outcome::Retry(None, "connection closed".into()),
                    Some(Err(e)) => break Outcome::Retry(None, e.to_string()),
                    Some(Ok(m)) => m,
                };
                link.heard = true;
                let body = match msg {
                    Message::Text(t) => t,
                    Message::Close(close_frame) => break closed(close_frame, link.resumed),
                    _ => continue,
                };
                let Ok(msg) = serde_json::from_str::<ServerMsg>(&body) else { continue };
                // With a second path, a change or snapshot it brought first comes again here: dropped
                // unread (an older snapshot is a copy, not a replay), and a resync's answer that the
                // other path made needless ends the wait for it.
                if second.open() && SecondPath::is_copy(&msg, s) {
                    if matches!(msg, ServerMsg::Sync { .. }) {
                        link.resync_sent = false;
                    }
                    continue;
                }
                let offers = matches!(&msg, ServerMsg::Welcome { second: true, you, .. } if you.role == Role::Student);
                if let Err(outcome) = take(msg, &mut ws, &mut link, s, options, events, attempt).await {
                    break outcome;
                }
                // A welcome that offers a second path (PROTOCOL-ADDITIONS N): opened a little later.
                if offers && let Some(token) = s.token.clone() {
                    second.start(token);
                }
                if let Some(until) = link.waiting_until.take() {
                    welcome_deadline.as_mut().reset(until);
                }
            }
            heard = second.next(options, link.heartbeat), if second.active() => {
                let Some(msg) = heard else { continue };
                if SecondPath::stale(&msg, s) {
                    continue;
                }
                if let Err(outcome) = take(msg, &mut ws, &mut link, s, options, events, attempt).await {
                    break outcome;
                }
            }
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { break Outcome::Closed };
                if matches!(cmd, Command::Close) {
                    let _ = ws.close(None).await;
                    break Outcome::Closed;
                }
                if !link.welcomed {
                    offline(cmd, &mut s.offline);
                    continue;
                }
                let msg = match cmd {
                    Command::Close => continue,
                    Command::Request { request, reply } => {
                        let id = link.next_id();
                        link.pending.insert(id, reply);
                        request.frame(id)
                    }
                    Command::Ack(seq) => { link.want_ack = Some(seq.min(s.seq)); continue; }
                    Command::Hand(up) => ClientMsg::Hand { up },
                    Command::View(page) => ClientMsg::View { page },
                    Command::Resync => ClientMsg::Resync { id: None },
                };
                if let Err(e) = ws.send(frame(&msg)).await {
                    break Outcome::Retry(None, e.to_string());
                }
            }
            _ = link.ping.tick(), if link.welcomed => {
                if let Some(reason) = s.relay.as_ref().and_then(|c| c.withholding(link.heartbeat, crate::now_ms())) {
                    break Outcome::Retry(None, reason);
                }
                let heard = std::mem::take(&mut link.heard);
                if link.ping_outstanding.is_some() {
                    if heard {
                        continue; // the pong is late, but the link lives
                    }
                    break Outcome::Retry(None, format!("nothing heard for {} ms: dead link", link.heartbeat.as_millis()));
                }
                let id = link.next_id();
                link.ping_outstanding = Some(id);
                if let Err(e) = ws.send(frame(&ClientMsg::Ping { id: Some(id) })).await {
                    break Outcome::Retry(None, e.to_string());
                }
            }
            _ = ack_tick.tick(), if link.welcomed => {
                if let Some(seq) = link.want_ack.take() && (seq > link.acked || link.acked == 0) {
                    link.acked = seq;
                    if let Err(e) = ws.send(frame(&ClientMsg::Ack { seq })).await {
                        break Outcome::Retry(None, e.to_string());
                    }
                }
            }
        }
    };
    for (_, reply) in link.pending.drain() {
        let _ = reply.send(Err(RequestError::Lost));
    }
    outcome
}

/// Takes one frame from either path: a partial sync merged, then (behind a relay) checked against the
/// teacher's signatures, then applied. `Err`: the link must go, for this reason.
async fn take(
    mut msg: ServerMsg,
    ws: &mut Socket,
    link: &mut Link,
    s: &mut Session,
    options: &ClientOptions,
    events: &mpsc::Sender<Event>,
    attempt: &mut u32,
) -> Result<(), Outcome> {
    if !super::apply::expand(&mut msg, s) {
        // A partial sync this session cannot merge: ask for the whole state.
        if !link.resync_sent {
            link.resync_sent = true;
            ws.send(frame(&ClientMsg::Resync { id: None }))
                .await
                .map_err(|e| Outcome::Retry(None, e.to_string()))?;
        }
        return Ok(());
    }
    if let Some(check) = s.relay.as_mut() {
        let teacher = check
            .check(&msg, s.seq, s.state.as_ref(), crate::now_ms())
            .map_err(|r| Outcome::Retry(None, r))?;
        // Behind a relay, whether the teacher is there is the teacher's signed word only.
        match &mut msg {
            ServerMsg::Welcome { teacher_online, .. } => {
                check.linked();
                *teacher_online = teacher.unwrap_or(false);
            }
            ServerMsg::Teacher { .. } => return Ok(()),
            ServerMsg::Beat { .. } => {
                if let Some(online) = teacher {
                    let _ = events.send(Event::Teacher { online }).await;
                }
            }
            _ => {}
        }
    }
    on_frame(msg, ws, link, s, options, events, attempt)
        .await
        .map_err(|e| Outcome::Retry(None, e.to_string()))
}

/// What a close frame from the server means for the client (§10's table).
fn closed(frame: Option<tokio_tungstenite::tungstenite::protocol::CloseFrame>, resumed: bool) -> Outcome {
    let (code, reason) =
        frame.map(|f| (Some(u16::from(f.code)), f.reason.to_string())).unwrap_or((None, String::new()));
    match code {
        Some(close::BAD_CREDENTIALS) if resumed => Outcome::BadResume,
        Some(c) if close::should_reconnect(c) => Outcome::Retry(code, reason),
        None => Outcome::Retry(None, reason),
        Some(_) => Outcome::Stop(code, reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_at_once_and_stays_under_the_cap() {
        assert_eq!(backoff(0, Duration::from_secs(5)), Duration::ZERO);
        for n in 1..20 {
            assert!(backoff(n, Duration::from_secs(5)) <= Duration::from_secs(5));
        }
    }
}
