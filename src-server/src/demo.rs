//! The built-in demo document: a 12-page PDF generated here, so a first `lectern serve` shows something
//! real with no file to find. It is deterministic (no dates, no random ids), so its sha256, and therefore
//! every client's cache of it, stays the same across runs and versions.

use lopdf::content::{Content, Operation};
use lopdf::{Document, Object, Stream, dictionary};

use crate::error::{Error, Result};

/// Number of pages in the demo document.
pub const DEMO_PAGES: u32 = 12;
/// The demo document's id.
pub const DEMO_ID: &str = "demo";
/// The demo document's title.
pub const DEMO_TITLE: &str = "Welcome to Lectern";

const TOPICS: [(&str, &str); DEMO_PAGES as usize] = [
    (
        "Welcome",
        "This lesson is a demonstration of Lectern. Every page you turn here turns on every student screen.",
    ),
    (
        "Following the teacher",
        "In follow mode, students see exactly the page the teacher shows, within a few milliseconds.",
    ),
    (
        "The laser pointer",
        "Move the pointer over the page: each student sees it move, on the same spot of the same page.",
    ),
    (
        "Highlights",
        "Drag a rectangle to highlight a verse, a line or a figure. Everyone sees the same rectangle.",
    ),
    (
        "Free mode",
        "Switch to free mode and students may browse on their own, then return to the teacher with one tap.",
    ),
    ("Raised hands", "A student can raise a hand. The teacher sees it at once, on the student's tile."),
    (
        "Who is following",
        "Each tile says whether the student is on the current page or behind, and how fast the link is.",
    ),
    (
        "Weak Wi-Fi",
        "A slow tablet receives the latest page, never a backlog. A dropped link catches up on its own.",
    ),
    (
        "Privacy",
        "Everything stays on the classroom network, encrypted. The join code and key never leave the room.",
    ),
    ("Notices", "A short notice can be shown to the whole class, in any language, right to left included."),
    (
        "Ending the lesson",
        "When the teacher ends the lesson, attendance is kept and every student is told the lesson is over.",
    ),
    (
        "Your own documents",
        "Open any PDF from the teacher console, or start the server with --doc to bring your own.",
    ),
];

/// Builds the demo PDF.
pub fn demo_pdf() -> Result<Vec<u8>> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let bold = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica-Bold",
    });
    let regular = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
    });
    let resources_id = doc.add_object(dictionary! {
        "Font" => dictionary! { "F1" => bold, "F2" => regular },
    });
    let mut kids: Vec<Object> = Vec::new();
    for (i, (title, body)) in TOPICS.iter().enumerate() {
        let n = i as u32 + 1;
        let content = Content { operations: page_ops(n, title, body) };
        let bytes = content.encode().map_err(|e| Error::Pdf(e.to_string()))?;
        let content_id = doc.add_object(Stream::new(dictionary! {}, bytes));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "Contents" => content_id,
        });
        kids.push(page_id.into());
    }
    let pages = dictionary! {
        "Type" => "Pages",
        "Kids" => kids,
        "Count" => DEMO_PAGES as i64,
        "Resources" => resources_id,
        "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
    };
    doc.objects.insert(pages_id, Object::Dictionary(pages));
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    doc.save_to(&mut out).map_err(|e| Error::Pdf(e.to_string()))?;
    Ok(out)
}

fn rgb(op: &str, (r, g, b): (f32, f32, f32)) -> Operation {
    Operation::new(op, vec![r.into(), g.into(), b.into()])
}

fn rect(x: f32, y: f32, w: f32, h: f32) -> Operation {
    Operation::new("re", vec![x.into(), y.into(), w.into(), h.into()])
}

fn text(font: &str, size: f32, x: f32, y: f32, s: &str) -> Vec<Operation> {
    vec![
        Operation::new("BT", vec![]),
        Operation::new("Tf", vec![font.into(), size.into()]),
        Operation::new("Td", vec![x.into(), y.into()]),
        Operation::new("Tj", vec![Object::string_literal(s)]),
        Operation::new("ET", vec![]),
    ]
}

/// Splits text into lines of at most `width` characters.
fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in s.split_whitespace() {
        let last = lines.last_mut().map(|l| l.len()).unwrap_or(0);
        if last > 0 && last + 1 + word.len() > width {
            lines.push(String::new());
        }
        if let Some(line) = lines.last_mut() {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

fn page_ops(n: u32, title: &str, body: &str) -> Vec<Operation> {
    let ink = (0.12, 0.16, 0.22);
    let accent = (0.11, 0.43, 0.42);
    let mut ops = vec![
        // Header band and footer rule.
        rgb("rg", accent),
        rect(0.0, 782.0, 595.0, 60.0),
        Operation::new("f", vec![]),
        rgb("rg", (1.0, 1.0, 1.0)),
    ];
    ops.extend(text("F1", 16.0, 40.0, 805.0, "Lectern demo lesson"));
    ops.extend(text("F2", 12.0, 470.0, 805.0, &format!("Page {n} of {DEMO_PAGES}")));
    ops.push(rgb("rg", accent));
    ops.extend(text("F1", 120.0, 40.0, 600.0, &n.to_string()));
    ops.push(rgb("rg", ink));
    ops.extend(text("F1", 30.0, 40.0, 540.0, title));
    let mut y = 500.0;
    for line in wrap(body, 52) {
        ops.extend(text("F2", 17.0, 40.0, y, &line));
        y -= 26.0;
    }
    // Three numbered lines to point at and highlight.
    for (i, label) in
        ["First line to read together", "Second line to read together", "Third line to read together"]
            .iter()
            .enumerate()
    {
        let top = 330.0 - 60.0 * i as f32;
        ops.push(rgb("rg", (0.93, 0.95, 0.96)));
        ops.push(rect(40.0, top - 14.0, 515.0, 40.0));
        ops.push(Operation::new("f", vec![]));
        ops.push(rgb("rg", ink));
        ops.extend(text("F2", 16.0, 56.0, top, &format!("{}.  {label}", i + 1)));
    }
    ops.push(rgb("RG", accent));
    ops.push(Operation::new("w", vec![1.0.into()]));
    ops.push(Operation::new("m", vec![40.into(), 60.into()]));
    ops.push(Operation::new("l", vec![555.into(), 60.into()]));
    ops.push(Operation::new("S", vec![]));
    ops.push(rgb("rg", ink));
    ops.extend(text(
        "F2",
        10.0,
        40.0,
        42.0,
        "Generated by Lectern. Replace it with your own PDF: lectern serve --doc FILE.pdf",
    ));
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_is_a_readable_pdf_with_its_page_count_and_is_stable() {
        let a = demo_pdf().unwrap();
        assert_eq!(crate::docs::count_pages(&a).unwrap(), DEMO_PAGES);
        assert_eq!(a, demo_pdf().unwrap(), "the demo must be byte-for-byte deterministic");
    }
}
