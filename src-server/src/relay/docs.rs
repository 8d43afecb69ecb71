//! Documents for remote students (docs/RELAY.md): the teacher's server puts the lesson's document,
//! and its scanned-page list, into Redis when it is shown (`bridge::docs`); a relay serves them at the
//! same routes as a classroom server (§9, and section D of PROTOCOL-ADDITIONS.md), ranges included, to the room's
//! own students only.
//!
//! A relay could change a document's bytes. Its students therefore take a document only whole and
//! checked against the sha256 the teacher signed in the state (`ui/src/platform`), never page by
//! page.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::transport::api_error::ApiError;

use super::mirrors::Mirrors;
use crate::cloud::connect::Conn;
use crate::cloud::keys;
use crate::protocol::Doc;

/// The room a relay's bearer belongs to, and the lesson's document if it is `id`; or the answer.
fn document(mirrors: &Mirrors, headers: &HeaderMap, id: &str) -> Result<(String, Doc), ApiError> {
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
        Some(doc) if doc.id == id => Ok((room_id, doc)),
        _ => Err(ApiError::NotFound(format!("no document \"{id}\""))),
    }
}

/// [`document`], and a connection to the Redis that holds it: one of its own, so that a document's
/// bytes never hold up the relay's other commands on the shared connection (nor time out at its
/// half second).
/// At most [`super::mirrors::DOC_READS`] run at once on a relay (a permit is held while Redis is read): a student
/// with a token cannot make the relay open Redis connections without end.
async fn opened<'a>(
    mirrors: &'a Mirrors,
    headers: &HeaderMap,
    id: &str,
) -> Result<(String, Doc, Conn, tokio::sync::SemaphorePermit<'a>), ApiError> {
    let (room, doc) = document(mirrors, headers, id)?;
    let busy = || ApiError::Unavailable { why: "the relay is busy sending documents", close: false };
    let permit = tokio::time::timeout(DOC_WAIT, mirrors.doc_reads.acquire())
        .await
        .map_err(|_| busy())?
        .map_err(|_| busy())?;
    let conn = mirrors.redis().connect_blocking().await.map_err(|_| ApiError::Unavailable {
        why: "the lesson's documents cannot be reached now",
        close: false,
    })?;
    Ok((room, doc, conn, permit))
}

/// How long a document request waits for its turn before it is answered 503.
const DOC_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// `GET /v1/docs/{id}` on a relay: the bytes, whole or one range.
pub async fn get_doc(
    State(mirrors): State<Arc<Mirrors>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    // Several ranges in one request are not served (each student asks for what it draws).
    if headers.get(header::RANGE).and_then(|v| v.to_str().ok()).is_some_and(|r| r.contains(',')) {
        return (StatusCode::RANGE_NOT_SATISFIABLE, "one range per request").into_response();
    }
    let (room, doc, mut conn, _permit) = match opened(&mirrors, &headers, &id).await {
        Ok(found) => found,
        Err(answer) => return answer.into_response(),
    };
    let key = keys::doc(&room, &doc.sha256);
    let unavailable = || {
        ApiError::Unavailable { why: "the document is not on this relay yet", close: false }.into_response()
    };
    let total: u64 = redis::cmd("STRLEN").arg(&key).query_async(&mut conn).await.unwrap_or(0);
    if total == 0 {
        return unavailable();
    }
    let etag =
        HeaderValue::from_str(&format!("\"{}\"", doc.sha256)).unwrap_or(HeaderValue::from_static("\"\""));
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).and_then(|r| parse_range(r, total));
    let (status, start, end) = match range {
        Some((a, b)) => (StatusCode::PARTIAL_CONTENT, a, b),
        None => (StatusCode::OK, 0, total - 1),
    };
    let bytes: Vec<u8> =
        match redis::cmd("GETRANGE").arg(&key).arg(start).arg(end).query_async(&mut conn).await {
            Ok(b) => b,
            Err(_) => return unavailable(),
        };
    let mut out = HeaderMap::new();
    out.insert(header::ETAG, etag);
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=31536000, immutable"));
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{total}"))
    {
        out.insert(header::CONTENT_RANGE, v);
    }
    (status, out, bytes).into_response()
}

/// `GET /v1/docs/{id}/scan` on a relay.
pub async fn get_scan(
    State(mirrors): State<Arc<Mirrors>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (room, doc, mut conn, _permit) = match opened(&mirrors, &headers, &id).await {
        Ok(found) => found,
        Err(answer) => return answer.into_response(),
    };
    let json: Option<String> =
        redis::cmd("GET").arg(keys::scan(&room, &doc.sha256)).query_async(&mut conn).await.unwrap_or(None);
    match json {
        Some(json) => {
            ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-cache")], json)
                .into_response()
        }
        None => ApiError::NotFound(format!("no list of scanned pages for \"{id}\"")).into_response(),
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
