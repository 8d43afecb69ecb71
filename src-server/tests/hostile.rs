//! Protects the server from its peers: no frame a student or teacher can send makes it panic, and after
//! thousands of malformed, oversized, mistyped and out-of-role frames the lesson still works.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{TestServer, device};
use futures_util::SinkExt;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

fn random_value(rng: &mut rand::rngs::StdRng, depth: u32) -> Value {
    match rng.random_range(0..if depth > 3 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.random::<bool>()),
        2 => json!(rng.random::<i64>()),
        3 => json!(rng.random::<f64>() * 1e6 - 5e5),
        4 => json!(["", "x", "follow", "free", "demo", "p1", "ب", "\u{0}", "🙂"][rng.random_range(0..9)]),
        5 => json!(u64::MAX),
        6 => Value::Array((0..rng.random_range(0..4)).map(|_| random_value(rng, depth + 1)).collect()),
        _ => {
            let keys = [
                "t",
                "id",
                "v",
                "patch",
                "page",
                "pos",
                "x",
                "y",
                "zoom",
                "highlight",
                "doc",
                "mode",
                "notice",
                "ended",
                "seq",
                "up",
                "who",
                "code",
                "key",
                "resume",
                "name",
                "device",
                "role",
                "w",
                "h",
            ];
            let mut m = serde_json::Map::new();
            for _ in 0..rng.random_range(0..6) {
                m.insert(keys[rng.random_range(0..keys.len())].into(), random_value(rng, depth + 1));
            }
            Value::Object(m)
        }
    }
}

fn random_frame(rng: &mut rand::rngs::StdRng) -> String {
    // Everything but "end", which legitimately ends the lesson (tested on its own).
    let types = ["hello", "set", "resync", "ack", "hand", "view", "kick", "ping", "pong", "welcome", ""];
    match rng.random_range(0..10) {
        0 => (0..rng.random_range(0..64)).map(|_| rng.random_range(32u8..127) as char).collect(),
        1 => format!("{}{}", "[".repeat(200), "]".repeat(200)),
        2 => "{\"t\":\"set\",\"patch\":".repeat(50),
        _ => {
            let mut v = random_value(rng, 0);
            if let Value::Object(m) = &mut v {
                m.insert("t".into(), json!(types[rng.random_range(0..types.len())]));
                if rng.random_bool(0.5) {
                    m.insert("patch".into(), random_value(rng, 1));
                }
            }
            v.to_string()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_hostile_frames_never_panic_the_server() {
    let panics = Arc::new(AtomicUsize::new(0));
    let seen = panics.clone();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        seen.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));

    let server = TestServer::with(|l, _| {
        l.student_rate = 100_000;
        l.student_burst = 100_000;
        l.teacher_rate = 100_000;
        l.teacher_burst = 100_000;
        l.failed_hellos_per_minute = 100_000;
    })
    .await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x1ec7e4);
    let mut closes = 0;
    for round in 0..40 {
        let (mut conn, _) = if round % 2 == 0 {
            server.teacher().await
        } else {
            server.student(&format!("Fuzz {round}"), &device(round)).await
        };
        for _ in 0..100 {
            if conn.ws.feed(Message::text(random_frame(&mut rng))).await.is_err() {
                break;
            }
        }
        let _ = conn.ws.flush().await;
        conn.ws.send(Message::text(r#"{"t":"ping","id":424242}"#)).await.ok();
        let (end, _frames) = {
            let _ = conn.ws.close(None).await;
            conn.until_end().await
        };
        if matches!(end, common::End::Close(4400 | 4003, _)) {
            closes += 1;
        }
    }
    // Hellos with random content, before joining.
    for _ in 0..200 {
        let mut raw = server.raw().await;
        let mut hello = random_value(&mut rng, 1);
        if let Value::Object(m) = &mut hello {
            m.insert("t".into(), json!("hello"));
        }
        raw.send_text(&hello.to_string()).await;
        let _ = raw.until_end().await;
    }
    assert!(closes > 0, "some rounds must have hit protocol violations");

    // The lesson still works: a new student can join and follow a change.
    let (mut t, _) = server.teacher().await;
    let (mut s, _) = server.student("After", &device(9999)).await;
    t.send(json!({"t":"set","id":1,"patch":{"notice":"still here"}})).await;
    t.recv_type("ok").await;
    assert_eq!(s.recv_type("patch").await["patch"]["notice"], "still here");
    assert_eq!(panics.load(Ordering::SeqCst), 0, "the server panicked");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parsing_any_text_never_panics(s in ".{0,200}") {
        let _ = lectern::protocol::ClientMsg::parse(&s);
    }

    #[test]
    fn validating_any_set_never_panics(page in any::<u32>(), zoom in any::<f64>(), x in any::<f64>(), y in any::<f64>(),
                                       w in any::<f64>(), h in any::<f64>(), notice in ".{0,300}") {
        let state = lectern::protocol::LessonState::new(Some(lectern::protocol::Doc {
            id: "d".into(), title: "D".into(), pages: 10, sha256: "00".into(), manifest: None }));
        let set = lectern::protocol::SetPatch {
            page: Some(page),
            zoom: Some(zoom),
            pos: Some(Some(lectern::protocol::Pos { x, y })),
            highlight: Some(Some(lectern::protocol::Highlight { page, x, y, w, h })),
            notice: Some(Some(notice)),
            ..Default::default()
        };
        if let Ok(patch) = state.validate(set, |_| None) {
            let mut s = state.clone();
            s.apply(&patch);
            prop_assert!(s.page >= 1 && s.page <= 10);
            prop_assert!((0.25..=8.0).contains(&s.zoom));
        }
    }

    /// Any region and any marks a teacher (or a bored student's forged frame) can send: refused or
    /// applied, never a panic, and what is kept stays on the page and within the caps.
    #[test]
    fn any_view_and_marks_are_refused_or_kept_in_bounds(
        view in proptest::option::of((any::<f64>(), any::<f64>(), any::<f64>(), any::<f64>())),
        ops in proptest::collection::vec((0u8..3, 0u32..14, 0u32..4, -0.1f64..1.1, -0.1f64..1.1, 0.0f64..1.2, 0.0f64..1.2), 0..40),
    ) {
        use lectern::protocol::{Mark, MarkOp, Region};
        let mut state = lectern::protocol::LessonState::new(Some(lectern::protocol::Doc {
            id: "d".into(), title: "D".into(), pages: 10, sha256: "00".into(), manifest: None }));
        let marks: Vec<MarkOp> = ops.iter().map(|&(kind, page, id, x, y, w, h)| match kind {
            0 => MarkOp::Add { page, mark: Mark { id, x, y, w, h, ink: None } },
            1 => MarkOp::Remove { page, id },
            _ => MarkOp::Clear { page },
        }).collect();
        let set = lectern::protocol::SetPatch {
            view: Some(view.map(|(x, y, w, h)| Region { x, y, w, h })),
            marks: Some(marks),
            ..Default::default()
        };
        if let Ok(patch) = state.validate(set, |_| None) {
            state.apply(&patch);
            if let Some(r) = state.view {
                prop_assert!(r.x >= 0.0 && r.y >= 0.0 && r.x + r.w <= 1.0 + 1e-9 && r.y + r.h <= 1.0 + 1e-9);
                prop_assert!(r.w.max(r.h) >= 1.0 / 8.0 - 1e-9);
            }
            for page in 1..=10 {
                for m in state.marks.page(page) {
                    prop_assert!(m.x.is_finite() && m.x + m.w <= 1.0 + 1e-9 && m.y + m.h <= 1.0 + 1e-9);
                }
            }
            prop_assert!(state.marks.page(0).is_empty() && state.marks.page(11).is_empty());
        }
    }

    /// Any strokes and live steps a teacher's console (or a forged frame) can send, one `set` after
    /// another: refused whole or applied, never a panic; what is kept is on the page, within the caps,
    /// and the stroke being drawn is the points its steps added, in order.
    #[test]
    fn any_ink_is_refused_whole_or_kept_in_bounds(
        sets in proptest::collection::vec((
            0u32..12,
            0u32..4,
            any::<bool>(),
            0u8..45,
            0u32..8,
            proptest::collection::vec((0u16..10_100, 0u16..10_100, 0u16..110), 0..12),
            any::<bool>(),
        ), 1..30),
    ) {
        use lectern::protocol::{Ink, InkColor, LiveStep, Mark, MarkOp, SetPatch};
        use lectern::protocol::ink::{MAX_STROKE_POINTS, POINT_SCALE, span};
        let mut state = lectern::protocol::LessonState::new(Some(lectern::protocol::Doc {
            id: "d".into(), title: "D".into(), pages: 10, sha256: "00".into(), manifest: None }));
        for (page, id, keep, width, from, points, honest_box) in sets {
            let points: Vec<[u16; 3]> = points.into_iter().map(|(x, y, p)| [x, y, p]).collect();
            let set = if keep {
                let [x, y, w, h] = if honest_box { span(&points) } else { [0.0, 0.0, 0.5, 0.5] };
                let ink = Some(Ink { color: InkColor::Blue, width, points });
                SetPatch { live: Some(None), marks: Some(vec![MarkOp::Add { page, mark: Mark { id, x, y, w, h, ink } }]), ..Default::default() }
            } else {
                let step = LiveStep { id, page, color: InkColor::Red, width, laser: false, from, points };
                SetPatch { live: Some(Some(step)), ..Default::default() }
            };
            let before = state.live.as_ref().map_or(0, |l| l.points.len());
            let Ok(patch) = state.validate(set, |_| None) else { continue };
            state.apply(&patch);
            if let Some(Some(step)) = &patch.live {
                let live = state.live.as_ref().expect("a step leaves a stroke being drawn");
                let had = if step.from == 0 { 0 } else { before };
                prop_assert_eq!(live.points.len(), had + step.points.len());
                prop_assert!(live.points.len() <= MAX_STROKE_POINTS && (1..=10).contains(&live.page));
            }
            let mut counted = 0;
            for page in 1..=10 {
                for m in state.marks.page(page) {
                    let ink = m.ink.as_ref().expect("only strokes are added here");
                    prop_assert!(ink.points.iter().all(|p| p[0] <= POINT_SCALE && p[1] <= POINT_SCALE && p[2] <= 100));
                    prop_assert!((1..=40).contains(&ink.width));
                    counted += ink.points.len();
                }
            }
            prop_assert_eq!(counted, state.marks.points());
        }
    }
}
