//! Protects the HTTP side of §9 without a socket (router + `oneshot`): info carries no secret, documents
//! need a bearer, are served with the sha256 ETag and ranges, uploads are checked to be PDFs, and
//! health and metrics answer.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use common::TestServer;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// Sends `req` as if from this machine (unless it names another peer).
async fn call(server: &TestServer, mut req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    if req.extensions().get::<ConnectInfo<SocketAddr>>().is_none() {
        req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 50000))));
    }
    let res = lectern::server::http::router(server.app().clone()).oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, headers, body)
}

fn get(uri: &str, bearer: Option<&str>) -> Request<Body> {
    let mut b = Request::get(uri);
    if let Some(t) = bearer {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn info_names_the_room_and_fingerprint_and_no_secret() {
    let server = TestServer::start().await;
    let (status, _, body) = call(&server, get("/v1/info", None)).await;
    assert_eq!(status, StatusCode::OK);
    let info: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(info["v"], 1);
    assert_eq!(info["needs_code"], true);
    assert_eq!(info["fingerprint"], server.fingerprint.as_str());
    let text = String::from_utf8(body).unwrap();
    assert!(!text.contains(&server.teacher_key) && !text.contains(common::CODE), "{text}");
}

#[tokio::test]
async fn the_consoles_lesson_carries_the_key_that_signs_for_relays() {
    let server = TestServer::start().await;
    assert_eq!(call(&server, get("/v1/lesson", None)).await.0, StatusCode::UNAUTHORIZED);
    let (status, _, body) = call(&server, get("/v1/lesson", Some(&server.teacher_key))).await;
    assert_eq!(status, StatusCode::OK);
    let lesson: Value = serde_json::from_slice(&body).unwrap();
    let pk = lectern::files::load_signer(server.dir.path()).unwrap().public();
    assert_eq!(lesson["pk"], pk.as_str(), "the key kept in the data directory");
    assert_eq!(lesson["fingerprint"], server.fingerprint.as_str());
}

#[tokio::test]
async fn documents_need_a_bearer_and_are_cached_by_sha256() {
    let server = TestServer::start().await;
    let (status, headers, _) = call(&server, get("/v1/docs/demo", None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    assert_eq!(call(&server, get("/v1/docs/demo", Some("forged"))).await.0, StatusCode::UNAUTHORIZED);

    // A student's resume token works, as does the teacher key.
    let (_s, welcome) = server.student("A", &common::device(1)).await;
    let token = welcome["token"].as_str().unwrap();
    let (status, headers, body) = call(&server, get("/v1/docs/demo", Some(token))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with(b"%PDF-"));
    let sha = welcome["state"]["doc"]["sha256"].as_str().unwrap();
    assert_eq!(headers[header::ETAG], format!("\"{sha}\"").as_str());
    assert_eq!(headers[header::CONTENT_TYPE], "application/pdf");

    let cached = Request::get("/v1/docs/demo")
        .header(header::AUTHORIZATION, format!("Bearer {}", server.teacher_key))
        .header(header::IF_NONE_MATCH, format!("\"{sha}\""))
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&server, cached).await.0, StatusCode::NOT_MODIFIED);

    let ranged = Request::get("/v1/docs/demo")
        .header(header::AUTHORIZATION, format!("Bearer {}", server.teacher_key))
        .header(header::RANGE, "bytes=0-7")
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = call(&server, ranged).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body.len(), 8);

    assert_eq!(call(&server, get("/v1/docs/nope", Some(&server.teacher_key))).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_teacher_uploads_pdfs_and_a_non_pdf_gets_400_with_the_reason() {
    let server = TestServer::start().await;
    let post = |body: Vec<u8>, bearer: &str| {
        Request::post("/v1/docs?title=Mushaf%20page")
            .header(header::AUTHORIZATION, format!("Bearer {bearer}"))
            .body(Body::from(body))
            .unwrap()
    };
    let (status, _, body) = call(&server, post(b"not a pdf".to_vec(), &server.teacher_key)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let err: Value = serde_json::from_slice(&body).unwrap();
    assert!(err["error"].as_str().unwrap().contains("not a readable PDF"), "{err}");

    let pdf = lectern::demo::demo_pdf().unwrap();
    let mut other = pdf.clone();
    other.extend_from_slice(b"\n% a different file\n");
    let (status, _, body) = call(&server, post(other, &server.teacher_key)).await;
    assert_eq!(status, StatusCode::CREATED);
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["title"], "Mushaf page");
    assert_eq!(doc["pages"], 12);
    assert_eq!(doc["sha256"].as_str().unwrap().len(), 64);

    // Students may not upload or list.
    let (_s, welcome) = server.student("A", &common::device(1)).await;
    let token = welcome["token"].as_str().unwrap();
    assert_eq!(call(&server, post(pdf, token)).await.0, StatusCode::FORBIDDEN);
    let (status, _, body) = call(&server, get("/v1/docs", Some(&server.teacher_key))).await;
    assert_eq!(status, StatusCode::OK);
    let list: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(list["docs"].as_array().unwrap().len(), 2);
    // The uploaded document can be opened by `set`.
    let (mut t, _) = server.teacher().await;
    t.send(serde_json::json!({"t":"set","id":1,"patch":{"doc":doc["id"]}})).await;
    assert_eq!(t.recv_type("patch").await["patch"]["doc"]["title"], "Mushaf page");
}

#[tokio::test]
async fn health_and_metrics_answer() {
    let server = TestServer::start().await;
    let (status, _, body) = call(&server, get("/healthz", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["status"], "ok");
    let (_t, _) = server.teacher().await;
    let (mut t2, _) = server.teacher().await;
    t2.send(serde_json::json!({"t":"set","id":1,"patch":{"page":2}})).await;
    t2.recv_type("ok").await;
    let (status, headers, body) = call(&server, get("/metrics", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/plain"));
    let text = String::from_utf8(body).unwrap();
    for needle in [
        "lectern_patches_total 1",
        "lectern_fanout_seconds_bucket",
        "lectern_connections{role=\"teacher\"}",
        "lectern_conflations_total",
        "lectern_rejected_frames_total{reason=\"protocol\"}",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}

#[tokio::test]
async fn metrics_answer_only_this_machine_or_the_teacher_by_default() {
    let server = TestServer::start().await;
    let from_lan = |bearer: Option<&str>| {
        let mut req = get("/metrics", bearer);
        req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([192, 168, 1, 23], 40000))));
        req
    };
    let (status, _, body) = call(&server, from_lan(None)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a stranger on the LAN reads the metrics");
    assert!(!String::from_utf8_lossy(&body).contains("lectern_"), "and no metric leaks in the refusal");
    let (_, welcome) = server.student("Curious", &common::device(3)).await;
    let token = welcome["token"].as_str().unwrap();
    let (status, _, _) = call(&server, from_lan(Some(token))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a student's token is not enough");
    let (status, _, body) = call(&server, from_lan(Some(&server.teacher_key))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8(body).unwrap().contains("lectern_patches_total"));
}

#[tokio::test]
async fn an_upload_without_the_teacher_key_is_refused_before_its_body_is_read() {
    let server = TestServer::start().await;
    // A body that fails if anyone reads it: a 401 proves the handler did not.
    let body = Body::from_stream(futures_util::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::other("the body was read"))
    }));
    let req = Request::post("/v1/docs").body(body).unwrap();
    assert_eq!(call(&server, req).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_upload_that_says_it_is_too_large_gets_413_before_its_body_is_read() {
    let server = TestServer::start().await;
    // The teacher's own key, 300 MiB declared, and a body that fails if anyone reads it.
    let body = Body::from_stream(futures_util::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::other("the body was read"))
    }));
    let req = Request::post("/v1/docs")
        .header(header::AUTHORIZATION, format!("Bearer {}", server.teacher_key))
        .header(header::CONTENT_LENGTH, (300u64 << 20).to_string())
        .body(body)
        .unwrap();
    let (status, _, body) = call(&server, req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(String::from_utf8(body).unwrap().contains("at most 200 MiB"));
}

#[tokio::test]
async fn the_web_ui_is_served_with_its_pages_a_policy_and_revalidation() {
    let server = TestServer::start().await;
    for path in ["/", "/join", "/teacher"] {
        let (status, headers, body) = call(&server, get(path, None)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"), "{path}");
        assert!(headers.contains_key(header::CONTENT_SECURITY_POLICY), "{path}");
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache", "{path}");
        assert!(String::from_utf8(body).unwrap().contains("<title>"), "{path}");
        // A browser's revalidation gets 304 with the same ETag and caching policy.
        let etag = headers[header::ETAG].to_str().unwrap().to_string();
        let again = Request::get(path).header(header::IF_NONE_MATCH, &etag).body(Body::empty()).unwrap();
        let (status, headers, body) = call(&server, again).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(headers[header::ETAG].to_str().unwrap(), etag);
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        assert!(body.is_empty());
    }
    let (status, _, _) = call(&server, get("/assets/nothing-here.js", None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The API is not shadowed by the UI.
    let (status, _, _) = call(&server, get("/v1/info", None)).await;
    assert_eq!(status, StatusCode::OK);
}

/// A two-page scanned book: page 1 one full-page JPEG (its bytes `jpeg`), page 2 a drawn line.
fn scanned_book(jpeg: &[u8]) -> Vec<u8> {
    use common::books::{Page, pdf_of};
    pdf_of(vec![Page::Scan(jpeg.to_vec()), Page::Drawn("0 0 m 595 842 l S")])
}

#[tokio::test]
async fn a_student_learns_which_pages_are_scans_and_fetches_a_scan_as_its_jpeg_range() {
    let server = TestServer::start().await;
    // A JPEG's shape: start of image, a frame of one (grey) component, a scan, the end.
    let jpeg = [0xff, 0xd8, 0xff, 0xc0, 0, 8, 8, 0, 4, 0, 4, 1, 0xff, 0xda, 0, 2, 9, 8, 7, 0xff, 0xd9];
    let upload = Request::post("/v1/docs?title=Scans")
        .header(header::AUTHORIZATION, format!("Bearer {}", server.teacher_key))
        .body(Body::from(scanned_book(&jpeg)))
        .unwrap();
    let (status, _, body) = call(&server, upload).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = serde_json::from_slice::<Value>(&body).unwrap()["id"].as_str().unwrap().to_string();
    let scan = format!("/v1/docs/{id}/scan");
    assert_eq!(call(&server, get(&scan, None)).await.0, StatusCode::UNAUTHORIZED);

    let (_s, welcome) = server.student("A", &common::device(1)).await;
    let token = welcome["token"].as_str().unwrap();
    // A student's token fetches only the document the lesson shows, not the teacher's library.
    assert_eq!(call(&server, get(&scan, Some(token))).await.0, StatusCode::FORBIDDEN);
    assert_eq!(call(&server, get(&format!("/v1/docs/{id}"), Some(token))).await.0, StatusCode::FORBIDDEN);
    let (mut teacher, _) = server.teacher().await;
    teacher.send(serde_json::json!({"t":"set","id":1,"patch":{"doc":id}})).await;
    teacher.recv_type("ok").await;
    let (status, _, body) = call(&server, get(&scan, Some(token))).await;
    assert_eq!(status, StatusCode::OK);
    let index: Value = serde_json::from_slice(&body).unwrap();
    // A browser gets it gzipped.
    let zipped = Request::get(&scan)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::ACCEPT_ENCODING, "gzip")
        .body(Body::empty())
        .unwrap();
    let (_, headers, zipped) = call(&server, zipped).await;
    assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
    let mut unpacked = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(zipped.as_slice()), &mut unpacked).unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&unpacked).unwrap(), index);
    let pages = index["pages"].as_array().unwrap();
    assert_eq!(pages.len(), 2);
    assert!(pages[1].is_null(), "a drawn page is pdf.js's: {index}");
    let [offset, length, width, height] = [0, 1, 2, 3].map(|i| pages[0][i].as_u64().unwrap());
    assert_eq!((width, height), (595, 842));
    // The page's JPEG is that range of the document, fetched like any other range.
    let ranged = Request::get(format!("/v1/docs/{id}"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::RANGE, format!("bytes={offset}-{}", offset + length - 1))
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = call(&server, ranged).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, jpeg);
    // When the teacher turns back to the demo, a download of the scans under way is not cut off.
    teacher.send(serde_json::json!({"t":"set","id":2,"patch":{"doc":"demo"}})).await;
    teacher.recv_type("ok").await;
    assert_eq!(call(&server, get(&format!("/v1/docs/{id}"), Some(token))).await.0, StatusCode::OK);

    // The demo lesson is drawn, not scanned.
    let (_, _, body) = call(&server, get("/v1/docs/demo/scan", Some(&server.teacher_key))).await;
    let demo: Value = serde_json::from_slice(&body).unwrap();
    assert!(demo["pages"].as_array().unwrap().iter().all(Value::is_null), "{demo}");
    let nope = get("/v1/docs/nope/scan", Some(&server.teacher_key));
    assert_eq!(call(&server, nope).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_ui_scripts_are_sent_compressed_to_a_browser_that_takes_it() {
    use std::io::Read;
    let server = TestServer::start().await;
    let (_, _, html) = call(&server, get("/", None)).await;
    let html = String::from_utf8(html).unwrap();
    let script =
        html.split("src=\"").nth(1).and_then(|s| s.split('"').next()).expect("the built UI has a script");
    let (status, plain_headers, plain) = call(&server, get(script, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!plain_headers.contains_key(header::CONTENT_ENCODING));
    for (accept, coding) in [("gzip, deflate, br", "br"), ("gzip", "gzip"), ("br;q=0, gzip", "gzip")] {
        let req = Request::get(script).header(header::ACCEPT_ENCODING, accept).body(Body::empty()).unwrap();
        let (status, headers, body) = call(&server, req).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_ENCODING], coding, "{accept}");
        assert_eq!(headers[header::VARY], "accept-encoding");
        assert!(headers[header::CONTENT_TYPE].to_str().unwrap().contains("javascript"));
        assert_ne!(headers[header::ETAG], plain_headers[header::ETAG], "each form has its own tag");
        assert!(body.len() < plain.len() / 2, "{coding}: {} of {} bytes", body.len(), plain.len());
        if coding == "gzip" {
            let mut unpacked = Vec::new();
            flate2::read::GzDecoder::new(body.as_slice()).read_to_end(&mut unpacked).unwrap();
            assert_eq!(unpacked, plain);
        }
    }
}

/// Every refusal has one shape, `{"error":"…"}`, whichever route gives it (issue 23): pages, the
/// fallback transport and the API alike.
#[tokio::test]
async fn every_error_answer_has_one_shape() {
    let server = TestServer::start().await;
    let sse = |body: &'static str| Request::post("/v1/sse").body(Body::from(body)).unwrap();
    for (req, status) in [
        (get("/no/such/page.js", None), StatusCode::NOT_FOUND),
        (get("/v1/docs/demo", None), StatusCode::UNAUTHORIZED),
        (get("/v1/sse", Some("no-such-link")), StatusCode::NOT_FOUND),
        (sse("{\"t\":\"ping\"}"), StatusCode::BAD_REQUEST),
    ] {
        let (got, headers, body) = call(&server, req).await;
        assert_eq!(got, status);
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    }
}
