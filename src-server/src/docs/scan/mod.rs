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

mod content;
mod jpeg;

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

/// Finds the scanned pages of a parsed PDF whose file bytes are `file`. All pages are left to pdf.js
/// when the page tree does not count its pages as lopdf found them (pdf.js numbers pages by the
/// tree's counts, so the index could point at another page's image).
pub fn index(doc: &Document, file: &[u8]) -> ScanIndex {
    let pages = doc.get_pages();
    let mut out = vec![None; pages.len()];
    let counted = doc
        .catalog()
        .ok()
        .and_then(|c| doc.dereference(c.get(b"Pages").ok()?).ok())
        .and_then(|(_, p)| p.as_dict().ok()?.get(b"Count").ok()?.as_i64().ok());
    if counted != Some(pages.len() as i64) {
        return ScanIndex { pages: out };
    }
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
    // Rotated (however the rotation is written), annotated pages are pdf.js's to draw.
    if let Some(rotate) = inherited(doc, page, b"Rotate") {
        let rotate = number(doc, rotate)?;
        if rotate.rem_euclid(360.0) != 0.0 {
            return None;
        }
    }
    if let Ok(annots) = page.get(b"Annots")
        && !doc.dereference(annots).ok()?.1.as_array().ok()?.is_empty()
    {
        return None;
    }
    let [x0, y0, x1, y1] = page_box(doc, inherited(doc, page, b"MediaBox")?)?;
    // pdf.js shows the crop box: it must be the media box, or the JPEG would show what is cut away.
    if let Some(crop) = inherited(doc, page, b"CropBox") {
        let crop = page_box(doc, crop)?;
        if crop.iter().zip([x0, y0, x1, y1]).any(|(c, m)| (c - m).abs() > SLACK) {
            return None;
        }
    }
    let (width, height) = (x1 - x0, y1 - y0);
    if !(1.0..=14_400.0).contains(&width) || !(1.0..=14_400.0).contains(&height) {
        return None;
    }
    let placed = content::placed_image(&page_content(doc, id)?)?;
    let [a, b, c, d, e, f] = placed.ctm;
    let near = |p: f32, q: f32| (p - q).abs() <= SLACK;
    if !(near(a, width) && near(d, height) && near(b, 0.0) && near(c, 0.0) && near(e, x0) && near(f, y0)) {
        return None;
    }
    let resources = inherited(doc, page, b"Resources")?;
    let resources = doc.dereference(resources).ok()?.1.as_dict().ok()?;
    let xobjects = doc.dereference(resources.get(b"XObject").ok()?).ok()?.1.as_dict().ok()?;
    let (Some(image_id), image) = doc.dereference(xobjects.get(&placed.name).ok()?).ok()? else {
        return None;
    };
    let image = image.as_stream().ok()?;
    let bytes = image.content.as_slice();
    let components = plain_jpeg(doc, &image.dict)?;
    if bytes.len() > MAX_IMAGE_BYTES || !jpeg::plain(bytes, components) {
        return None;
    }
    // A JPEG ends with its end-of-image marker (some writers pad a byte or two after it).
    if !bytes.windows(2).rev().take(8).any(|w| w == [0xff, 0xd9]) {
        return None;
    }
    let start = stream_data(doc, image_id, bytes, file)?;
    Some([start as u64, bytes.len() as u64, width.round() as u64, height.round() as u64])
}

/// A page box `[x0 y0 x1 y1]`, normalized so that x0 < x1 and y0 < y1.
fn page_box(doc: &Document, o: &Object) -> Option<[f32; 4]> {
    let v: Vec<f32> =
        doc.dereference(o).ok()?.1.as_array().ok()?.iter().map(|o| number(doc, o)).collect::<Option<_>>()?;
    let [x0, y0, x1, y1] = <[f32; 4]>::try_from(v).ok()?;
    Some([x0.min(x1), y0.min(y1), x0.max(x1), y0.max(y1)])
}

/// The page's content streams, decoded and joined, when every one is plain or Flate-compressed and
/// together they stay under [`content::MAX_CONTENT_BYTES`]. (lopdf would hand back the raw bytes of
/// a stream it cannot decode, which pdf.js may decode into something else.)
fn page_content(doc: &Document, page: ObjectId) -> Option<Vec<u8>> {
    use std::io::Read;
    let ids = doc.get_page_contents(page);
    if ids.is_empty() || ids.len() > 16 {
        return None;
    }
    let mut out = Vec::new();
    for id in ids {
        let stream = doc.get_object(id).ok()?.as_stream().ok()?;
        if stream.dict.has(b"DecodeParms") {
            return None;
        }
        let room = content::MAX_CONTENT_BYTES.saturating_sub(out.len());
        match stream.dict.get(b"Filter").ok().map(|f| doc.dereference(f).map(|(_, f)| f)) {
            None => out.extend_from_slice(stream.content.get(..stream.content.len().min(room + 1))?),
            Some(Ok(Object::Name(n))) if n == b"FlateDecode" => {
                flate2::read::ZlibDecoder::new(stream.content.as_slice())
                    .take(room as u64 + 1)
                    .read_to_end(&mut out)
                    .ok()?;
            }
            Some(Ok(Object::Array(a))) if matches!(a.as_slice(), [Object::Name(n)] if n == b"FlateDecode") => {
                flate2::read::ZlibDecoder::new(stream.content.as_slice())
                    .take(room as u64 + 1)
                    .read_to_end(&mut out)
                    .ok()?;
            }
            _ => return None,
        }
        if out.len() > content::MAX_CONTENT_BYTES {
            return None;
        }
        out.push(b'\n');
    }
    Some(out)
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
        let end = start.checked_add(data.len())?;
        // Cheap first: `endstream` must follow the data (after an end of line, perhaps).
        let after = file.get(end..end + 11).unwrap_or_default();
        let closes = [0, 1, 2].iter().any(|&k| after.get(k..).is_some_and(|a| a.starts_with(b"endstream")));
        if eol > 0 && closes && file.get(start..end) == Some(data) {
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

/// The number of colour components of an image a browser draws exactly as a PDF reader would (a
/// plain `DCTDecode` image, 8 bits, RGB or grey, with no mask, decode array, parameters or optional
/// content), or `None`.
fn plain_jpeg(doc: &Document, dict: &Dictionary) -> Option<u8> {
    let name = |key: &[u8]| dict.get(key).ok().and_then(|o| doc.dereference(o).ok()).map(|(_, o)| o);
    let filter_ok = match name(b"Filter") {
        Some(Object::Name(n)) => n == b"DCTDecode",
        Some(Object::Array(a)) => matches!(a.as_slice(), [Object::Name(n)] if n == b"DCTDecode"),
        _ => false,
    };
    let components = match name(b"ColorSpace") {
        Some(Object::Name(n)) if n == b"DeviceRGB" => 3,
        Some(Object::Name(n)) if n == b"DeviceGray" => 1,
        _ => return None,
    };
    let bits_ok = matches!(name(b"BitsPerComponent"), Some(Object::Integer(8)));
    let subtype_ok = matches!(name(b"Subtype"), Some(Object::Name(n)) if n == b"Image");
    let plain =
        ["SMask", "Mask", "Decode", "ImageMask", "DecodeParms", "OC"].iter().all(|k| !dict.has(k.as_bytes()));
    (filter_ok && bits_ok && subtype_ok && plain).then_some(components)
}

#[cfg(test)]
mod tests {
    use lopdf::{Stream, dictionary};

    use super::*;

    /// Not a picture, but a JPEG's shape: start of image, a frame of 3 components, a scan, the end.
    const JPEG: &[u8] =
        &[0xff, 0xd8, 0xff, 0xc0, 0, 8, 8, 0, 10, 0, 10, 3, 0xff, 0xda, 0, 2, 1, 2, 3, 0xff, 0xd9];

    /// A PDF of pages whose contents are these, each with the image `Im` (its dictionary changed by
    /// `image`), on A4.
    fn book(contents: &[&str], image: impl Fn(&mut Dictionary)) -> Vec<u8> {
        book_with(contents, image, |_| {})
    }

    /// As `book`, with each page's dictionary changed by `page`.
    fn book_with(
        contents: &[&str],
        image: impl Fn(&mut Dictionary),
        page: impl Fn(&mut Dictionary),
    ) -> Vec<u8> {
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
            let mut dict = dictionary! {
                "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
                "Resources" => dictionary! { "XObject" => dictionary! { "Im" => image_id } },
            };
            page(&mut dict);
            kids.push(doc.add_object(dict).into());
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
        assert_eq!(
            scan(&book(&full, |d| d.set("OC", Object::Reference((1, 0))))),
            vec![None],
            "optional content"
        );
        assert_eq!(
            scan(&book(&full, |d| d.set("ColorSpace", "DeviceGray"))),
            vec![None],
            "3 components, grey"
        );
    }

    #[test]
    fn a_rotated_cropped_or_annotated_page_is_left_to_pdf_js() {
        let full = ["q 595 0 0 842 0 0 cm /Im Do Q"];
        let with = |f: &dyn Fn(&mut Dictionary)| scan(&book_with(&full, |_| {}, f));
        assert!(with(&|_| {})[0].is_some());
        assert_eq!(with(&|p| p.set("Rotate", 90)), vec![None]);
        assert_eq!(with(&|p| p.set("Rotate", Object::Real(90.0))), vec![None], "a real number");
        assert!(with(&|p| p.set("Rotate", 360))[0].is_some());
        let crop = vec![10.into(), 10.into(), 585.into(), 832.into()];
        assert_eq!(with(&|p| p.set("CropBox", crop.clone())), vec![None]);
        let same = vec![0.into(), 0.into(), 595.into(), 842.into()];
        assert!(with(&|p| p.set("CropBox", same.clone()))[0].is_some());
        assert_eq!(with(&|p| p.set("Annots", vec![Object::Dictionary(Dictionary::new())])), vec![None]);
    }

    #[test]
    fn a_page_tree_that_miscounts_its_pages_is_left_to_pdf_js() {
        let mut pdf = book(&["q 595 0 0 842 0 0 cm /Im Do Q"], |_| {});
        let at = pdf.windows(8).position(|w| w == b"/Count 1").unwrap();
        pdf[at + 7] = b'2';
        assert_eq!(scan(&pdf), vec![None]);
    }

    #[test]
    fn the_demo_lesson_has_no_scanned_pages() {
        let pdf = crate::demo::demo_pdf().unwrap();
        assert!(scan(&pdf).iter().all(Option::is_none));
    }
}
