//! The fuzz corpus, replayed as ordinary tests (docs/FUZZING.md): every input under
//! `fuzz/corpus/<target>/` (the seeds and what longer runs kept) and `fuzz/regressions/<target>/`
//! (inputs that once found a fault) goes through the same check its fuzz target runs, on the stable
//! toolchain and without libFuzzer.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

#[path = "../../fuzz/src/lib.rs"]
mod checks;

use std::path::Path;

/// Runs `check` on every input of `target`; there must be some.
fn replay(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut inputs = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&bytes));
            assert!(outcome.is_ok(), "{} fails its check", path.display());
            inputs += 1;
        }
    }
    assert!(inputs > 0, "no corpus for {target}");
}

#[test]
fn client_frames() {
    replay("client_frame", checks::client_frame);
}

#[test]
fn set_patches() {
    replay("set_patch", checks::set_patch);
}

#[test]
fn ink() {
    replay("ink", checks::ink);
}

#[test]
fn join_links() {
    replay("join_link", checks::join_link);
}

#[test]
fn txt_records() {
    replay("txt_record", checks::txt_record);
}

#[test]
fn pdf_checks() {
    replay("pdf_check", checks::pdf_check);
}

#[test]
fn signed_states() {
    replay("signed_state", checks::signed_state);
}

/// Writes the seed inputs under `fuzz/corpus/` (what a fuzzer starts from): well-formed examples of
/// each input, which the committed corpus already holds. Run by hand after a wire change:
/// `cargo test -p lectern --test fuzz_corpus -- --ignored write_seeds`.
#[test]
#[ignore = "writes files; run by hand to renew the seeds"]
fn write_seeds() {
    use lectern::protocol::link::Txt;
    use lectern::protocol::sign::Signer;
    use lectern::protocol::signed::Kind;
    use lectern::protocol::{LessonState, Patch, Pos};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    };
    let frames = [
        r#"{"t":"hello","v":1,"role":"student","code":"123456","name":"Aisha","device":"dev-0000001"}"#,
        r#"{"t":"hello","v":1,"role":"teacher","key":"k","device":"teacher-1","resume":"a.b"}"#,
        r#"{"t":"hello","v":1,"role":"student","knock":true,"name":"Omar","device":"dev-0000002","room":"r1"}"#,
        r#"{"t":"set","id":1,"patch":{"doc":"short","page":2,"pos":{"x":0.5,"y":0.25},"zoom":1.5}}"#,
        r#"{"t":"set","id":2,"patch":{"highlight":{"page":1,"x":0.1,"y":0.1,"w":0.5,"h":0.2},"mode":"free","notice":"سورة"}}"#,
        r#"{"t":"ack","seq":12}"#,
        r#"{"t":"resync","id":3}"#,
        r#"{"t":"hand","up":true}"#,
        r#"{"t":"view","page":4}"#,
        r#"{"t":"kick","id":4,"who":"p1"}"#,
        r#"{"t":"end","id":5}"#,
        r#"{"t":"ping","id":6}"#,
        r#"{"t":"admit","id":7,"knocks":["k1","k2"]}"#,
        r#"{"t":"deny","id":8,"knocks":["k3"]}"#,
        r#"{"t":"new_code","id":9}"#,
        r#"{"t":"waiting_room","id":10,"on":true}"#,
        r#"{"t":"set","id":4294967296}"#,
        r#"[1,2,3]"#,
    ];
    for (i, f) in frames.iter().enumerate() {
        write("client_frame", &format!("{i:02}"), f.as_bytes());
    }
    let sets = [
        "{\"doc\":\"short\"}\n{\"page\":3}\n{\"highlight\":{\"page\":3,\"x\":0.5,\"y\":0.5,\"w\":0.5,\"h\":0.5}}\n{\"doc\":\"mushaf\",\"page\":604}",
        "{\"pos\":{\"x\":1.0,\"y\":0.0}}\n{\"zoom\":4}\n{\"mode\":\"free\"}\n{\"notice\":\"line\\nbreak\"}\n{\"doc\":null}",
        "{\"doc\":\"mushaf\",\"highlight\":{\"page\":600,\"x\":0,\"y\":0,\"w\":1,\"h\":1}}\n{\"doc\":\"short\"}",
        "{\"doc\":\"short\"}\n{\"live\":{\"id\":5,\"page\":1,\"color\":\"red\",\"width\":4,\"from\":0,\"points\":[[100,200,50],[300,400,60]]}}\n{\"live\":{\"id\":5,\"page\":1,\"color\":\"red\",\"width\":4,\"from\":2,\"points\":[[500,400,70]]}}\n{\"live\":null,\"marks\":[{\"op\":\"add\",\"page\":1,\"mark\":{\"id\":5,\"x\":0.01,\"y\":0.02,\"w\":0.04,\"h\":0.02,\"ink\":{\"color\":\"red\",\"width\":4,\"points\":[[100,200,50],[300,400,60],[500,400,70]]}}}]}",
        "{\"view\":{\"x\":0,\"y\":0.2,\"w\":1,\"h\":0.4}}\n{\"marks\":[{\"op\":\"add\",\"page\":2,\"mark\":{\"id\":1,\"x\":0.1,\"y\":0.2,\"w\":0.5,\"h\":0.1}}]}\n{\"marks\":[{\"op\":\"remove\",\"page\":2,\"id\":1},{\"op\":\"clear\",\"page\":3}]}\n{\"view\":null}",
    ];
    for (i, s) in sets.iter().enumerate() {
        write("set_patch", &format!("{i:02}"), s.as_bytes());
    }
    // Ink as the `ink` target reads it: 8-byte records (kind, page, id, width, from, colour, flags,
    // count) and their 5-byte points. A stroke drawn in two steps, kept, ended, then taken back.
    let point =
        |x: u16, y: u16, p: u8| [x.to_le_bytes().as_slice(), y.to_le_bytes().as_slice(), &[p]].concat();
    let mut ink = Vec::new();
    ink.extend_from_slice(&[0, 2, 1, 4, 0, 1, 0, 2]);
    ink.extend(point(1000, 2000, 50));
    ink.extend(point(1200, 2100, 60));
    ink.extend_from_slice(&[1, 2, 1, 4, 2, 1, 0, 1]);
    ink.extend(point(1400, 2300, 70));
    ink.extend_from_slice(&[2, 2, 1, 4, 0, 1, 0, 3]);
    ink.extend(point(1000, 2000, 50));
    ink.extend(point(1200, 2100, 60));
    ink.extend(point(1400, 2300, 70));
    ink.extend_from_slice(&[4, 2, 1, 0, 0, 0, 0, 0]);
    write("ink", "00", &ink);
    let laser =
        [[0u8, 1, 3, 6, 0, 0, 1, 1].as_slice(), &point(5000, 5000, 50), &[3, 0, 0, 0, 0, 0, 0, 0]].concat();
    write("ink", "01", &laser);
    let links = [
        "https://192.168.1.20:7443/join#code=123456&fp=sha256:ab",
        "wss://[fe80::1]:7443/v1/ws",
        "lectern.local",
        "https://relay.example:443/join#code=1&room=r1&pk=abc&fp=x%20y",
        "HTTPS://Host:/join#code",
    ];
    for (i, l) in links.iter().enumerate() {
        write("join_link", &format!("{i:02}"), l.as_bytes());
    }
    let txt = Txt {
        fingerprint: format!("sha256:{}", "ab".repeat(32)),
        room: "r0123abcd".into(),
        title: "Quran class — سورة البقرة".into(),
        path: "/v1/ws".into(),
        pk: Some("A".repeat(43)),
    };
    let mut record = Vec::new();
    for (k, v) in txt.pairs() {
        let item = format!("{k}={v}");
        record.push(u8::try_from(item.len()).unwrap());
        record.extend_from_slice(item.as_bytes());
    }
    write("txt_record", "00", &record);
    write("pdf_check", "00", &lectern::demo::demo_pdf().unwrap());
    write("pdf_check", "01", b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj 3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n");
    let signer = Signer::from_secret([7; 32]);
    let mut state = LessonState::new(None);
    state.apply(&Patch { page: Some(1), pos: Some(Some(Pos { x: 0.5, y: 0.5 })), ..Patch::default() });
    for (i, (beat, seq, n)) in [(false, 1u64, 0u64), (true, 9, 3)].into_iter().enumerate() {
        let kind = if beat { Kind::Beat } else { Kind::State };
        let signed = signer.sign(kind, "r-fuzz", 77, seq, n, &state);
        let claim =
            serde_json::json!({"beat":beat,"epoch":77,"seq":seq,"n":n,"sig":signed.sig,"state":state});
        write("signed_state", &format!("{i:02}"), claim.to_string().as_bytes());
    }
}
