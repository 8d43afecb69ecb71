//! The teacher's ink (PROTOCOL-ADDITIONS.md section M): pen strokes kept on a page as marks, the
//! stroke being drawn right now (`live`), and the laser strokes that fade.
//!
//! Points are integers so that every screen, the signature and the exported PDF read the same stroke:
//! `[x, y, p]` with x and y in ten-thousandths of the page's width and height and p the pen's pressure
//! in hundredths (a device that reports none sends 50). A stroke's width is in thousandths of the
//! page's width, scaled at each point by its pressure (see [`pressure_scale`]).

use serde::{Deserialize, Serialize};

/// The most points one stroke holds; a longer line is drawn as several strokes.
pub const MAX_STROKE_POINTS: usize = 500;
/// Where a point's x and y end: the page's far edge.
pub const POINT_SCALE: u16 = 10_000;
/// The largest pressure a point carries.
pub const MAX_PRESSURE: u16 = 100;
/// The thinnest and thickest strokes, in thousandths of the page's width.
pub const WIDTHS: std::ops::RangeInclusive<u8> = 1..=40;

/// One point of a stroke: `[x, y, pressure]` (see the module's notes).
pub type Point = [u16; 3];

/// The colours a pen writes in: a few a class tells apart on any screen, named so the console's
/// palette, the students' screens and the PDF agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
#[serde(rename_all = "snake_case")]
pub enum InkColor {
    /// The default pen.
    Black,
    /// Corrections: a tajweed mistake.
    Red,
    /// A second voice.
    Blue,
    /// Correct, or a rule applied.
    Green,
    /// Stands out on dark scans.
    Orange,
}

impl InkColor {
    /// The colour as red, green and blue, 0 to 255: what every screen and the PDF paint.
    pub fn rgb(self) -> [u8; 3] {
        match self {
            InkColor::Black => [0x11, 0x11, 0x11],
            InkColor::Red => [0xd3, 0x2f, 0x2f],
            InkColor::Blue => [0x15, 0x65, 0xc0],
            InkColor::Green => [0x2e, 0x7d, 0x32],
            InkColor::Orange => [0xef, 0x6c, 0x00],
        }
    }
}

/// A finished stroke, kept on its page as a mark's `ink` (the mark's rectangle is the box its points
/// span).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct Ink {
    /// The pen's colour.
    pub color: InkColor,
    /// Thousandths of the page's width, at pressure 50.
    pub width: u8,
    /// The points, in the order drawn.
    pub points: Vec<Point>,
}

/// The stroke the teacher is drawing now, as the state holds it: a late joiner sees the stroke half
/// drawn. A laser stroke is never kept; screens fade it once it ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct LiveInk {
    /// The id the stroke's mark takes when it is kept.
    pub id: u32,
    /// 1-based page.
    pub page: u32,
    /// The pen's colour.
    pub color: InkColor,
    /// Thousandths of the page's width, at pressure 50.
    pub width: u8,
    /// A laser stroke: fades, never kept.
    #[serde(default)]
    pub laser: bool,
    /// The points so far.
    pub points: Vec<Point>,
}

/// What a `set` and a `patch` carry of the stroke being drawn: the points since the last one, from
/// index `from` of the stroke (0 starts a new stroke). Points are sent once per displayed frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct LiveStep {
    /// The stroke's id (see [`LiveInk::id`]).
    pub id: u32,
    /// 1-based page.
    pub page: u32,
    /// The pen's colour.
    pub color: InkColor,
    /// Thousandths of the page's width, at pressure 50.
    pub width: u8,
    /// A laser stroke.
    #[serde(default)]
    pub laser: bool,
    /// The index in the stroke of the first of `points`: 0 for a new stroke, else how many points
    /// the stroke already has.
    pub from: u32,
    /// The new points.
    pub points: Vec<Point>,
}

/// How a point's pressure scales the stroke's width: 0.4× with none, 1× at 50, 1.6× at 100.
pub fn pressure_scale(p: u16) -> f64 {
    0.4 + 1.2 * f64::from(p.min(MAX_PRESSURE)) / f64::from(MAX_PRESSURE)
}

/// Checks points as a peer sent them: each on the page with a pressure in range.
pub fn check_points(what: &str, points: &[Point]) -> Result<(), String> {
    if let Some([x, y, p]) =
        points.iter().find(|[x, y, p]| *x > POINT_SCALE || *y > POINT_SCALE || *p > MAX_PRESSURE)
    {
        return Err(format!(
            "{what} point [{x},{y},{p}] is off the page: x and y run 0 to {POINT_SCALE}, pressure 0 to {MAX_PRESSURE}"
        ));
    }
    Ok(())
}

fn check_width(what: &str, width: u8) -> Result<(), String> {
    if WIDTHS.contains(&width) {
        Ok(())
    } else {
        Err(format!("{what}.width {width} is outside {} to {}", WIDTHS.start(), WIDTHS.end()))
    }
}

/// Checks a finished stroke and that `rect` (its mark's x, y, w, h) is the box its points span, to
/// 1.5 ten-thousandths: the eraser and the drawing of the part of a page in view rely on it.
pub fn check_ink(ink: &Ink, rect: [f64; 4]) -> Result<(), String> {
    check_width("ink", ink.width)?;
    if ink.points.is_empty() || ink.points.len() > MAX_STROKE_POINTS {
        return Err(format!("ink has {} points; 1 to {MAX_STROKE_POINTS}", ink.points.len()));
    }
    check_points("ink", &ink.points)?;
    let span = span(&ink.points);
    let slack = 1.5 / f64::from(POINT_SCALE);
    if rect.iter().zip(span).any(|(a, b)| (a - b).abs() > slack) {
        return Err(format!(
            "ink's mark is not the box its points span: x {:.4}, y {:.4}, w {:.4}, h {:.4}",
            span[0], span[1], span[2], span[3]
        ));
    }
    Ok(())
}

/// The box points span, normalized to the page: `[x, y, w, h]`.
pub fn span(points: &[Point]) -> [f64; 4] {
    let (mut x0, mut y0, mut x1, mut y1) = (u16::MAX, u16::MAX, 0, 0);
    for [x, y, _] in points {
        (x0, y0, x1, y1) = (x0.min(*x), y0.min(*y), x1.max(*x), y1.max(*y));
    }
    if points.is_empty() {
        return [0.0; 4];
    }
    let n = |v: u16| f64::from(v) / f64::from(POINT_SCALE);
    [n(x0), n(y0), n(x1 - x0), n(y1 - y0)]
}

/// Checks the next step of the stroke being drawn against the one the state holds (`now`). A step
/// must add points: to the same stroke from where it ends, or to a new one from 0.
pub fn check_step(now: Option<&LiveInk>, step: &LiveStep) -> Result<(), String> {
    check_width("live", step.width)?;
    if step.points.is_empty() {
        return Err("live has no points".into());
    }
    check_points("live", &step.points)?;
    let had = match now {
        _ if step.from == 0 => 0,
        Some(l) if l.id == step.id => {
            if (l.page, l.color, l.width, l.laser) != (step.page, step.color, step.width, step.laser) {
                return Err(format!("live stroke {} changed its page, colour, width or kind", step.id));
            }
            l.points.len()
        }
        _ => return Err(format!("live stroke {} is not being drawn: start it from 0", step.id)),
    };
    if step.from as usize != had {
        return Err(format!("live stroke {} has {had} points; this step starts at {}", step.id, step.from));
    }
    if had + step.points.len() > MAX_STROKE_POINTS {
        return Err(format!(
            "live stroke {} would pass {MAX_STROKE_POINTS} points: start a new one",
            step.id
        ));
    }
    Ok(())
}

/// The stroke being drawn after a checked step.
pub fn apply_step(now: Option<LiveInk>, step: &LiveStep) -> LiveInk {
    match now {
        Some(mut l) if step.from != 0 && l.id == step.id => {
            l.points.extend_from_slice(&step.points);
            l
        }
        _ => LiveInk {
            id: step.id,
            page: step.page,
            color: step.color,
            width: step.width,
            laser: step.laser,
            points: step.points.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(id: u32, from: u32, points: Vec<Point>) -> LiveStep {
        LiveStep { id, page: 2, color: InkColor::Red, width: 4, laser: false, from, points }
    }

    #[test]
    fn a_stroke_grows_step_by_step_and_a_step_out_of_order_is_refused() {
        let first = step(7, 0, vec![[100, 100, 50], [200, 150, 60]]);
        check_step(None, &first).unwrap();
        let live = apply_step(None, &first);
        let next = step(7, 2, vec![[300, 200, 70]]);
        check_step(Some(&live), &next).unwrap();
        let live = apply_step(Some(live), &next);
        assert_eq!(live.points.len(), 3);
        assert!(check_step(Some(&live), &step(7, 2, vec![[1, 1, 1]])).unwrap_err().contains("has 3 points"));
        assert!(
            check_step(Some(&live), &step(8, 3, vec![[1, 1, 1]])).unwrap_err().contains("start it from 0")
        );
        let recolored = LiveStep { color: InkColor::Blue, ..step(7, 3, vec![[1, 1, 1]]) };
        assert!(check_step(Some(&live), &recolored).unwrap_err().contains("changed"));
        assert!(check_step(None, &step(9, 0, vec![[10_001, 0, 0]])).unwrap_err().contains("off the page"));
        assert!(check_step(None, &step(9, 0, vec![])).is_err());
        let long = step(9, 0, vec![[5, 5, 5]; MAX_STROKE_POINTS + 1]);
        assert!(check_step(None, &long).unwrap_err().contains("start a new one"));
    }

    #[test]
    fn a_kept_stroke_names_the_box_its_points_span() {
        let ink = Ink { color: InkColor::Black, width: 3, points: vec![[1000, 2000, 50], [3000, 2500, 50]] };
        check_ink(&ink, [0.1, 0.2, 0.2, 0.05]).unwrap();
        assert!(check_ink(&ink, [0.1, 0.2, 0.9, 0.05]).unwrap_err().contains("box its points span"));
        assert!(check_ink(&Ink { width: 0, ..ink.clone() }, [0.1, 0.2, 0.2, 0.05]).is_err());
        assert!(check_ink(&Ink { points: vec![], ..ink }, [0.0; 4]).is_err());
        let json = r#"{"color":"black","width":3,"points":[[1,2,-3]]}"#;
        assert!(serde_json::from_str::<Ink>(json).is_err(), "a negative coordinate is not a point");
    }

    #[test]
    fn pressure_scales_the_width_around_the_default() {
        assert!((pressure_scale(50) - 1.0).abs() < 1e-12);
        assert!(pressure_scale(0) < pressure_scale(100));
        assert!((pressure_scale(500) - pressure_scale(100)).abs() < 1e-12);
    }
}
