//! The web UI (`ui/`, built by Vite) embedded in the binary: `/` and `/join` are the student view,
//! `/teacher` the console, `/assets/*` their scripts and styles. HTML is never cached (a new server
//! version must show at once); hashed assets are cached for a year. Text files are sent in the
//! brotli or gzip form the build made beside them when the browser takes it.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;

/// The built UI, staged by `build.rs`.
#[derive(Embed)]
#[folder = "$OUT_DIR/ui"]
struct Assets;

/// What a page may load: only this server, plus data/blob images (the QR code, rendered pages) and
/// the pdf.js worker.
const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; worker-src 'self' blob:; \
    style-src 'self' 'unsafe-inline'; font-src 'self' data:; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Serves a UI path, or 404.
pub async fn serve(req: Request) -> Response {
    let path = req.uri().path();
    let file = match path {
        "/" | "/join" | "/join/" | "/index.html" => "index.html",
        "/teacher" | "/teacher/" | "/teacher.html" => "teacher.html",
        p => p.trim_start_matches('/'),
    };
    let Some(content) = Assets::get(file) else {
        return super::api_error::ApiError::NotFound(format!("nothing at {path}")).into_response();
    };
    let mime = content.metadata.mimetype().to_string();
    let accepted = req.headers().get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("");
    // Pages go out as they are: a compressed HTML response is what BREACH reads (these pages hold no
    // secret, but a TLS scanner flags it, and they are a few kB); scripts and styles are compressed.
    let compressible = !file.ends_with(".html");
    let encoded = [("br", "br"), ("gzip", "gz")]
        .into_iter()
        .filter(|(coding, _)| compressible && accepts(accepted, coding))
        .find_map(|(coding, ext)| Some((coding, Assets::get(&format!("{file}.{ext}"))?)));
    let (content, coding) = match encoded {
        Some((coding, encoded)) => (encoded, Some(coding)),
        None => (content, None),
    };
    // Each form is its own representation: its own tag.
    let etag = format!("\"{}\"", crate::hex(&content.metadata.sha256_hash()));
    let mut headers = HeaderMap::new();
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    let cache = if file.starts_with("assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    // Only a body has an encoding (a 304 has none).
    if let Some(coding) = coding {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
    }
    if let Ok(v) = HeaderValue::from_str(&mime) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if file.ends_with(".html") {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    }
    (headers, Body::from(content.data.into_owned())).into_response()
}

/// Whether an `Accept-Encoding` value takes `coding` (named, and not with `q=0`).
fn accepts(header: &str, coding: &str) -> bool {
    header.split(',').any(|part| {
        let mut fields = part.split(';').map(str::trim);
        let named = fields.next().is_some_and(|name| name.eq_ignore_ascii_case(coding));
        let refused = fields.any(|f| {
            let (name, value) = f.split_once('=').unwrap_or((f, ""));
            name.trim().eq_ignore_ascii_case("q") && value.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
        });
        named && !refused
    })
}

#[cfg(test)]
mod tests {
    use super::accepts;

    #[test]
    fn accept_encoding_is_read_with_its_weights() {
        assert!(accepts("gzip, deflate, br, zstd", "br"));
        assert!(accepts("gzip;q=0.5", "gzip"));
        assert!(!accepts("gzip;q=0, br;q=0", "br"));
        assert!(!accepts("gzip;q=0", "gzip"));
        assert!(!accepts("br;Q=0", "br"), "the parameter's name is case-insensitive");
        assert!(!accepts("", "br"));
        assert!(!accepts("brotli", "br"));
    }
}
