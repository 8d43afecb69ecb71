//! Reading a client's frame: every frame is parsed here, and what is wrong with one is said exactly
//! (a protocol violation, or a `bad_request` that names the field).

use crate::frame::ClientMsg;

/// Why a client frame could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not a JSON object with a string `t`: a protocol violation (close 4400).
    NotJson(String),
    /// A JSON object whose `t` or fields are wrong: `bad_request`, the connection stays.
    BadRequest {
        /// The request id, when one could be read.
        id: Option<u32>,
        /// What to fix.
        message: String,
    },
}

/// The message types a client may send, in the order §3–§7 introduce them.
pub const CLIENT_TYPES: &[&str] = &[
    "hello",
    "set",
    "resync",
    "ack",
    "hand",
    "view",
    "kick",
    "end",
    "ping",
    "admit",
    "deny",
    "new_code",
    "waiting_room",
];

impl ClientMsg {
    /// Parses one text frame.
    pub fn parse(text: &str) -> Result<ClientMsg, ParseError> {
        // Fast path, without a generic JSON value: a well-formed frame of a type that carries `id`
        // (so `id` was checked by its type). Everything else takes the careful path below, which
        // says exactly what is wrong.
        if let Ok(
            msg @ (ClientMsg::Set { .. }
            | ClientMsg::Resync { .. }
            | ClientMsg::Kick { .. }
            | ClientMsg::End { .. }
            | ClientMsg::Ping { .. }
            | ClientMsg::Admit { .. }
            | ClientMsg::Deny { .. }
            | ClientMsg::NewCode { .. }
            | ClientMsg::WaitingRoom { .. }),
        ) = serde_json::from_str::<ClientMsg>(text)
        {
            return Ok(msg);
        }
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ParseError::NotJson(format!("frame is not JSON: {e}")))?;
        let serde_json::Value::Object(obj) = &value else {
            return Err(ParseError::NotJson("frame is not a JSON object".into()));
        };
        let id = obj.get("id").and_then(|v| v.as_u64()).and_then(|v| u32::try_from(v).ok());
        let Some(t) = obj.get("t").and_then(|t| t.as_str()) else {
            return Err(ParseError::BadRequest {
                id,
                message: "every frame needs a string field \"t\"".into(),
            });
        };
        if !CLIENT_TYPES.contains(&t) {
            return Err(ParseError::BadRequest { id, message: format!("unknown message type \"{t}\"") });
        }
        if let Some(raw) = obj.get("id")
            && id.is_none()
        {
            return Err(ParseError::BadRequest {
                id: None,
                message: format!("\"id\" must be a u32, not {raw}"),
            });
        }
        let t = t.to_owned();
        serde_json::from_value(value).map_err(|e| ParseError::BadRequest { id, message: format!("{t}: {e}") })
    }
}
