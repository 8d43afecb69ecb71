//! HTTP routes (§9) and the WebSocket upgrade, as a plain `Router` so handlers are testable with
//! `oneshot` and no socket.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::docs::MAX_DOC_BYTES;
use crate::protocol::{Role, SUBPROTOCOL, VERSION, WS_PATH};
use crate::server::AppState;

/// An HTTP error: 4xx bodies say what to fix, 5xx bodies say nothing internal.
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
    /// 500; the cause is logged here, once.
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::Unauthorized => {
                (StatusCode::UNAUTHORIZED, "send Authorization: Bearer <token or teacher key>".into())
            }
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m.into()),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
            }
        };
        let mut res = (status, Json(json!({ "error": message }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

/// Builds the router for a server.
pub fn router(app: AppState) -> Router {
    Router::new()
        .route(WS_PATH, get(ws))
        .route("/v1/info", get(info))
        .route("/v1/docs", get(list_docs).post(upload_doc).layer(DefaultBodyLimit::max(MAX_DOC_BYTES)))
        .route("/v1/docs/{id}", get(get_doc))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(app)
}

async fn ws(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let limit = app.limits.max_frame_bytes;
    upgrade
        .protocols([SUBPROTOCOL])
        .read_buffer_size(4 * 1024)
        .max_frame_size(limit)
        .max_message_size(limit)
        .on_upgrade(move |socket| crate::connection::run(socket, app, Some(peer.ip())))
}

async fn info(State(app): State<AppState>) -> Json<serde_json::Value> {
    let room = app.room();
    Json(json!({
        "name": app.name,
        "room": room.info().id,
        "title": room.info().title,
        "v": VERSION,
        "fingerprint": app.fingerprint,
        "needs_code": true,
    }))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

fn require(app: &AppState, headers: &HeaderMap, teacher_only: bool) -> Result<Role, ApiError> {
    let secret = bearer(headers).ok_or(ApiError::Unauthorized)?;
    let role = app.room().authorize_bearer(secret).ok_or(ApiError::Unauthorized)?;
    if teacher_only && role != Role::Teacher {
        return Err(ApiError::Forbidden("only the teacher may do this"));
    }
    Ok(role)
}

async fn list_docs(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    require(&app, &headers, true)?;
    Ok(Json(json!({ "docs": app.room().docs().list() })))
}

#[derive(Deserialize)]
struct UploadQuery {
    title: Option<String>,
}

async fn upload_doc(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<UploadQuery>,
    body: Bytes,
) -> Result<(StatusCode, Json<crate::state::Doc>), ApiError> {
    require(&app, &headers, true)?;
    let docs = app.room().docs().clone();
    let title = q.title.unwrap_or_else(|| "Untitled".into());
    let doc = tokio::task::spawn_blocking(move || docs.add(&body, &title, None))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| match e {
            crate::error::Error::Pdf(m) => ApiError::BadRequest(format!("not a readable PDF: {m}")),
            other => ApiError::Internal(other.to_string()),
        })?;
    Ok((StatusCode::CREATED, Json(doc)))
}

async fn get_doc(
    State(app): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    require(&app, req.headers(), false)?;
    let room = app.room();
    let doc = room.docs().get(&id).ok_or_else(|| ApiError::NotFound(format!("no document \"{id}\"")))?;
    let etag = format!("\"{}\"", doc.sha256);
    let etag_value = HeaderValue::from_str(&etag).map_err(|e| ApiError::Internal(e.to_string()))?;
    let cached = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if cached {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response());
    }
    let path = room.docs().path(&doc);
    let mut res = ServeFile::new(path)
        .oneshot(req)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .into_response();
    let headers = res.headers_mut();
    headers.insert(header::ETAG, etag_value);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=31536000, immutable"));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
    Ok(res)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    let (teachers, students) = app.room().online();
    let mut body = app.metrics.render();
    body.push_str(&format!(
        "# HELP lectern_room_online Participants online in the current room.\n# TYPE lectern_room_online gauge\nlectern_room_online{{role=\"teacher\"}} {teachers}\nlectern_room_online{{role=\"student\"}} {students}\n"
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
