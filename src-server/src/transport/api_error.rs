//! The one shape of every HTTP error a server or a relay answers (§9): a status and
//! `{"error":"…"}` (`lectern_protocol::http::ApiError`), where 4xx bodies say what to fix and 5xx
//! bodies say nothing internal (the cause is logged here, once). Refusals that a client must not
//! answer on the same connection (it is refused for its pace, or its body was left half-read) also
//! close it.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::protocol::http as body;

/// An HTTP error.
#[derive(Debug)]
pub enum ApiError {
    /// 400 with the reason.
    BadRequest(String),
    /// 401: missing or wrong bearer.
    Unauthorized,
    /// 403: authenticated, but not allowed.
    Forbidden(&'static str),
    /// 404.
    NotFound(String),
    /// 408: a request's body did not arrive in time; the connection closes.
    Timeout(&'static str),
    /// 409: the resource is busy with another request (a link's one event stream).
    Conflict(&'static str),
    /// 413: the body is (or says it is) over the limit.
    TooLarge(String),
    /// 422: the request is understood, but what it names cannot be made (a document too costly to
    /// draw on), with the reason.
    Unprocessable(String),
    /// 429: too many requests from this address; `close` ends the connection too.
    TooMany {
        /// What to do.
        why: &'static str,
        /// The client must make a new connection (a TLS handshake of its own) to try again.
        close: bool,
    },
    /// 503: not now; try again in a moment (`Retry-After: 1`); `close` ends the connection too.
    Unavailable {
        /// What is not there yet.
        why: &'static str,
        /// The request's body was left half-read: the connection cannot carry another.
        close: bool,
    },
    /// 500; the cause is logged here, once.
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut close = false;
        let (status, message) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::Unauthorized => {
                (StatusCode::UNAUTHORIZED, "send Authorization: Bearer <token or teacher key>".into())
            }
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m.into()),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::Timeout(m) => {
                close = true;
                (StatusCode::REQUEST_TIMEOUT, m.into())
            }
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m.into()),
            ApiError::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, m),
            ApiError::Unprocessable(m) => (StatusCode::UNPROCESSABLE_ENTITY, m),
            ApiError::TooMany { why, close: c } => {
                close = c;
                (StatusCode::TOO_MANY_REQUESTS, why.into())
            }
            ApiError::Unavailable { why, close: c } => {
                close = c;
                (StatusCode::SERVICE_UNAVAILABLE, why.into())
            }
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
            }
        };
        let mut res = (status, Json(body::ApiError { error: message })).into_response();
        let headers = res.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if close {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        res
    }
}
