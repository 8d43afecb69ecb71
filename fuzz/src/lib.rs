//! What each fuzz target checks (docs/FUZZING.md). Every check takes the fuzzer's raw bytes and
//! panics only on a real fault: a panic inside Lectern's code, or a property of what it accepted
//! that does not hold. The same functions replay the committed corpus as ordinary tests
//! (`src-server/tests/fuzz_corpus.rs` compiles this file), so every input that once found a fault
//! stays a test on the stable toolchain.

#[path = "../../src-server/src/docs/pdf.rs"]
mod pdf;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lectern_protocol::WS_PATH;
use lectern_protocol::link::{JoinLink, Txt};
use lectern_protocol::sign::{Signer, Verifier};
use lectern_protocol::signed::{Kind, Signed};
use lectern_protocol::{ClientMsg, Doc, LessonState, ParseError, SetPatch};

/// A client's frame, as the server reads every text frame (§3–§7): parsing never panics, an error
/// says what is wrong, and what parses encodes and parses back to the same message.
pub fn client_frame(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match ClientMsg::parse(text) {
        Ok(msg) => {
            let again = serde_json::to_string(&msg).expect("a parsed frame encodes");
            let back = ClientMsg::parse(&again).expect("a frame the server encoded parses again");
            assert_eq!(format!("{msg:?}"), format!("{back:?}"), "a frame changed on its way round");
        }
        Err(ParseError::NotJson(message) | ParseError::BadRequest { message, .. }) => {
            assert!(!message.is_empty(), "an error says what is wrong");
        }
    }
}

/// The documents a `set` may name in [`set_patch`]: one of 3 pages, one of 604 (a Mushaf).
fn library(id: &str) -> Option<Doc> {
    let doc = |pages| Doc {
        id: id.to_string(),
        title: id.to_uppercase(),
        pages,
        sha256: "0".repeat(64),
        manifest: None,
    };
    match id {
        "short" => Some(doc(3)),
        "mushaf" => Some(doc(604)),
        _ => None,
    }
}

/// A teacher's `set` requests, one JSON object per line, each validated against the state the ones
/// before it left and applied when accepted (§5): validation never panics, and no accepted patch
/// leaves a page outside its document, a coordinate outside the page, or a state that does not
/// survive the wire.
pub fn set_patch(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut state = LessonState::new(None);
    for line in text.lines().take(64) {
        let Ok(set) = serde_json::from_str::<SetPatch>(line) else { continue };
        let Ok(patch) = state.validate(set, library) else { continue };
        state.apply(&patch);
        let pages = state.doc.as_ref().map_or(1, |d| d.pages);
        assert!((1..=pages).contains(&state.page), "page {} of {pages}", state.page);
        if let Some(p) = state.pos {
            assert!((0.0..=1.0).contains(&p.x) && (0.0..=1.0).contains(&p.y), "pointer off the page");
        }
        if let Some(h) = state.highlight {
            assert!((1..=pages).contains(&h.page), "highlight on page {} of {pages}", h.page);
            assert!(h.x + h.w <= 1.0 + 1e-9 && h.y + h.h <= 1.0 + 1e-9, "highlight past the edge");
        }
        if let Some(r) = state.view {
            assert!(r.x + r.w <= 1.0 + 1e-9 && r.y + r.h <= 1.0 + 1e-9, "region past the edge");
        }
        use lectern_protocol::marks::{MAX_MARKS, MAX_MARKS_PER_PAGE};
        assert!(state.marks.len() <= MAX_MARKS, "{} marks", state.marks.len());
        for page in 1..=pages {
            let list = state.marks.page(page);
            assert!(list.len() <= MAX_MARKS_PER_PAGE, "{} marks on page {page}", list.len());
            assert!(
                list.iter().all(|m| m.x + m.w <= 1.0 + 1e-9 && m.y + m.h <= 1.0 + 1e-9),
                "a mark past the edge"
            );
        }
        let wire = serde_json::to_string(&state).expect("a state encodes");
        let back: LessonState = serde_json::from_str(&wire).expect("a state decodes");
        assert_eq!(back, state, "a state changed on the wire");
        assert_eq!(
            back.marks.layer_digest(),
            state.marks.layer_digest(),
            "the marks' digest changed on the wire"
        );
    }
}

/// The teacher's ink (PROTOCOL-ADDITIONS.md section M), driven from bytes so that most inputs are
/// strokes the decoder reads: each 8-byte record (a kind, a page, an id, a width, a start and a
/// count of points, then that many 5-byte points) becomes a `set` as JSON (a step of the stroke being
/// drawn, a kept stroke with its box right or wrong, an end, a removal), decoded, validated against
/// the state the ones before left and applied. Nothing panics, and what is accepted holds: the
/// stroke being drawn is the points its steps added, in order; every kept point is on the page; the
/// caps hold; and the state survives the wire with the same digest.
pub fn ink(data: &[u8]) {
    use lectern_protocol::ink::{MAX_STROKE_POINTS, POINT_SCALE, span};
    use lectern_protocol::marks::{MAX_MARKS_PER_PAGE, MAX_POINTS, MAX_POINTS_PER_PAGE};
    let mut state = LessonState::new(library("short"));
    let mut rest = data;
    let mut steps = 0;
    while rest.len() >= 8 && steps < 64 {
        steps += 1;
        let (head, tail) = rest.split_at(8);
        let n = usize::from(head[7] % 40).min(tail.len() / 5);
        let (raw, tail) = tail.split_at(n * 5);
        rest = tail;
        let points: Vec<serde_json::Value> = raw
            .chunks(5)
            .map(|c| {
                let v = |a: u8, b: u8| u32::from(u16::from_le_bytes([a, b])) % 10_300;
                serde_json::json!([v(c[0], c[1]), v(c[2], c[3]), c[4] % 120])
            })
            .collect();
        let (page, id, width, from) = (head[1] % 5, u32::from(head[2] % 6), head[3] % 48, u32::from(head[4]));
        let color = ["black", "red", "blue", "green", "orange", "pink"][usize::from(head[5] % 6)];
        let set = match head[0] % 5 {
            0 | 1 => serde_json::json!({"live": {"id": id, "page": page, "color": color, "width": width,
                "laser": head[6] & 1 == 1, "from": from, "points": points}}),
            2 => {
                let parsed: Vec<[u16; 3]> =
                    serde_json::from_value(serde_json::json!(points)).unwrap_or_default();
                let [x, y, w, h] = if head[6] & 1 == 0 { span(&parsed) } else { [0.0, 0.0, 1.0, 1.0] };
                serde_json::json!({"live": null, "marks": [{"op": "add", "page": page, "mark":
                    {"id": id, "x": x, "y": y, "w": w, "h": h, "ink": {"color": color, "width": width, "points": points}}}]})
            }
            3 => serde_json::json!({"live": null}),
            _ => serde_json::json!({"marks": [{"op": "remove", "page": page, "id": id}]}),
        };
        let Ok(set) = serde_json::from_value::<SetPatch>(set) else { continue };
        let before = state.live.clone();
        let Ok(patch) = state.validate(set, library) else { continue };
        state.apply(&patch);
        if let Some(Some(step)) = &patch.live {
            let live = state.live.as_ref().expect("a step leaves a stroke being drawn");
            let mut expected =
                if step.from == 0 { Vec::new() } else { before.map(|l| l.points).unwrap_or_default() };
            expected.extend_from_slice(&step.points);
            assert_eq!(live.points, expected, "the stroke being drawn is its steps' points in order");
            assert!(live.points.len() <= MAX_STROKE_POINTS && (1..=3).contains(&live.page));
        }
        let mut total = 0;
        for page in 1..=3 {
            let list = state.marks.page(page);
            let points: usize = list.iter().map(|m| m.points()).sum();
            assert!(list.len() <= MAX_MARKS_PER_PAGE && points <= MAX_POINTS_PER_PAGE);
            for m in list {
                let ink = m.ink.as_ref().expect("only strokes are added");
                assert!(ink.points.iter().all(|p| p[0] <= POINT_SCALE && p[1] <= POINT_SCALE && p[2] <= 100));
            }
            total += points;
        }
        assert!(total == state.marks.points() && total <= MAX_POINTS, "points counted {total}");
        let wire = serde_json::to_string(&state).expect("a state encodes");
        let back: LessonState = serde_json::from_str(&wire).expect("a state decodes");
        assert_eq!(back, state, "a state changed on the wire");
        assert_eq!(back.marks.layer_digest(), state.marks.layer_digest(), "the digest changed on the wire");
    }
}

/// A join link or address as a student types, scans or clicks it: parsing never panics, and what
/// it yields is a `wss://` URL to the socket path that parses again to itself.
pub fn join_link(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(link) = JoinLink::parse(text) else { return };
    assert!(link.ws_url.starts_with("wss://") && link.ws_url.ends_with(WS_PATH), "{}", link.ws_url);
    let again = JoinLink::parse(&link.ws_url).expect("the server URL a link yields parses");
    if link.room.is_none() {
        assert_eq!(again.ws_url, link.ws_url, "a server URL parses to itself");
    }
}

/// An mDNS TXT record as it comes off the network (RFC 6763 §6: strings of a length byte and
/// `key=value`; the first of a key counts): reading never panics, and a record Lectern accepts
/// announces the same again.
pub fn txt_record(data: &[u8]) {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (item, tail) = tail.split_at(len);
        rest = tail;
        let item = String::from_utf8_lossy(item);
        let (k, v) = item.split_once('=').unwrap_or((&item, ""));
        let k = k.to_ascii_lowercase();
        if !k.is_empty() && !pairs.iter().any(|(have, _)| *have == k) {
            pairs.push((k, v.to_string()));
        }
    }
    let get =
        |pairs: &[(String, String)], key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let Some(txt) = Txt::read(|key| get(&pairs, key)) else { return };
    let announced = txt.pairs();
    let again = Txt::read(|key| get(&announced, key)).expect("a record Lectern read, it reads again");
    assert_eq!(again, txt, "a TXT record changed on its way round");
}

/// A document upload's check (§9): counting a PDF's pages never panics, whatever the bytes.
pub fn pdf_check(data: &[u8]) {
    if let Ok(pages) = pdf::count_pages(data) {
        assert!(pages >= 1, "an accepted PDF has a page");
    }
}

/// What a hostile relay can put before a client (PROTOCOL-ADDITIONS.md, E): a signature, its epoch,
/// seq, counter and state. Checking never panics, and nothing passes but the teacher's own
/// signature of exactly that state, room, epoch, seq and counter.
pub fn signed_state(data: &[u8]) {
    #[derive(serde::Deserialize)]
    struct Claim {
        beat: bool,
        epoch: u64,
        seq: u64,
        n: u64,
        sig: String,
        state: LessonState,
    }
    let signer = Signer::from_secret([7; 32]);
    let room = "r-fuzz";
    let verifier = Verifier::new(&signer.public(), room).expect("a key");
    let claim = match serde_json::from_slice::<Claim>(data) {
        Ok(claim) => claim,
        // Raw bytes: a 64-byte signature of the first state, at numbers taken from the input.
        Err(_) => {
            let mut word = [0u8; 8];
            let mut take = |at: usize| {
                let end = data.len().min(at + 8);
                word = [0; 8];
                word[..end.saturating_sub(at)].copy_from_slice(data.get(at..end).unwrap_or_default());
                u64::from_le_bytes(word)
            };
            let (epoch, seq, n) = (take(0), take(8), take(16));
            let sig = data.get(24..).unwrap_or_default();
            Claim {
                beat: n % 2 == 1,
                epoch,
                seq,
                n,
                sig: URL_SAFE_NO_PAD.encode(sig),
                state: LessonState::new(None),
            }
        }
    };
    let kind = if claim.beat { Kind::Beat } else { Kind::State };
    let n = if claim.beat { claim.n } else { 0 };
    let signed = Signed { epoch: claim.epoch, sig: claim.sig };
    if verifier.check(kind, claim.seq, n, &claim.state, &signed) {
        let own = signer.sign(kind, room, claim.epoch, claim.seq, n, &claim.state);
        assert_eq!(own.sig, signed.sig, "a signature the teacher never made was accepted");
    }
}
