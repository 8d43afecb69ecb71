//! Who may call the HTTP routes (the bearer: the teacher's key or a student's token), and running a
//! report against the session log off the async threads: shared by `http` and `export`.

use axum::http::{HeaderMap, header};

use crate::protocol::Role;
use crate::protocol::http::LessonSummary;
use crate::server::app::AppState;
use crate::store::report;
use crate::transport::api_error::ApiError;

/// The bearer a request carries (`Authorization: Bearer …`).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

/// The bearer's role, or 401; with `teacher_only`, 403 for a student.
pub(super) fn require(app: &AppState, headers: &HeaderMap, teacher_only: bool) -> Result<Role, ApiError> {
    let secret = bearer(headers).ok_or(ApiError::Unauthorized)?;
    let role = app.room().authorize_bearer(secret).ok_or(ApiError::Unauthorized)?;
    if teacher_only && role != Role::Teacher {
        return Err(ApiError::Forbidden("only the teacher may do this"));
    }
    Ok(role)
}

/// Runs a report against the session log on a blocking thread.
pub(super) async fn run_report<T: Send + 'static>(
    app: &AppState,
    f: impl FnOnce(&rusqlite::Connection) -> crate::error::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let db = app.db.clone();
    tokio::task::spawn_blocking(move || {
        let conn = crate::store::schema::open_for_reading(&db)?;
        f(&conn)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(|e| ApiError::Internal(e.to_string()))
}

/// A lesson of the log by its id or room, or 404.
pub(super) async fn find_lesson(app: &AppState, id: String) -> Result<LessonSummary, ApiError> {
    let key = id.clone();
    run_report(app, move |c| report::find(c, &key))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no lesson \"{id}\"")))
}
