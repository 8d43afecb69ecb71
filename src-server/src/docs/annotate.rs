//! The annotated PDF of a lesson (issue 25): the original pages the lesson showed, with the teacher's
//! highlights and ink drawn onto them as vector drawing (PDF path operators, not pictures), for the
//! students who were absent. lopdf reads the original and writes the result; nothing is rasterized.
//!
//! A mark is normalized to the page as shown (PROTOCOL-ADDITIONS.md sections L and M): it is mapped
//! onto the page's crop box (what a viewer shows), turned with the page's `/Rotate`. A stroke is drawn
//! as every screen draws it: each segment as wide as its two ends' mean, round ends.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use lopdf::{Dictionary, Document, Object, ObjectId, Stream};

use crate::protocol::Mark;
use crate::protocol::ink::{POINT_SCALE, pressure_scale};

/// The highlight's fill (yellow, blended as a marker is) and border, as on the screens.
const HIGHLIGHT_FILL: [f64; 3] = [1.0, 0.84, 0.0];
const HIGHLIGHT_EDGE: [f64; 3] = [0.88, 0.65, 0.15];
/// The graphics state that makes the highlight translucent, by its name in the page's resources.
const HIGHLIGHT_GS: &str = "LecternHighlight";

/// Writes `original` again with only the pages in `shown` (and those holding marks), each with its
/// marks drawn over it. An error says why the original could not be read or written.
pub fn annotate(
    original: &[u8],
    shown: &BTreeSet<u32>,
    marks: &BTreeMap<u32, Vec<Mark>>,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    annotate_to(original.to_vec(), shown, marks, &mut out)?;
    Ok(out)
}

/// [`annotate`], written to `out` as it is made, with the original let go once it is parsed: at
/// most the parsed document is held, not the file, the document and the result together.
pub fn annotate_to(
    original: Vec<u8>,
    shown: &BTreeSet<u32>,
    marks: &BTreeMap<u32, Vec<Mark>>,
    out: &mut impl std::io::Write,
) -> Result<(), String> {
    let (mut doc, _) = super::pdf::parse(&original)?;
    drop(original);
    let pages = doc.get_pages();
    let mut dropped = Vec::new();
    for (&number, &id) in &pages {
        let on = marks.get(&number).map_or(&[][..], Vec::as_slice);
        if !shown.contains(&number) && on.is_empty() {
            dropped.push(number);
            continue;
        }
        if on.is_empty() {
            continue;
        }
        let frame = Frame::of(&doc, id).ok_or(format!("page {number} has no page box"))?;
        let drawing = draw(&frame, on);
        add_highlight_state(&mut doc, id).map_err(|e| format!("page {number}: {e}"))?;
        wrap_contents(&mut doc, id, drawing.into_bytes()).map_err(|e| format!("page {number}: {e}"))?;
    }
    if dropped.len() == pages.len() {
        return Err("the lesson showed none of the document's pages".into());
    }
    doc.delete_pages(&dropped);
    doc.prune_objects();
    doc.compress();
    doc.save_to(out).map_err(|e| format!("writing the PDF: {e}"))?;
    Ok(())
}

/// Where a page's normalized coordinates land in its user space.
struct Frame {
    /// The crop box: x0, y0, x1, y1.
    bx: [f64; 4],
    /// `/Rotate`, in quarter turns clockwise (0 to 3).
    quarter: u8,
}

impl Frame {
    fn of(doc: &Document, page: ObjectId) -> Option<Frame> {
        let numbers = |o: &Object| -> Option<[f64; 4]> {
            let a = doc.dereference(o).ok()?.1.as_array().ok()?;
            let v: Vec<f64> =
                a.iter().filter_map(|n| doc.dereference(n).ok()?.1.as_float().ok().map(f64::from)).collect();
            (v.len() == 4 && v.iter().all(|n| n.is_finite()))
                .then(|| [v[0].min(v[2]), v[1].min(v[3]), v[0].max(v[2]), v[1].max(v[3])])
        };
        // What a viewer shows: the crop box within the media box (pdf.js intersects them too).
        let media = inherited(doc, page, b"MediaBox").and_then(|o| numbers(&o))?;
        let bx = match inherited(doc, page, b"CropBox").and_then(|o| numbers(&o)) {
            Some(c) => [c[0].max(media[0]), c[1].max(media[1]), c[2].min(media[2]), c[3].min(media[3])],
            None => media,
        };
        let bx = if bx[2] > bx[0] && bx[3] > bx[1] { bx } else { media };
        let rotate = inherited(doc, page, b"Rotate").and_then(|o| o.as_float().ok()).unwrap_or(0.0);
        let quarter = ((f64::from(rotate) / 90.0).round() as i64).rem_euclid(4) as u8;
        (bx[2] > bx[0] && bx[3] > bx[1]).then_some(Frame { bx, quarter })
    }

    /// A point normalized to the page as shown (u right, v down) in user space.
    fn at(&self, u: f64, v: f64) -> (f64, f64) {
        let [x0, y0, x1, y1] = self.bx;
        let (w, h) = (x1 - x0, y1 - y0);
        match self.quarter {
            1 => (x0 + v * w, y0 + u * h),
            2 => (x1 - u * w, y0 + v * h),
            3 => (x1 - v * w, y1 - u * h),
            _ => (x0 + u * w, y1 - v * h),
        }
    }

    /// The page's width as shown, in user space units.
    fn shown_width(&self) -> f64 {
        let [x0, y0, x1, y1] = self.bx;
        if self.quarter % 2 == 1 { y1 - y0 } else { x1 - x0 }
    }
}

/// A page attribute, from the page or the page tree above it.
fn inherited(doc: &Document, mut node: ObjectId, key: &[u8]) -> Option<Object> {
    for _ in 0..32 {
        let dict = doc.get_dictionary(node).ok()?;
        if let Ok(v) = dict.get(key) {
            return Some(doc.dereference(v).ok()?.1.clone());
        }
        node = dict.get(b"Parent").ok()?.as_reference().ok()?;
    }
    None
}

/// The content stream that draws a page's marks: highlights first, then ink, in the order drawn.
fn draw(frame: &Frame, marks: &[Mark]) -> String {
    let mut s = String::from("q\n");
    let rgb = |c: [f64; 3]| format!("{:.3} {:.3} {:.3}", c[0], c[1], c[2]);
    for m in marks.iter().filter(|m| m.ink.is_none()) {
        let corners = [(m.x, m.y), (m.x + m.w, m.y), (m.x + m.w, m.y + m.h), (m.x, m.y + m.h)];
        let path: Vec<String> =
            corners.iter().map(|&(u, v)| frame.at(u, v)).map(|(x, y)| format!("{x:.2} {y:.2}")).collect();
        let _ = writeln!(
            s,
            "q /{HIGHLIGHT_GS} gs {} rg {} m {} l {} l {} l h f Q\nq {} RG 1.5 w 1 j {} m {} l {} l {} l h S Q",
            rgb(HIGHLIGHT_FILL),
            path[0],
            path[1],
            path[2],
            path[3],
            rgb(HIGHLIGHT_EDGE),
            path[0],
            path[1],
            path[2],
            path[3]
        );
    }
    let scale = f64::from(POINT_SCALE);
    for ink in marks.iter().filter_map(|m| m.ink.as_ref()) {
        let [r, g, b] = ink.color.rgb().map(|c| f64::from(c) / 255.0);
        let base = f64::from(ink.width) / 1000.0 * frame.shown_width();
        let _ = writeln!(s, "{r:.3} {g:.3} {b:.3} RG 1 J 1 j");
        let pts: Vec<_> = ink
            .points
            .iter()
            .map(|&[x, y, p]| (frame.at(f64::from(x) / scale, f64::from(y) / scale), pressure_scale(p)))
            .collect();
        if let [((x, y), p)] = pts[..] {
            let _ = writeln!(s, "{:.3} w {x:.2} {y:.2} m {x:.2} {y:.2} l S", base * p);
        }
        for pair in pts.windows(2) {
            let (((x0, y0), p0), ((x1, y1), p1)) = (pair[0], pair[1]);
            let _ = writeln!(
                s,
                "{:.3} w {x0:.2} {y0:.2} m {x1:.2} {y1:.2} l S",
                (base * (p0 + p1) / 2.0).max(0.1)
            );
        }
    }
    s.push_str("Q\n");
    s
}

/// Puts the highlight's translucent graphics state into the page's own resources (a copy of what it
/// inherits, so nothing shared with other pages changes).
fn add_highlight_state(doc: &mut Document, page: ObjectId) -> Result<(), lopdf::Error> {
    let mut resources = match inherited(doc, page, b"Resources") {
        Some(Object::Dictionary(d)) => d,
        _ => Dictionary::new(),
    };
    let mut states = match resources.get(b"ExtGState").map(|o| doc.dereference(o).map(|(_, o)| o.clone())) {
        Ok(Ok(Object::Dictionary(d))) => d,
        _ => Dictionary::new(),
    };
    let mut gs = Dictionary::new();
    gs.set("Type", Object::Name(b"ExtGState".to_vec()));
    gs.set("ca", Object::Real(0.32));
    gs.set("BM", Object::Name(b"Multiply".to_vec()));
    states.set(HIGHLIGHT_GS, Object::Dictionary(gs));
    resources.set("ExtGState", Object::Dictionary(states));
    doc.get_object_mut(page).and_then(Object::as_dict_mut)?.set("Resources", Object::Dictionary(resources));
    Ok(())
}

/// Puts the page's own content inside `q … Q` (so a state it leaves set cannot move the marks), then
/// the marks' drawing after it.
fn wrap_contents(doc: &mut Document, page: ObjectId, drawing: Vec<u8>) -> Result<(), lopdf::Error> {
    let before: Vec<Object> = match doc.get_dictionary(page)?.get(b"Contents") {
        // A reference to an array of streams is spliced in, not nested (an array in an array is not a
        // content list).
        Ok(Object::Reference(id)) => match doc.get_object(*id) {
            Ok(Object::Array(a)) => a.clone(),
            _ => vec![Object::Reference(*id)],
        },
        Ok(Object::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    let open = doc.add_object(Stream::new(Dictionary::new(), b"q\n".to_vec()));
    let mut close = b"Q\n".to_vec();
    close.extend_from_slice(&drawing);
    let close = doc.add_object(Stream::new(Dictionary::new(), close));
    let contents: Vec<Object> = std::iter::once(Object::Reference(open))
        .chain(before)
        .chain(std::iter::once(Object::Reference(close)))
        .collect();
    doc.get_object_mut(page).and_then(Object::as_dict_mut)?.set("Contents", contents);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Ink, InkColor};

    #[test]
    fn a_stroke_lands_where_it_was_drawn_on_the_pages_shown_only() {
        let pdf = crate::demo::demo_pdf().unwrap();
        let (original, count) = super::super::pdf::parse(&pdf).unwrap();
        assert!(count >= 3);
        let ink = Ink { color: InkColor::Red, width: 4, points: vec![[1000, 5000, 50], [9000, 5000, 100]] };
        let stroke = Mark { id: 1, x: 0.1, y: 0.5, w: 0.8, h: 0.0, ink: Some(ink) };
        let highlight = Mark { id: 2, x: 0.1, y: 0.2, w: 0.5, h: 0.1, ink: None };
        let marks = BTreeMap::from([(2, vec![stroke, highlight])]);
        let out = annotate(&pdf, &BTreeSet::from([1, 2]), &marks).unwrap();
        let (doc, pages) = super::super::pdf::parse(&out).unwrap();
        assert_eq!(pages, 2, "only the pages the lesson showed");
        let page = doc.get_pages()[&2];
        let frame = Frame::of(&doc, page).unwrap();
        let (x0, y) = frame.at(0.1, 0.5);
        let (x1, _) = frame.at(0.9, 0.5);
        let content = String::from_utf8_lossy(&doc.get_page_content(page).unwrap()).into_owned();
        assert!(content.contains(&format!("{x0:.2} {y:.2} m {x1:.2} {y:.2} l S")), "{content}");
        assert!(content.contains("0.827 0.184 0.184 RG"), "red ink: {content}");
        assert!(content.contains(&format!("/{HIGHLIGHT_GS} gs")), "the highlight: {content}");
        let first = original.get_pages()[&2];
        assert_eq!(Frame::of(&original, first).unwrap().bx, frame.bx);
    }

    #[test]
    fn a_turned_page_maps_the_shown_corners_onto_its_box() {
        let f = |quarter| Frame { bx: [0.0, 0.0, 600.0, 800.0], quarter };
        assert_eq!(f(0).at(0.0, 0.0), (0.0, 800.0), "shown top left: the box's top left");
        assert_eq!(f(1).at(0.0, 0.0), (0.0, 0.0), "turned a quarter clockwise: its bottom left");
        assert_eq!(f(2).at(0.0, 0.0), (600.0, 0.0));
        assert_eq!(f(3).at(0.0, 0.0), (600.0, 800.0));
        assert_eq!(f(1).shown_width(), 800.0);
    }

    #[test]
    fn a_crop_box_is_cut_to_the_media_box_and_contents_by_reference_are_spliced() {
        let pdf = crate::demo::demo_pdf().unwrap();
        let (mut doc, _) = super::super::pdf::parse(&pdf).unwrap();
        let page = doc.get_pages()[&1];
        let original = doc.get_page_content(page).unwrap();
        let streams = doc.get_page_contents(page).into_iter().map(Object::Reference).collect::<Vec<_>>();
        let list = doc.add_object(Object::Array(streams));
        let dict = doc.get_object_mut(page).and_then(Object::as_dict_mut).unwrap();
        dict.set("Contents", Object::Reference(list));
        dict.set("CropBox", vec![(-10).into(), (-10).into(), 300.into(), 400.into()]);
        dict.set("Rotate", Object::Real(90.0));
        let mut bytes = Vec::new();
        doc.save_to(&mut bytes).unwrap();
        let frame = Frame::of(&doc, page).unwrap();
        assert_eq!((frame.bx, frame.quarter), ([0.0, 0.0, 300.0, 400.0], 1));
        let ink = Ink { color: InkColor::Blue, width: 4, points: vec![[5000, 5000, 50]] };
        let dot = Mark { id: 1, x: 0.5, y: 0.5, w: 0.0, h: 0.0, ink: Some(ink) };
        let out = annotate(&bytes, &BTreeSet::from([1]), &BTreeMap::from([(1, vec![dot])])).unwrap();
        let (done, _) = super::super::pdf::parse(&out).unwrap();
        let content = done.get_page_content(done.get_pages()[&1]).unwrap();
        assert!(
            content.windows(original.len()).any(|w| w == original.as_slice()),
            "the page's own drawing is kept whole"
        );
        assert!(
            String::from_utf8_lossy(&content).contains("150.00 200.00 m 150.00 200.00 l S"),
            "a dot at the centre"
        );
    }

    #[test]
    fn what_is_not_a_pdf_is_refused_with_the_reason() {
        assert!(annotate(b"not a pdf", &BTreeSet::new(), &BTreeMap::new()).unwrap_err().contains("%PDF-"));
        let pdf = crate::demo::demo_pdf().unwrap();
        assert!(annotate(&pdf, &BTreeSet::new(), &BTreeMap::new()).unwrap_err().contains("none"));
    }
}
