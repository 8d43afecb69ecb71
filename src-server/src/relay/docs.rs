//! Documents for remote students (docs/RELAY.md): the teacher's server puts the lesson's document,
//! and its scanned-page list, into Redis when it is shown (`bridge::docs`); a relay serves them at the
//! same routes as a classroom server (§9, and section D of PROTOCOL-ADDITIONS.md), ranges included, to the room's
//! own students only.
//!
//! A relay could change a document's bytes. Its students therefore check each piece against the
//! document's manifest, whose hash the teacher signed in the state (section J of
//! PROTOCOL-ADDITIONS.md; `ui/src/docverify.ts`), or, for a document without one, take it only
//! whole and checked against its signed sha256.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::transport::api_error::ApiError;

use super::blocks::{Missing, Turn};
use super::mirrors::Mirrors;
use crate::cloud::keys;
use crate::protocol::Doc;

/// The room a relay's bearer belongs to, the lesson's document if it is `id`, and the student the
/// bearer names (whatever token of theirs it is); or the answer.
fn document(mirrors: &Mirrors, headers: &HeaderMap, id: &str) -> Result<(String, Doc, String), ApiError> {
    let unauthorized = || ApiError::Unauthorized;
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(unauthorized)?;
    let room_id = crate::engine::token::unchecked_room(bearer).ok_or_else(unauthorized)?;
    let room = mirrors.rooms().get(&room_id).ok_or_else(unauthorized)?;
    room.authorize_bearer(bearer).ok_or_else(unauthorized)?;
    // A relay knows only the lesson's own document.
    match room.state().1.doc {
        Some(doc) if doc.id == id => {
            let pid = crate::engine::token::unchecked_pid(bearer).ok_or_else(unauthorized)?;
            let student = format!("{room_id}/{pid}");
            Ok((room_id, doc, student))
        }
        _ => Err(ApiError::NotFound(format!("no document \"{id}\""))),
    }
}

/// How a student's document request ended before any bytes: the answer to send.
fn unavailable(why: &'static str) -> Response {
    ApiError::Unavailable { why, close: false }.into_response()
}

/// `GET /v1/docs/{id}` on a relay: the bytes, whole or one range, streamed from the relay's block
/// cache as the student's connection takes them (an unread answer holds a slice and its
/// connection's buffer, not the document). At most [`blocks::PER_STUDENT`] at once per student.
pub async fn get_doc(
    State(mirrors): State<Arc<Mirrors>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    // Several ranges in one request are not served (each student asks for what it draws).
    if headers.get(header::RANGE).and_then(|v| v.to_str().ok()).is_some_and(|r| r.contains(',')) {
        return (StatusCode::RANGE_NOT_SATISFIABLE, "one range per request").into_response();
    }
    let (room, doc, student) = match document(&mirrors, &headers, &id) {
        Ok(found) => found,
        Err(answer) => return answer.into_response(),
    };
    let Some(turn) = mirrors.blocks.turn(&student) else {
        return ApiError::TooMany {
            why: "too many document requests at once from this student",
            close: false,
        }
        .into_response();
    };
    let head = match mirrors.blocks.head(mirrors.redis(), &room, &doc.sha256).await {
        Ok(head) if head.size > 0 => head,
        Ok(_) | Err(Missing::NotYet) => return unavailable("the document is not on this relay yet"),
        Err(Missing::Unavailable) => return unavailable("the lesson's documents cannot be reached now"),
    };
    let total = head.size;
    let asked = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).filter(|r| r.starts_with("bytes="));
    let (status, start, end) = match asked.map(|r| parse_range(r, total)) {
        None => (StatusCode::OK, 0, total - 1),
        Some(Some((a, b))) => (StatusCode::PARTIAL_CONTENT, a, b),
        Some(None) => {
            let whole =
                HeaderValue::from_str(&format!("bytes */{total}")).unwrap_or(HeaderValue::from_static("*"));
            return (StatusCode::RANGE_NOT_SATISFIABLE, [(header::CONTENT_RANGE, whole)], "no such bytes")
                .into_response();
        }
    };
    // The first block is read before answering (into the cache), so a document still on its way
    // gets a 503 the student tries again, not a cut body.
    match mirrors.blocks.block(mirrors.redis(), &room, &doc.sha256, start / keys::DOC_BLOCK, total).await {
        Ok(_) => {}
        Err(Missing::NotYet) => return unavailable("the document is not on this relay yet"),
        Err(Missing::Unavailable) => return unavailable("the lesson's documents cannot be reached now"),
    }
    let body = stream(mirrors.clone(), room, doc.sha256.clone(), (start, end + 1, total), turn);
    let mut out = HeaderMap::new();
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
    // Never kept by the browser: a relay's bytes are checked, and a piece that failed its check
    // must be asked for again, not read from a cache (the app keeps the whole once it checks).
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(end + 1 - start));
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{total}"))
    {
        out.insert(header::CONTENT_RANGE, v);
    }
    (status, out, body).into_response()
}

/// Bytes `[from, to)` of a document in slices of at most [`SLICE`], each copied out of its block
/// (from the cache, or read from Redis again if it was evicted) only when the connection has taken
/// the one before: hyper polls a body only when its write buffer has room. So an answer its student
/// does not read holds a slice and the connection's buffer, never a block the cache let go. A block
/// that cannot be had ends the body early: the student asks again.
fn stream(
    mirrors: Arc<Mirrors>,
    room: String,
    sha256: String,
    (from, to, total): (u64, u64, u64),
    turn: Turn,
) -> Body {
    let chunks = futures_util::stream::unfold((from, turn), move |(at, turn)| {
        let (mirrors, room, sha256) = (mirrors.clone(), room.clone(), sha256.clone());
        async move {
            if at >= to {
                return None;
            }
            let i = at / keys::DOC_BLOCK;
            let slice = match mirrors.blocks.block(mirrors.redis(), &room, &sha256, i, total).await {
                Ok(block) => {
                    let a = (at - i * keys::DOC_BLOCK) as usize;
                    let b = ((to - i * keys::DOC_BLOCK) as usize).min(block.len()).min(a + SLICE);
                    (a < b).then(|| bytes::Bytes::copy_from_slice(&block[a..b]))
                }
                Err(_) => None,
            };
            match slice {
                Some(slice) => {
                    let next = at + slice.len() as u64;
                    Some((Ok(slice), (next, turn)))
                }
                None => Some((Err(std::io::Error::other("a block of the document is missing")), (to, turn))),
            }
        }
    });
    Body::from_stream(chunks)
}

/// The largest manifest or scan list a relay passes on (a 200 MB document's is about 1 MB).
const MAX_LIST: usize = 4 << 20;

/// The most bytes of a document one step of an answer copies.
const SLICE: usize = 64 * 1024;

/// `GET /v1/docs/{id}/scan` on a relay.
pub async fn get_scan(
    State(mirrors): State<Arc<Mirrors>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    small(&mirrors, &headers, &id, keys::scan, "no-cache", "no list of scanned pages").await
}

/// `GET /v1/docs/{id}/manifest` on a relay: the manifest as the teacher's server wrote it (section
/// J of PROTOCOL-ADDITIONS.md); its students check it against the hash signed in the state.
pub async fn get_manifest(
    State(mirrors): State<Arc<Mirrors>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    small(&mirrors, &headers, &id, keys::manifest, "no-store", "no manifest").await
}

/// A document's small JSON companion from Redis, to the room's students only.
async fn small(
    mirrors: &Mirrors,
    headers: &HeaderMap,
    id: &str,
    key: fn(&str, &str) -> String,
    cache: &'static str,
    what: &str,
) -> Response {
    let (room, doc, student) = match document(mirrors, headers, id) {
        Ok(found) => found,
        Err(answer) => return answer.into_response(),
    };
    let Some(_turn) = mirrors.blocks.turn(&student) else {
        return ApiError::TooMany {
            why: "too many document requests at once from this student",
            close: false,
        }
        .into_response();
    };
    let Ok(mut conn) = mirrors.redis().connect().await else {
        return unavailable("the lesson's documents cannot be reached now");
    };
    // Read up to a bound: whoever writes into Redis could leave a value of any size there.
    let json: Vec<u8> = redis::cmd("GETRANGE")
        .arg(key(&room, &doc.sha256))
        .arg(0)
        .arg(MAX_LIST - 1)
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    match (!json.is_empty() && json.len() < MAX_LIST).then_some(json) {
        Some(json) => ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, cache)], json)
            .into_response(),
        None => ApiError::NotFound(format!("{what} for \"{id}\"")).into_response(),
    }
}

/// One `bytes=a-b` (or `a-`, or `-n`) range within `total`, inclusive; `None` for anything else
/// (answered whole).
fn parse_range(value: &str, total: u64) -> Option<(u64, u64)> {
    let spec = value.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => (total.saturating_sub(n.parse().ok()?), total - 1),
        (a, "") => (a.parse().ok()?, total - 1),
        (a, b) => (a.parse().ok()?, b.parse::<u64>().ok()?.min(total - 1)),
    };
    (start <= end && end < total).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges_are_read_as_http_says() {
        assert_eq!(parse_range("bytes=0-3", 10), Some((0, 3)));
        assert_eq!(parse_range("bytes=5-", 10), Some((5, 9)));
        assert_eq!(parse_range("bytes=-4", 10), Some((6, 9)));
        assert_eq!(parse_range("bytes=8-100", 10), Some((8, 9)));
        assert_eq!(parse_range("bytes=9-2", 10), None);
        assert_eq!(parse_range("bytes=0-1,4-5", 10), None);
        assert_eq!(parse_range("lines=0-1", 10), None);
        assert_eq!(parse_range("bytes=10-", 10), None);
    }
}
