//! HTTP routes (§9) and the WebSocket upgrade, as a plain `Router` so handlers are testable with
//! `oneshot` and no socket.

use std::net::SocketAddr;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::docs::MAX_DOC_BYTES;
use crate::protocol::http::{self as body, DocList, Health, Info, LessonList};
use crate::protocol::{Doc, Role, VERSION, WS_PATH};
use crate::server::access::{find_lesson, require, run_report};
use crate::server::app::AppState;
use crate::store::report;

pub use crate::transport::api_error::ApiError;

/// Builds the router for a server.
pub fn router(app: AppState) -> Router {
    Router::new()
        .route(WS_PATH, get(ws))
        .route("/v1/info", get(info))
        .route("/v1/docs", get(list_docs).post(upload_doc).layer(DefaultBodyLimit::max(MAX_DOC_BYTES)))
        .route("/v1/docs/{id}", get(get_doc))
        // 600 pages' ranges are 15 kB of JSON, 4 kB gzipped: thirty tablets ask for it at once.
        .route("/v1/docs/{id}/scan", get(scan_index).layer(tower_http::compression::CompressionLayer::new()))
        .route(
            "/v1/docs/{id}/manifest",
            get(manifest).layer(tower_http::compression::CompressionLayer::new()),
        )
        .route("/v1/lesson", get(current_lesson))
        .route("/v1/lessons", get(list_lessons).post(new_lesson))
        .route("/v1/lessons/{id}/attendance.csv", get(attendance_csv))
        .route("/v1/lessons/{id}/timeline.json", get(timeline_json))
        .route("/v1/lessons/{id}/annotated.pdf", get(super::export::annotated_pdf))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(crate::transport::ui::serve)
        .with_state(app.clone())
        .merge(crate::transport::sse::router(app.host.clone()))
}

async fn ws(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    upgrade: WebSocketUpgrade,
) -> Response {
    crate::transport::connection::upgrade(upgrade, app.host.clone(), peer.ip())
}

async fn info(State(app): State<AppState>) -> Json<Info> {
    let room = app.room();
    Json(Info {
        name: app.name.clone(),
        room: room.info().id.clone(),
        title: room.info().title.clone(),
        title_sig: None,
        title_epoch: None,
        v: VERSION,
        fingerprint: app.fingerprint.clone(),
        needs_code: true,
        knock: true,
    })
}

fn lesson_body(app: &AppState, room: &str, title: &str, code: &str) -> body::Lesson {
    body::Lesson {
        room: room.into(),
        title: title.into(),
        code: code.into(),
        fingerprint: app.fingerprint.clone(),
        name: app.name.clone(),
        pk: app.pk.clone(),
        relay_url: app.relay_url.clone(),
    }
}

/// The running lesson, for the teacher console: its code and what a join link needs.
async fn current_lesson(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<body::Lesson>, ApiError> {
    require(&app, &headers, true)?;
    let room = app.room();
    Ok(Json(lesson_body(&app, &room.info().id, &room.info().title, &room.code())))
}

/// A document the bearer may fetch: the teacher any in the library, a student only the one the lesson
/// shows (or the few shown just before it): a token is not a key to the teacher's whole library.
fn fetchable(app: &AppState, headers: &HeaderMap, id: &str) -> Result<Doc, ApiError> {
    let role = require(app, headers, false)?;
    let room = app.room();
    let missing = || ApiError::NotFound(format!("no document \"{id}\""));
    if role == Role::Student && !room.student_may_fetch(id) {
        return Err(ApiError::Forbidden("a student may fetch only the document the lesson shows"));
    }
    app.docs().get(id).ok_or_else(missing)
}

async fn list_docs(State(app): State<AppState>, headers: HeaderMap) -> Result<Json<DocList>, ApiError> {
    require(&app, &headers, true)?;
    Ok(Json(DocList { docs: app.docs().list() }))
}

#[derive(Deserialize)]
struct UploadQuery {
    title: Option<String>,
}

async fn upload_doc(
    State(app): State<AppState>,
    Query(q): Query<UploadQuery>,
    req: Request,
) -> Result<(StatusCode, Json<Doc>), ApiError> {
    // Authenticate before reading a byte of the body: anyone on the LAN can reach this route.
    require(&app, req.headers(), true)?;
    // A body that says it is too large is refused before a byte of it is read.
    let too_large = || ApiError::TooLarge(format!("a document may be at most {} MiB", MAX_DOC_BYTES >> 20));
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok());
    if declared.and_then(|v| v.trim().parse::<u64>().ok()).is_some_and(|n| n > MAX_DOC_BYTES as u64) {
        return Err(too_large());
    }
    // Streamed to a file in the library's folder, hashed on the way: a 200 MiB upload never sits
    // in memory, and what is over the limit is refused as soon as it is.
    let docs = app.docs().clone();
    let incoming = super::upload::Incoming::new(docs.incoming_path());
    let sha256 = match super::upload::receive(req.into_body(), incoming.path(), MAX_DOC_BYTES).await {
        Ok(sha256) => sha256,
        Err(e) => {
            return Err(match e {
                super::upload::Refused::TooLarge => too_large(),
                super::upload::Refused::Body(m) => {
                    ApiError::BadRequest(format!("cannot read the upload: {m}"))
                }
                super::upload::Refused::Disk(m) => ApiError::Internal(format!("cannot keep the upload: {m}")),
            });
        }
    };
    let title = q.title.unwrap_or_else(|| "Untitled".into());
    let doc = tokio::task::spawn_blocking(move || docs.take(&incoming.keep(), sha256, &title, None))
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
    let doc = fetchable(&app, req.headers(), &id)?;
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
    let path = app.docs().path(&doc);
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

/// Which pages of a document a device may draw from their own JPEG (section D of
/// docs/PROTOCOL-ADDITIONS.md). Anyone who may fetch the document may fetch this.
async fn scan_index(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let doc = fetchable(&app, &headers, &id)?;
    let index = app.docs().scan_index(&doc).await;
    // A newer server may find more (or fewer) scanned pages in the same document: never cached.
    let cache = HeaderValue::from_static("no-cache");
    Ok(([(header::CACHE_CONTROL, cache)], Json(index.as_ref().clone())).into_response())
}

/// A document's manifest (section J of docs/PROTOCOL-ADDITIONS.md), exactly the bytes whose
/// SHA-256 the state names; 404 for a document not described yet. Anyone who may fetch the document
/// may fetch this.
async fn manifest(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let doc = fetchable(&app, &headers, &id)?;
    let json = app.docs().manifest(&doc).await;
    let json = json.ok_or_else(|| ApiError::NotFound(format!("no manifest for \"{id}\" yet")))?;
    let immutable = HeaderValue::from_static("private, max-age=31536000, immutable");
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (header::CACHE_CONTROL, immutable),
        ],
        json,
    )
        .into_response())
}

async fn healthz(State(app): State<AppState>) -> Json<Health> {
    Json(match app.store.degraded() {
        None => Health { status: "ok".into(), reason: None },
        Some(reason) => Health { status: "degraded".into(), reason: Some(reason) },
    })
}

async fn metrics(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    use crate::config::MetricsAccess;
    let local = peer.ip().to_canonical().is_loopback();
    match app.metrics_access {
        MetricsAccess::Off => {
            return Err(ApiError::NotFound("metrics are off (`metrics` in the config)".into()));
        }
        MetricsAccess::Local if !local && require(&app, &headers, true).is_err() => {
            return Err(ApiError::Forbidden(
                "metrics answer this machine or the teacher key (`metrics = \"open\"` for anyone)",
            ));
        }
        _ => {}
    }
    let (teachers, students) = app.room().online();
    let mut body = app.host.metrics.render();
    body.push_str(&format!(
        "# HELP lectern_room_online Participants online in the current room.\n# TYPE lectern_room_online gauge\nlectern_room_online{{role=\"teacher\"}} {teachers}\nlectern_room_online{{role=\"student\"}} {students}\n"
    ));
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body))
}

async fn list_lessons(State(app): State<AppState>, headers: HeaderMap) -> Result<Json<LessonList>, ApiError> {
    require(&app, &headers, true)?;
    let lessons = run_report(&app, report::lessons).await?;
    Ok(Json(LessonList { lessons }))
}

async fn attendance_csv(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require(&app, &headers, true)?;
    let lesson = find_lesson(&app, id).await?;
    let name = format!("attachment; filename=\"lesson-{}-attendance.csv\"", lesson.id);
    let csv =
        run_report(&app, move |c| report::attendance(c, &lesson).map(|rows| report::attendance_csv(&rows)))
            .await?;
    let disposition = HeaderValue::from_str(&name).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8")),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        csv,
    )
        .into_response())
}

async fn timeline_json(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<crate::protocol::http::Timeline>, ApiError> {
    require(&app, &headers, true)?;
    let lesson = find_lesson(&app, id).await?;
    Ok(Json(run_report(&app, move |c| crate::store::timeline::timeline(c, &lesson)).await?))
}

#[derive(Deserialize)]
struct NewLesson {
    title: Option<String>,
}

async fn new_lesson(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<NewLesson>,
) -> Result<(StatusCode, Json<body::Lesson>), ApiError> {
    require(&app, &headers, true)?;
    let lesson = app.new_lesson(q.title);
    Ok((StatusCode::CREATED, Json(lesson_body(&app, &lesson.room, &lesson.title, &lesson.code))))
}
