//! What signing a pointer move costs with the pages full of ink, against a lesson without any
//! (PROTOCOL-ADDITIONS.md sections L and M: the signature covers each page's marks by its digest, so
//! the cost must not grow with them). The full lesson holds the most a lesson keeps: 10,000 strokes
//! of 20 points, 2,000 on each of 5 pages. Both are measured in one run, alternating:
//!
//!   cargo run --release -p lectern-protocol --example sign_cost
//!
//! Each round applies a pointer move to the state and signs it, as the teacher's server does for
//! every change behind a relay.

use std::time::Instant;

use lectern_protocol::ink::{Ink, InkColor, span};
use lectern_protocol::marks::{MAX_MARK_OPS, MAX_MARKS, MAX_MARKS_PER_PAGE};
use lectern_protocol::sign::Signer;
use lectern_protocol::signed::Kind;
use lectern_protocol::{Doc, LessonState, Mark, MarkOp, Patch, Pos};

fn lesson(marks: usize) -> LessonState {
    let doc = Doc { id: "d".into(), title: "D".into(), pages: 604, sha256: "00".into(), manifest: None };
    let mut state = LessonState::new(Some(doc));
    let ops: Vec<MarkOp> = (0..marks)
        .map(|i| {
            let y = (i % 90) as u16 * 100 + 500;
            let points: Vec<_> = (0..20).map(|j| [500 + j * 400, y + j % 3 * 10, 40 + j]).collect();
            let [x, y, w, h] = span(&points);
            let ink = Some(Ink { color: InkColor::Red, width: 3, points });
            MarkOp::Add {
                page: 1 + (i / MAX_MARKS_PER_PAGE) as u32,
                mark: Mark { id: i as u32, x, y, w, h, ink },
            }
        })
        .collect();
    for chunk in ops.chunks(MAX_MARK_OPS) {
        state.apply(&Patch { marks: Some(chunk.to_vec()), ..Patch::default() });
    }
    assert_eq!((state.marks.len(), state.marks.points()), (marks, marks * 20));
    assert!(state.marks.within_caps(None));
    state
}

/// Nanoseconds per pointer move signed, over `n` moves.
fn per_move(signer: &Signer, state: &mut LessonState, n: u32) -> f64 {
    let started = Instant::now();
    for i in 0..n {
        let pos = Pos { x: f64::from(i % 1000) / 1000.0, y: 0.5 };
        state.apply(&Patch { pos: Some(Some(pos)), ..Patch::default() });
        std::hint::black_box(signer.sign(Kind::State, "room", 1, u64::from(i), 0, state));
    }
    started.elapsed().as_nanos() as f64 / f64::from(n)
}

fn main() {
    let signer = Signer::from_secret([7; 32]);
    let mut empty = lesson(0);
    let mut full = lesson(MAX_MARKS);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        a.push(per_move(&signer, &mut empty, 20_000));
        b.push(per_move(&signer, &mut full, 20_000));
    }
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (a, b) = (a[2], b[2]);
    println!("a pointer move signed, median of 5 rounds of 20,000:");
    println!("  no ink:                        {:.1} µs", a / 1000.0);
    println!(
        "  {MAX_MARKS} strokes on {} pages: {:.1} µs ({:.2}×)",
        MAX_MARKS / MAX_MARKS_PER_PAGE,
        b / 1000.0,
        b / a
    );
}
