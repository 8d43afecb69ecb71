//! Uploads (issue 15, finding 6): streamed to disk, never held in memory, and checked by
//! `lectern check-pdf` in a process of its own whose memory is capped, so a PDF built to exhaust
//! memory is refused with a reason and the lesson goes on.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use axum::body::Bytes;
use common::books::many_objects;
use lectern::client::fetch::request;

/// The server's peak resident memory, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_pdf_built_to_exhaust_memory_is_refused_and_the_server_never_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lectern"));
    cmd.args(["serve", "--json", "--no-mdns", "--listen", "127.0.0.1:0", "--data-dir"]).arg(dir.path());
    cmd.env("LECTERN_PDF_CHECK_MEMORY", (48u64 << 20).to_string());
    let (server, ready) = common::ServeProcess::spawn(cmd);
    let base = ready.http.clone();
    let upload = |pdf: Vec<u8>, title: &str| {
        let url = format!("{base}/v1/docs?title={title}");
        let (fp, key) = (ready.fingerprint.clone(), ready.teacher_key.clone());
        async move { request("POST", &url, &fp, Some(&key), Some(Bytes::from(pdf))).await.unwrap() }
    };
    let before = peak_rss_kib(server.id());

    // 13 MB of 300,000 tiny objects: parsing it takes several times that.
    let hostile = many_objects(300_000);
    let size_mib = hostile.len() >> 20;
    let answer = upload(hostile, "Bomb").await;
    assert_eq!(answer.status, 400, "{}", String::from_utf8_lossy(&answer.body));
    let said = String::from_utf8_lossy(&answer.body);
    assert!(said.contains("needs more than 48 MiB"), "the teacher is told why: {said}");
    let grew = peak_rss_kib(server.id()).saturating_sub(before);
    assert!(grew < 24 * 1024, "the server grew {grew} KiB for a {size_mib} MiB upload it streamed to disk");

    // The lesson goes on: a real PDF is taken, and nothing of the refused one is left behind.
    let answer = upload(many_objects(10), "Worksheet").await;
    assert_eq!(answer.status, 201, "{}", String::from_utf8_lossy(&answer.body));
    let left: Vec<_> = std::fs::read_dir(dir.path().join("docs"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("incoming"))
        .collect();
    assert!(left.is_empty(), "no upload is left half-kept: {left:?}");
}
