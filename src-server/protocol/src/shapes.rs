//! Places on a page, normalized to it (0..1 from the top-left corner), whatever the page's size or
//! the screen's: the teacher's pointer, a highlight, the region shown (PROTOCOL-ADDITIONS.md section
//! K); and the check every such rectangle passes.

use serde::{Deserialize, Serialize};

/// Smallest zoom factor.
pub const MIN_ZOOM: f64 = 0.25;
/// Largest zoom factor.
pub const MAX_ZOOM: f64 = 8.0;

/// The teacher's pointer, normalized to the page.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct Pos {
    /// 0 (left) to 1 (right).
    pub x: f64,
    /// 0 (top) to 1 (bottom).
    pub y: f64,
}

/// A highlighted rectangle on a page, normalized to the page.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct Highlight {
    /// 1-based page.
    pub page: u32,
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
}

/// The part of the page the teacher's screen shows (PROTOCOL-ADDITIONS.md section K), normalized to
/// the page: students in follow mode fit it to their own screen, centred, so they read what the
/// teacher reads whatever their screen's shape.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(export))]
pub struct Region {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
}

impl Region {
    /// How much the region magnifies the whole page: the zoom it stands for.
    pub fn zoom(&self) -> f64 {
        (1.0 / self.w.max(self.h)).clamp(1.0, MAX_ZOOM)
    }
}

/// Checks a rectangle normalized to the page (a highlight, a region, a mark): every side in 0..1 and
/// the whole inside the page. `what` names it in the message.
pub fn check_rect(what: &str, x: f64, y: f64, w: f64, h: f64) -> Result<(), String> {
    unit(&format!("{what}.x"), x)?;
    unit(&format!("{what}.y"), y)?;
    unit(&format!("{what}.w"), w)?;
    unit(&format!("{what}.h"), h)?;
    if x + w > 1.0 + 1e-9 || y + h > 1.0 + 1e-9 {
        return Err(format!("{what} reaches past the edge of the page"));
    }
    Ok(())
}

pub(crate) fn check_region(r: Region) -> Result<(), String> {
    check_rect("view", r.x, r.y, r.w, r.h)?;
    if r.w <= 0.0 || r.h <= 0.0 || r.w.max(r.h) < 1.0 / MAX_ZOOM - 1e-9 {
        return Err(format!("view is smaller than the page zoomed {MAX_ZOOM} times"));
    }
    Ok(())
}

pub(crate) fn unit(what: &str, v: f64) -> Result<(), String> {
    if v.is_finite() && (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(format!("{what} {v} is outside 0 to 1"))
    }
}
