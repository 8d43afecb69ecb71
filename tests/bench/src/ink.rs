//! The teacher's ink as the benchmark sends it (issue 25): `--ink` makes each change a step of the
//! stroke being drawn (two points, as a pen's coalesced events give per displayed frame), and every
//! 41st change keeps the 80-point stroke it finished; `--prefill N` first fills the lesson with N
//! kept strokes of 20 points, so a pointer move's cost can be compared with and without them.

use futures_util::{SinkExt, StreamExt};
use lectern::protocol::ink::span;
use lectern::protocol::marks::{MAX_MARK_OPS, MAX_MARKS_PER_PAGE};
use lectern::protocol::{ClientMsg, Ink, InkColor, LiveStep, Mark, MarkOp, SetPatch};
use tokio_tungstenite::tungstenite::Message;

/// Steps per stroke before it is kept, and points per step.
const STEPS: usize = 40;
const PER_STEP: usize = 2;

/// The points of step `k` of stroke `stroke`.
fn step_points(stroke: usize, k: usize) -> Vec<[u16; 3]> {
    let y = 1000 + (stroke % 80) as u16 * 100;
    (0..PER_STEP)
        .map(|j| [500 + (k * PER_STEP + j) as u16 * 100, y + (j as u16 % 2) * 20, 40 + k as u16])
        .collect()
}

/// Change `i` (1-based) of the ink workload.
pub fn change(i: usize) -> SetPatch {
    let (stroke, k) = ((i - 1) / (STEPS + 1), (i - 1) % (STEPS + 1));
    let id = stroke as u32 + 1;
    if k < STEPS {
        let step = LiveStep {
            id,
            page: 1,
            color: InkColor::Red,
            width: 4,
            laser: false,
            from: (k * PER_STEP) as u32,
            points: step_points(stroke, k),
        };
        return SetPatch { live: Some(Some(step)), ..SetPatch::default() };
    }
    let points: Vec<[u16; 3]> = (0..STEPS).flat_map(|k| step_points(stroke, k)).collect();
    let [x, y, w, h] = span(&points);
    let mark = Mark { id, x, y, w, h, ink: Some(Ink { color: InkColor::Red, width: 4, points }) };
    SetPatch { live: Some(None), marks: Some(vec![MarkOp::Add { page: 1, mark }]), ..SetPatch::default() }
}

/// Fills the lesson with `n` kept strokes of 20 points, 2,000 a page from page 2 on, and waits for
/// the server to accept every `set`.
pub async fn prefill(teacher: &mut lectern::client::Socket, n: usize) -> anyhow::Result<()> {
    let ops: Vec<MarkOp> = (0..n)
        .map(|i| {
            let y = 500 + (i % 90) as u16 * 100;
            let points: Vec<[u16; 3]> = (0..20).map(|j| [500 + j * 450, y + j % 3 * 15, 40 + j]).collect();
            let [x, y, w, h] = span(&points);
            let ink = Some(Ink { color: InkColor::Blue, width: 2, points });
            MarkOp::Add {
                page: 2 + (i / MAX_MARKS_PER_PAGE) as u32,
                mark: Mark { id: i as u32, x, y, w, h, ink },
            }
        })
        .collect();
    // One `set` at a time, each waiting for its `ok`: a teacher that sends megabytes without reading
    // its answers is a slow reader the server may cut off.
    for (id, chunk) in ops.chunks(MAX_MARK_OPS).enumerate() {
        let patch = SetPatch { marks: Some(chunk.to_vec()), ..SetPatch::default() };
        let msg = ClientMsg::Set { id: Some(id as u32 + 1), patch };
        teacher.send(Message::text(serde_json::to_string(&msg)?)).await?;
        loop {
            let Some(msg) = teacher.next().await else {
                anyhow::bail!("the server closed during the prefill")
            };
            let Message::Text(t) = msg? else { continue };
            let v: serde_json::Value = serde_json::from_str(&t)?;
            match v["t"].as_str() {
                Some("ok") if v["id"] == id + 1 => break,
                Some("error") => anyhow::bail!("the prefill was refused: {v}"),
                _ => {}
            }
        }
    }
    Ok(())
}
