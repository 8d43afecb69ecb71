//! Documents for tests that need more than the demo lesson: a scanned book whose every page is one
//! full-page JPEG of its own, a PDF built to cost memory when parsed, and requests for a document
//! whose answers are left unread.

use bytes::Bytes;
use http_body_util::Empty;
use hyper::Request;
use hyper::header::{AUTHORIZATION, HOST, RANGE};
use hyper_util::rt::TokioIo;

/// One page of a test PDF.
pub enum Page {
    /// A scanned page: one full-page image, these JPEG bytes (4×4 pixels, grey), its own object.
    Scan(Vec<u8>),
    /// A drawn page: this content stream.
    Drawn(&'static str),
}

/// A PDF of one page and `filler` empty objects, with a correct cross-reference table: cheap to
/// write, costly to parse (every object is kept).
pub fn many_objects(filler: u32) -> Vec<u8> {
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    let mut obj = |pdf: &mut Vec<u8>, body: &str| {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", offsets.len()).as_bytes());
    };
    obj(&mut pdf, "<</Type/Catalog/Pages 2 0 R>>");
    obj(&mut pdf, "<</Type/Pages/Kids[3 0 R]/Count 1>>");
    obj(&mut pdf, "<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>");
    for _ in 0..filler {
        obj(&mut pdf, "<</A 1>>");
    }
    let xref = pdf.len();
    pdf.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", offsets.len() + 1).as_bytes());
    for o in &offsets {
        pdf.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!("trailer\n<</Size {}/Root 1 0 R>>\nstartxref\n{xref}\n%%EOF\n", offsets.len() + 1).as_bytes(),
    );
    pdf
}

/// A PDF of these pages, A4, uncompressed.
pub fn pdf_of(pages: Vec<Page>) -> Vec<u8> {
    use lopdf::{Document, Object, Stream, dictionary};
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let mut kids: Vec<Object> = Vec::new();
    for page in pages {
        let (content, resources) = match page {
            Page::Scan(jpeg) => {
                let image = dictionary! {
                    "Type" => "XObject", "Subtype" => "Image", "Width" => 4, "Height" => 4,
                    "ColorSpace" => "DeviceGray", "BitsPerComponent" => 8, "Filter" => "DCTDecode",
                };
                let image = doc.add_object(Stream::new(image, jpeg).with_compression(false));
                ("q 595 0 0 842 0 0 cm /Im Do Q", dictionary! { "XObject" => dictionary! { "Im" => image } })
            }
            Page::Drawn(content) => (content, dictionary! {}),
        };
        let content = doc.add_object(Stream::new(dictionary! {}, content.as_bytes().to_vec()));
        let page = doc.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "Contents" => content,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
            "Resources" => resources,
        });
        kids.push(page.into());
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => count }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog);
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}

/// A PDF of `pages` pages, each one full-page JPEG of about `image_bytes` bytes (its own object,
/// with its page number in its bytes, so no two pages are alike): a scanned book's shape.
pub fn scanned_book(pages: usize, image_bytes: usize) -> Vec<u8> {
    let scans = (0..pages).map(|n| {
        // A JPEG's shape: start of image, a frame of one (grey) component, a scan, filler, the end.
        let mut jpeg = vec![0xff, 0xd8, 0xff, 0xc0, 0, 8, 8, 0, 4, 0, 4, 1, 0xff, 0xda, 0, 2];
        jpeg.extend((0..image_bytes).map(|i| ((i * 31 + n * 7) % 200) as u8));
        jpeg.extend_from_slice(&[0xff, 0xd9]);
        Page::Scan(jpeg)
    });
    pdf_of(scans.collect())
}

/// An answer whose body is left unread: the connection stays open, and the server's side fills up.
pub struct Unread {
    /// Its status.
    pub status: u16,
    _response: hyper::Response<hyper::body::Incoming>,
    driver: tokio::task::JoinHandle<()>,
}

/// GETs `url` (`https://HOST:PORT/path`, pinned to `fingerprint`) with `token` and a `Range`
/// header as given, and reads only the answer's head.
pub async fn unread(url: &str, fingerprint: &str, token: &str, range: Option<&str>) -> Unread {
    let parsed = url::Url::parse(url).unwrap();
    let stream = lectern::client::tls(url, fingerprint).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let authority = format!("{}:{}", parsed.host_str().unwrap(), parsed.port().unwrap());
    let mut req =
        Request::get(parsed.path()).header(HOST, authority).header(AUTHORIZATION, format!("Bearer {token}"));
    if let Some(range) = range {
        req = req.header(RANGE, range);
    }
    let response = sender.send_request(req.body(Empty::<Bytes>::new()).unwrap()).await.unwrap();
    Unread { status: response.status().as_u16(), _response: response, driver }
}

impl Drop for Unread {
    fn drop(&mut self) {
        self.driver.abort(); // the connection closes
    }
}
