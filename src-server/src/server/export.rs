//! `GET /v1/lessons/{id}/annotated.pdf` (teacher): the pages a lesson showed with the teacher's
//! highlights and ink drawn on them (`docs::annotate`), for the students who were absent. `?doc=`
//! names one of the lesson's documents; without it, the one on screen last.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::access::{find_lesson, require, run_report};
use crate::server::app::AppState;
use crate::transport::api_error::ApiError;

/// The document to export.
#[derive(Deserialize)]
pub(super) struct Which {
    doc: Option<String>,
}

/// Only one export runs at a time: each replays a lesson's log and parses a whole document. A
/// teacher who stops waiting lets the next one go, and the child drawing theirs is killed with it.
static DRAWING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

pub(super) async fn annotated_pdf(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(which): Query<Which>,
) -> Result<Response, ApiError> {
    require(&app, &headers, true)?;
    // One export at a time, from reading the log to writing the PDF.
    let _one = DRAWING.acquire().await.map_err(|e| ApiError::Internal(e.to_string()))?;
    let lesson = find_lesson(&app, id).await?;
    let lesson_id = lesson.id;
    let docs = run_report(&app, move |c| crate::store::annotated::annotations(c, &lesson)).await?;
    let chosen = crate::store::annotated::pick(docs, which.doc.as_deref()).map_err(ApiError::NotFound)?;
    if tokio::fs::metadata(app.docs().path(&chosen.doc)).await.is_err() {
        let id = &chosen.doc.id;
        return Err(ApiError::NotFound(format!("document \"{id}\" is no longer in the library")));
    }
    // Drawn where the library parses PDFs: under `lectern serve` and the app, in a capped process
    // of its own. A document that cannot be drawn on (unreadable, or past the caps) is said why.
    let drawing = crate::docs::export::Drawing { pages: chosen.pages, marks: chosen.marks };
    let pdf = app.docs().annotated(&chosen.doc, drawing).await.map_err(|e| match e {
        crate::docs::export::ExportError::Document(why) => ApiError::Unprocessable(why),
        failed => ApiError::Internal(failed.to_string()),
    })?;
    let safe: String =
        chosen.doc.id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
    let name = format!("attachment; filename=\"lesson-{lesson_id}-{safe}.pdf\"");
    let disposition = HeaderValue::from_str(&name).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/pdf")),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        pdf,
    )
        .into_response())
}
