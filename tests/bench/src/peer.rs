//! How the benchmark speaks to each server it measures: Lectern's protocol, the floor's, and
//! Socket.IO's (Engine.IO frames over a WebSocket), joining as a student or the teacher and reading
//! which change a frame carries.

use anyhow::{Context, bail};
use clap::ValueEnum;
use futures_util::{SinkExt, StreamExt};
use lectern::protocol::{ClientMsg, Hello, SetPatch};
use serde::Deserialize;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// Which server is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// `lectern serve`, speaking PROTOCOL.md.
    Lectern,
    /// The minimal broadcaster in `tests/bench/peers/floor`.
    Floor,
    /// Socket.IO v4 on Node.js in `tests/bench/peers/socketio`.
    Socketio,
}

#[derive(Deserialize)]
pub struct Ready {
    #[serde(default)]
    ws: Option<String>,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    fingerprint: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    teacher_key: Option<String>,
}

/// How one server is spoken to.
pub struct Peer {
    target: Target,
    url: String,
    /// Where the teacher connects (the students' `url` unless another node is named), and from
    /// which namespace.
    teacher_url: String,
    teacher_netns: Option<String>,
    fingerprint: String,
    code: String,
    teacher_key: String,
}

/// What a frame a student received means.
pub enum Frame {
    /// Change number `i` (seq, or the teacher's id for the floor).
    Change(u64),
    /// A snapshot covering changes up to `i`.
    Sync(u64),
    /// An Engine.IO ping to answer.
    Ping,
    /// Anything else.
    Other,
}

#[derive(Deserialize)]
struct Small {
    t: String,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default)]
    id: Option<u64>,
}

impl Peer {
    /// The server of `ready` (and the teacher's node of `teacher_ready`, reached from namespace
    /// `teacher_netns`, when named).
    pub fn new(
        target: Target,
        ready: &Ready,
        fingerprint: Option<String>,
        teacher_ready: Option<&str>,
        teacher_netns: Option<String>,
    ) -> anyhow::Result<Peer> {
        let url_of = |ready: &Ready| -> anyhow::Result<String> {
            let host = ready.host.as_deref().unwrap_or("127.0.0.1");
            Ok(match (&ready.ws, ready.port) {
                (Some(ws), _) => ws.clone(),
                (None, Some(port)) if target == Target::Socketio => {
                    format!("wss://{host}:{port}/socket.io/?EIO=4&transport=websocket")
                }
                (None, Some(port)) => format!("wss://{host}:{port}/"),
                _ => bail!("the ready line names no address"),
            })
        };
        let url = url_of(ready)?;
        let teacher_url = match teacher_ready {
            Some(line) => {
                url_of(&serde_json::from_str(line).context("--teacher-ready must be a ready line")?)?
            }
            None => url.clone(),
        };
        Ok(Peer {
            target,
            url,
            teacher_url,
            teacher_netns,
            fingerprint: fingerprint.or(ready.fingerprint.clone()).context("no fingerprint to pin")?,
            code: ready.code.clone().unwrap_or_default(),
            teacher_key: ready.teacher_key.clone().unwrap_or_default(),
        })
    }

    /// Connects and joins; returns the socket and the seq the lesson is at.
    pub async fn join(&self, teacher: bool, n: usize) -> anyhow::Result<(lectern::client::Socket, u64)> {
        let mut ws = if teacher {
            crate::netns::connect(self.teacher_netns.as_deref(), &self.teacher_url, &self.fingerprint).await?
        } else {
            lectern::client::connect(&self.url, &self.fingerprint).await?
        };
        match self.target {
            Target::Lectern => {
                let base = Hello { v: Some(lectern::protocol::VERSION.into()), ..Hello::default() };
                let hello = if teacher {
                    Hello {
                        role: Some("teacher".into()),
                        key: Some(self.teacher_key.clone()),
                        device: Some("bench-teacher".into()),
                        ..base
                    }
                } else {
                    Hello {
                        role: Some("student".into()),
                        code: Some(self.code.clone()),
                        name: Some(format!("Bench {n}")),
                        device: Some(format!("bench-student-{n:06}")),
                        ..base
                    }
                };
                ws.send(Message::text(serde_json::to_string(&ClientMsg::Hello(hello))?)).await?;
            }
            Target::Floor | Target::Socketio => {}
        }
        loop {
            let text = match ws.next().await {
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(Message::Close(c))) => bail!("closed before joining: {c:?}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
                None => bail!("connection ended before joining"),
            };
            match self.target {
                Target::Lectern => {
                    let v: Value = serde_json::from_str(&text)?;
                    if v["t"] == "welcome" {
                        return Ok((ws, v["seq"].as_u64().unwrap_or(0)));
                    }
                }
                Target::Floor => {
                    if text.contains("\"welcome\"") {
                        return Ok((ws, 0));
                    }
                }
                Target::Socketio => {
                    // Engine.IO open ("0{...}"), then Socket.IO connect ("40"), then our hello event.
                    if text.starts_with('0') {
                        ws.send(Message::text("40")).await?;
                    } else if text.starts_with("40") {
                        let role = if teacher { "teacher" } else { "student" };
                        ws.send(Message::text(format!(r#"42["hello","{role}"]"#))).await?;
                    } else if text == "2" {
                        ws.send(Message::text("3")).await?;
                    } else if let Some(body) = text.strip_prefix("42") {
                        let v: Value = serde_json::from_str(body)?;
                        if v[0] == "welcome" {
                            return Ok((ws, v[1]["seq"].as_u64().unwrap_or(0)));
                        }
                    }
                }
            }
        }
    }

    pub fn classify(&self, text: &str) -> Frame {
        match self.target {
            Target::Lectern => match serde_json::from_str::<Small>(text) {
                Ok(f) if f.t == "patch" => f.seq.map_or(Frame::Other, Frame::Change),
                Ok(f) if f.t == "sync" => f.seq.map_or(Frame::Other, Frame::Sync),
                _ => Frame::Other,
            },
            Target::Floor => match serde_json::from_str::<Small>(text) {
                Ok(f) if f.t == "set" => f.id.map_or(Frame::Other, Frame::Change),
                _ => Frame::Other,
            },
            Target::Socketio => {
                if text == "2" {
                    return Frame::Ping;
                }
                let Some(body) = text.strip_prefix("42") else { return Frame::Other };
                match serde_json::from_str::<(String, Value)>(body) {
                    Ok((event, data)) if event == "patch" => {
                        data["seq"].as_u64().map_or(Frame::Other, Frame::Change)
                    }
                    _ => Frame::Other,
                }
            }
        }
    }

    pub fn set(&self, i: u64, patch: SetPatch) -> anyhow::Result<Message> {
        let id = u32::try_from(i).unwrap_or(u32::MAX);
        Ok(match self.target {
            Target::Lectern | Target::Floor => {
                Message::text(serde_json::to_string(&ClientMsg::Set { id: Some(id), patch })?)
            }
            Target::Socketio => {
                #[derive(serde::Serialize)]
                struct Args {
                    id: u32,
                    patch: SetPatch,
                }
                Message::text(format!("42{}", serde_json::to_string(&("set", Args { id, patch }))?))
            }
        })
    }
}
