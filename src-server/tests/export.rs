//! The annotated PDF of a lesson (issue 25), over HTTPS for the console and the app and from
//! `lectern sessions export --pdf`: the pages the lesson showed, the teacher's ink and highlights drawn
//! on them as vector drawing where they were drawn, checked with `qpdf --check`. Only the teacher may
//! take it.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use std::process::Command;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{TestServer, device};
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

async fn get(server: &TestServer, uri: &str, bearer: &str) -> (StatusCode, Option<String>, Vec<u8>) {
    let req = Request::get(uri)
        .header(header::AUTHORIZATION, format!("Bearer {bearer}"))
        .body(Body::empty())
        .unwrap();
    let res = lectern::server::http::router(server.app().clone()).oneshot(req).await.unwrap();
    let status = res.status();
    let kind = res.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_string());
    (status, kind, res.into_body().collect().await.unwrap().to_bytes().to_vec())
}

/// `qpdf --check` on the bytes: a PDF that other readers take, not only lopdf.
fn qpdf_check(pdf: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.pdf");
    std::fs::write(&file, pdf).unwrap();
    let out = Command::new("qpdf")
        .arg("--check")
        .arg(&file)
        .output()
        .expect("qpdf is installed (.ci/test installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("No syntax or stream encoding errors"),
        "qpdf: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A lesson on the demo document: pages 1 to 3 shown, a red stroke and a highlight on page 2. The
/// teacher's connection, and the URI of the lesson's annotated PDF.
async fn marked_lesson(server: &TestServer) -> (common::Raw, String) {
    let (mut t, _) = server.teacher().await;
    let ink = json!({"color":"red","width":4,"points":[[1000,5000,50],[5000,5000,80],[9000,5000,100]]});
    let stroke = json!({"id":1,"x":0.1,"y":0.5,"w":0.8,"h":0.0,"ink":ink});
    let highlight = json!({"id":2,"x":0.1,"y":0.2,"w":0.5,"h":0.1});
    t.send(json!({"t":"set","id":1,"patch":{"page":2}})).await;
    t.recv_type("ok").await;
    let marks = json!([{"op":"add","page":2,"mark":stroke},{"op":"add","page":2,"mark":highlight}]);
    t.send(json!({"t":"set","id":2,"patch":{"marks":marks}})).await;
    t.recv_type("ok").await;
    t.send(json!({"t":"set","id":3,"patch":{"page":3}})).await;
    t.recv_type("ok").await;
    assert!(server.app().store.flush(Duration::from_secs(5)));
    let room = server.app().room().info().id.clone();
    (t, format!("/v1/lessons/{room}/annotated.pdf"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_annotated_pdf_has_the_pages_shown_with_the_ink_where_it_was_drawn() {
    let server = TestServer::start().await;
    let (_t, uri) = marked_lesson(&server).await;
    let room = server.app().room().info().id.clone();

    // A student with a token, or a stranger, gets nothing.
    let (_, welcome) = server.student("Aisha", &device(1)).await;
    let (status, _, _) = get(&server, &uri, welcome["token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(get(&server, &uri, "nope").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(get(&server, &format!("{uri}?doc=other"), &server.teacher_key).await.0, StatusCode::NOT_FOUND);

    let (status, kind, pdf) = get(&server, &uri, &server.teacher_key).await;
    assert_eq!((status, kind.as_deref()), (StatusCode::OK, Some("application/pdf")));
    qpdf_check(&pdf);
    let doc = lopdf::Document::load_mem(&pdf).unwrap();
    let pages = doc.get_pages();
    assert_eq!(pages.len(), 3, "pages 1 (the lesson opened on it), 2 and 3 were shown");
    // The demo's pages are A4 (595 × 842): the stroke runs at half the page's height, from a tenth of
    // its width to nine tenths, as lines (vector drawing), in red.
    let content = String::from_utf8_lossy(&doc.get_page_content(pages[&2]).unwrap()).into_owned();
    assert!(content.contains("59.50 421.00 m 297.50 421.00 l S"), "{content}");
    assert!(content.contains("297.50 421.00 m 535.50 421.00 l S"), "{content}");
    assert!(
        content.contains("0.827 0.184 0.184 RG") && content.contains("/LecternHighlight gs"),
        "{content}"
    );
    let plain = String::from_utf8_lossy(&doc.get_page_content(pages[&1]).unwrap()).into_owned();
    assert!(!plain.contains("RG 1 J"), "a page without marks is the original page: {plain}");

    // The same from the command line.
    let out = server.dir.path().join("lesson.pdf");
    let run = Command::new(env!("CARGO_BIN_EXE_lectern"))
        .args(["sessions", "export", &room, "--pdf"])
        .arg(&out)
        .arg("--data-dir")
        .arg(server.dir.path())
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("3 of"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let from_cli = std::fs::read(&out).unwrap();
    qpdf_check(&from_cli);
    assert_eq!(lopdf::Document::load_mem(&from_cli).unwrap().get_pages().len(), 3);
}

/// Under `lectern serve` the export is drawn in a process of its own with the upload checker's caps
/// (`lectern annotate-pdf`): the same PDF as drawn in the server, and for a document whose parse
/// outgrows the cap, a clear error for the teacher while the server goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_is_drawn_in_a_capped_process_and_a_document_too_big_for_it_is_refused_clearly() {
    use lectern::docs::check::{CHECK_MEMORY, Checker};
    let server = TestServer::start().await;
    let (mut t, uri) = marked_lesson(&server).await;
    let drawn_here = get(&server, &uri, &server.teacher_key).await;
    assert_eq!(drawn_here.0, StatusCode::OK);
    let exe = std::path::PathBuf::from(env!("CARGO_BIN_EXE_lectern"));
    let docs = server.app().docs();
    docs.set_checker(Checker::Child { exe: exe.clone(), memory: CHECK_MEMORY });
    let (status, kind, pdf) = get(&server, &uri, &server.teacher_key).await;
    assert_eq!((status, kind.as_deref()), (StatusCode::OK, Some("application/pdf")));
    assert_eq!(pdf, drawn_here.2, "the same PDF, drawn in a process of its own");

    // A scanned page of 40 MB (parsing it holds it twice), added while the library parses here,
    // then shown with a mark, and exported with the checker's cap at 48 MiB.
    docs.set_checker(Checker::InProcess);
    docs.add(&common::books::scanned_book(1, 40 << 20), "Bomb", Some("bomb")).unwrap();
    docs.set_checker(Checker::Child { exe, memory: 48 << 20 });
    t.send(json!({"t":"set","id":4,"patch":{"doc":"bomb"}})).await;
    t.recv_type("ok").await;
    let highlight = json!({"id":3,"x":0.1,"y":0.2,"w":0.5,"h":0.1});
    t.send(json!({"t":"set","id":5,"patch":{"marks":[{"op":"add","page":1,"mark":highlight}]}})).await;
    t.recv_type("ok").await;
    assert!(server.app().store.flush(Duration::from_secs(5)));
    let (status, _, said) = get(&server, &format!("{uri}?doc=bomb"), &server.teacher_key).await;
    let said = String::from_utf8_lossy(&said);
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{said}");
    assert!(said.contains("needs more than 48 MiB"), "the teacher is told why: {said}");
    // The lesson goes on, and a document within the cap is still exported.
    let (status, _, again) = get(&server, &format!("{uri}?doc=demo"), &server.teacher_key).await;
    assert_eq!((status, again), (StatusCode::OK, drawn_here.2));
}
