//! Scanned pages: which pages of a PDF are one JPEG covering the whole page, and where that JPEG's
//! bytes sit in the file (docs/PROTOCOL-ADDITIONS.md, section D).
//!
//! A scanned book (a Mushaf, a photocopied worksheet) is one photograph per page. A student's device
//! can draw such a page from the JPEG alone: fetch its byte range from the document and hand it to
//! the browser's image decoder, without pdf.js reading the cross-reference table, walking the page
//! tree and parsing the page first. On a thin classroom link that is the difference between a
//! first page in about a second and one in ten (docs/WIFI.md). The bytes are the document's own, so
//! the chunked download keeps them and they never cross the network twice.
//!
//! A page counts as scanned only when nothing else on it is visible: its content draws exactly one
//! image XObject through one transform that covers the media box, and any text is invisible (render
//! mode 3, as OCR leaves it). The image must be a plain baseline-decodable JPEG in RGB or grey, with no
//! mask or decode array, and the page must not be rotated. Anything else is left to pdf.js.

use lopdf::content::Content;
use lopdf::{Dictionary, Document, Object, ObjectId};

use crate::protocol::http::ScanIndex;

/// How far (in points) the image's placement may be from the media box and still cover the page.
const SLACK: f32 = 1.0;
/// How far after an object's start its stream data may begin (the image's dictionary).
const MAX_DICT_BYTES: usize = 64 * 1024;
/// The deepest page tree walked for an inherited attribute.
const MAX_DEPTH: usize = 32;
/// The largest image accepted as a page (a 600 dpi A3 scan is well under this).
const MAX_IMAGE_BYTES: usize = 32 * 1024 * 1024;

/// Finds the scanned pages of a parsed PDF whose file bytes are `file`.
pub fn index(doc: &Document, file: &[u8]) -> ScanIndex {
    let pages = doc.get_pages();
    let mut out = vec![None; pages.len()];
    for (n, id) in pages {
        let slot = (n as usize).checked_sub(1).and_then(|i| out.get_mut(i));
        if let (Some(slot), Some(scan)) = (slot, scanned(doc, id, file)) {
            *slot = Some(scan);
        }
    }
    ScanIndex { pages: out }
}

/// `[offset, length, width, height]` of page `id`'s JPEG when the page is a scan.
fn scanned(doc: &Document, id: ObjectId, file: &[u8]) -> Option<[u64; 4]> {
    let page = doc.get_dictionary(id).ok()?;
    let rotate = inherited(doc, page, b"Rotate").and_then(|o| o.as_i64().ok()).unwrap_or(0);
    if rotate.rem_euclid(360) != 0 {
        return None;
    }
    let media = inherited(doc, page, b"MediaBox")?;
    let media: Vec<f32> =
        doc.dereference(media).ok()?.1.as_array().ok()?.iter().filter_map(|o| number(doc, o)).collect();
    let [x0, y0, x1, y1] = <[f32; 4]>::try_from(media).ok()?;
    let (width, height) = ((x1 - x0).abs(), (y1 - y0).abs());
    if !(1.0..=14_400.0).contains(&width) || !(1.0..=14_400.0).contains(&height) {
        return None;
    }
    let name = placed_image(doc, id, [x0.min(x1), y0.min(y1), width, height])?;
    let resources = inherited(doc, page, b"Resources")?;
    let resources = doc.dereference(resources).ok()?.1.as_dict().ok()?;
    let xobjects = doc.dereference(resources.get(b"XObject").ok()?).ok()?.1.as_dict().ok()?;
    let (Some(image_id), image) = doc.dereference(xobjects.get(&name).ok()?).ok()? else {
        return None;
    };
    let image = image.as_stream().ok()?;
    let jpeg = image.content.as_slice();
    if !plain_jpeg(doc, &image.dict) || jpeg.len() > MAX_IMAGE_BYTES || !jpeg.starts_with(&[0xff, 0xd8, 0xff])
    {
        return None;
    }
    // A JPEG ends with its end-of-image marker (some writers pad a byte or two after it).
    if !jpeg.windows(2).rev().take(8).any(|w| w == [0xff, 0xd9]) {
        return None;
    }
    let start = stream_data(doc, image_id, jpeg, file)?;
    Some([start as u64, jpeg.len() as u64, width.round() as u64, height.round() as u64])
}

/// Where in the file the data of stream object `id` starts, checked to be exactly `data`.
fn stream_data(doc: &Document, id: ObjectId, data: &[u8], file: &[u8]) -> Option<usize> {
    let lopdf::xref::XrefEntry::Normal { offset, .. } = doc.reference_table.get(id.0)? else {
        return None; // streams are never inside object streams
    };
    let object = file.get(*offset as usize..)?;
    // The keyword `stream` and its end of line follow the dictionary; the first candidate whose
    // bytes are the stream's is it (a name in the dictionary could spell `stream` too).
    let window = &object[..object.len().min(MAX_DICT_BYTES)];
    let mut from = 0;
    while let Some(at) = find(&window[from..], b"stream") {
        let keyword = from + at + b"stream".len();
        let eol = match object.get(keyword..keyword + 2) {
            Some([b'\r', b'\n']) => 2,
            Some([b'\n', _]) => 1,
            _ => 0,
        };
        let start = *offset as usize + keyword + eol;
        if eol > 0 && file.get(start..start.checked_add(data.len())?) == Some(data) {
            return Some(start);
        }
        from = keyword;
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// An attribute of a page, or of the nearest page-tree node above it that has it.
fn inherited<'a>(doc: &'a Document, page: &'a Dictionary, key: &[u8]) -> Option<&'a Object> {
    let mut node = page;
    for _ in 0..MAX_DEPTH {
        if let Ok(value) = node.get(key) {
            return Some(value);
        }
        node = doc.get_dictionary(node.get(b"Parent").ok()?.as_reference().ok()?).ok()?;
    }
    None
}

fn number(doc: &Document, o: &Object) -> Option<f32> {
    doc.dereference(o).ok()?.1.as_float().ok()
}

/// The name of the one image the page's content draws, when it covers `[x, y, w, h]` and nothing
/// else visible is drawn.
fn placed_image(doc: &Document, page: ObjectId, [x, y, w, h]: [f32; 4]) -> Option<Vec<u8>> {
    let content = Content::decode(&doc.get_page_content(page).ok()?).ok()?;
    let mut stack: Vec<[f32; 6]> = Vec::new();
    let mut ctm = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];
    let mut invisible_text = false;
    let mut image = None;
    for op in &content.operations {
        let nums = || op.operands.iter().map(|o| number(doc, o)).collect::<Option<Vec<f32>>>();
        match op.operator.as_str() {
            "q" => stack.push(ctm),
            "Q" => ctm = stack.pop()?,
            "cm" => ctm = multiply(<[f32; 6]>::try_from(nums()?).ok()?, ctm),
            "Do" if image.is_none() => {
                let [a, b, c, d, e, f] = ctm;
                let near = |p: f32, q: f32| (p - q).abs() <= SLACK;
                if !(near(a, w) && near(d, h) && near(b, 0.0) && near(c, 0.0) && near(e, x) && near(f, y)) {
                    return None;
                }
                image = Some(op.operands.first()?.as_name().ok()?.to_vec());
            }
            // Text is allowed only when it cannot be seen: OCR's layer under a scan.
            "BT" => invisible_text = false,
            "Tr" => invisible_text = nums()?.first() == Some(&3.0),
            "ET" | "Tf" | "Td" | "TD" | "Tm" | "T*" | "Tc" | "Tw" | "Tz" | "TL" | "Ts" => {}
            "Tj" | "TJ" | "'" | "\"" if invisible_text => {}
            _ => return None,
        }
    }
    image
}

/// `m × ctm`, the PDF way (row vectors).
fn multiply([a, b, c, d, e, f]: [f32; 6], [a2, b2, c2, d2, e2, f2]: [f32; 6]) -> [f32; 6] {
    [
        a * a2 + b * c2,
        a * b2 + b * d2,
        c * a2 + d * c2,
        c * b2 + d * d2,
        e * a2 + f * c2 + e2,
        e * b2 + f * d2 + f2,
    ]
}

/// Whether an image dictionary is a JPEG a browser draws exactly as a PDF reader would.
fn plain_jpeg(doc: &Document, dict: &Dictionary) -> bool {
    let name = |key: &[u8]| dict.get(key).ok().and_then(|o| doc.dereference(o).ok()).map(|(_, o)| o);
    let filter_ok = match name(b"Filter") {
        Some(Object::Name(n)) => n == b"DCTDecode",
        Some(Object::Array(a)) => matches!(a.as_slice(), [Object::Name(n)] if n == b"DCTDecode"),
        _ => false,
    };
    let space_ok =
        matches!(name(b"ColorSpace"), Some(Object::Name(n)) if n == b"DeviceRGB" || n == b"DeviceGray");
    let bits_ok = matches!(name(b"BitsPerComponent"), Some(Object::Integer(8)));
    let subtype_ok = matches!(name(b"Subtype"), Some(Object::Name(n)) if n == b"Image");
    let plain =
        ["SMask", "Mask", "Decode", "ImageMask", "DecodeParms"].iter().all(|k| !dict.has(k.as_bytes()));
    filter_ok && space_ok && bits_ok && subtype_ok && plain
}

#[cfg(test)]
mod tests {
    use lopdf::{Stream, dictionary};

    use super::*;

    /// Not a picture, but a JPEG's shape: start and end markers around some bytes.
    const JPEG: &[u8] = &[0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4, 5, 6, 7, 8, 0xff, 0xd9];

    /// A PDF of pages whose contents are these, each with the image `Im` (its dictionary changed by
    /// `image`), on A4.
    fn book(contents: &[&str], image: impl Fn(&mut Dictionary)) -> Vec<u8> {
        let mut doc = Document::with_version("1.5");
        let pages_id = doc.new_object_id();
        let mut kids: Vec<Object> = Vec::new();
        for content in contents {
            let mut dict = dictionary! {
                "Type" => "XObject", "Subtype" => "Image", "Width" => 10, "Height" => 14,
                "ColorSpace" => "DeviceRGB", "BitsPerComponent" => 8, "Filter" => "DCTDecode",
            };
            image(&mut dict);
            let mut stream = Stream::new(dict, JPEG.to_vec());
            stream.allows_compression = false;
            let image_id = doc.add_object(stream);
            let content_id = doc.add_object(Stream::new(dictionary! {}, content.as_bytes().to_vec()));
            let page = doc.add_object(dictionary! {
                "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
                "Resources" => dictionary! { "XObject" => dictionary! { "Im" => image_id } },
            });
            kids.push(page.into());
        }
        let count = kids.len() as i64;
        doc.objects.insert(
            pages_id,
            Object::Dictionary(dictionary! {
                "Type" => "Pages", "Kids" => kids, "Count" => count,
                "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
            }),
        );
        let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
        doc.trailer.set("Root", catalog);
        let mut out = Vec::new();
        doc.save_to(&mut out).unwrap();
        out
    }

    fn scan(bytes: &[u8]) -> Vec<Option<[u64; 4]>> {
        index(&Document::load_mem(bytes).unwrap(), bytes).pages
    }

    #[test]
    fn a_full_page_jpeg_is_found_where_its_bytes_are_in_the_file() {
        let pdf = book(
            &["q 595 0 0 842 0 0 cm /Im Do Q", "q 1 0 0 1 0 0 cm q 595 0 0 842 0 0 cm /Im Do Q Q"],
            |_| {},
        );
        let pages = scan(&pdf);
        assert_eq!(pages.len(), 2);
        for page in pages {
            let [offset, length, w, h] = page.expect("a scanned page");
            assert_eq!(&pdf[offset as usize..(offset + length) as usize], JPEG);
            assert_eq!((w, h), (595, 842));
        }
    }

    #[test]
    fn invisible_text_is_allowed_and_visible_text_is_not() {
        let ocr = "q 595 0 0 842 0 0 cm /Im Do Q BT 3 Tr 10 10 Td (bismillah) Tj ET";
        let visible = "q 595 0 0 842 0 0 cm /Im Do Q BT 10 10 Td (Page 1) Tj ET";
        let pages = scan(&book(&[ocr, visible], |_| {}));
        assert!(pages[0].is_some(), "an OCR layer is invisible");
        assert_eq!(pages[1], None, "a visible page number is not on the scan");
    }

    #[test]
    fn pages_a_browser_would_draw_differently_are_left_to_pdf_js() {
        let partial = "q 300 0 0 842 0 0 cm /Im Do Q";
        let drawn = "q 595 0 0 842 0 0 cm /Im Do Q 0 0 m 10 10 l S";
        let twice = "q 595 0 0 842 0 0 cm /Im Do Q q 595 0 0 842 0 0 cm /Im Do Q";
        let rotated = "q 0 842 -595 0 595 0 cm /Im Do Q";
        assert_eq!(scan(&book(&[partial, drawn, twice, rotated], |_| {})), vec![None; 4]);
        let full = ["q 595 0 0 842 0 0 cm /Im Do Q"];
        assert_eq!(scan(&book(&full, |d| d.set("ColorSpace", "DeviceCMYK"))), vec![None]);
        assert_eq!(scan(&book(&full, |d| d.set("Filter", "FlateDecode"))), vec![None]);
        assert_eq!(scan(&book(&full, |d| d.set("SMask", Object::Reference((1, 0))))), vec![None]);
        assert_eq!(scan(&book(&full, |d| d.set("Decode", vec![1.into(), 0.into()]))), vec![None]);
    }

    #[test]
    fn the_demo_lesson_has_no_scanned_pages() {
        let pdf = crate::demo::demo_pdf().unwrap();
        assert!(scan(&pdf).iter().all(Option::is_none));
    }
}
