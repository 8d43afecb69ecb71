//! HTTPS requests to a classroom over the same pinned TLS as its WebSocket: documents, uploads and the
//! teacher's reports, for clients that cannot trust the server's self-signed certificate any other way
//! (the app's webview cannot; its Rust side fetches for it).

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::header::{AUTHORIZATION, CONTENT_RANGE, CONTENT_TYPE, HOST, RANGE};
use hyper_util::rt::TokioIo;

use super::connect::{ConnectError, tls};

/// The most a response body may hold: the largest document a server accepts (§9) and a little.
pub const MAX_BODY: usize = 210 << 20;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No pinned connection (unreachable, wrong certificate, bad address).
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The HTTP exchange failed or the body was too large.
    #[error("HTTP: {0}")]
    Http(String),
}

/// An answer: its status and body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status code.
    pub status: u16,
    /// The body.
    pub body: Bytes,
    /// Its content type, if given.
    pub content_type: Option<String>,
    /// The document's whole length, from `Content-Range` (an answer to a range request).
    pub total: Option<u64>,
}

/// The longest a request may take to connect and get its answer's head; the body then has as long
/// as it needs (a large document on a slow link).
pub const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Sends one request to `url` (`https://HOST:PORT/path`) over TLS pinned to `fingerprint`.
pub async fn request(
    method: &str,
    url: &str,
    fingerprint: &str,
    bearer: Option<&str>,
    body: Option<Bytes>,
) -> Result<Answer, FetchError> {
    exchange(method, url, fingerprint, bearer, body, None, MAX_BODY).await
}

/// GETs `url` over TLS pinned to `fingerprint`, refusing an answer longer than `limit` bytes (from a
/// server not trusted with more: a relay's manifest, say).
pub async fn get_within(
    url: &str,
    fingerprint: &str,
    bearer: Option<&str>,
    limit: usize,
) -> Result<Answer, FetchError> {
    exchange("GET", url, fingerprint, bearer, None, None, limit).await
}

/// GETs bytes `[begin, end)` of `url` over TLS pinned to `fingerprint`: `206` with the document's
/// whole length in [`Answer::total`], or `200` with all of it from a server that ignores ranges.
pub async fn get_range(
    url: &str,
    fingerprint: &str,
    bearer: Option<&str>,
    begin: u64,
    end: u64,
) -> Result<Answer, FetchError> {
    exchange("GET", url, fingerprint, bearer, None, Some((begin, end)), MAX_BODY).await
}

/// [`get_range`], refusing an answer longer than `limit` bytes: a server not trusted with more (a
/// relay) cannot make this device hold a whole document for a piece.
pub async fn get_range_within(
    url: &str,
    fingerprint: &str,
    bearer: Option<&str>,
    (begin, end): (u64, u64),
    limit: usize,
) -> Result<Answer, FetchError> {
    exchange("GET", url, fingerprint, bearer, None, Some((begin, end)), limit).await
}

/// The longest an answer's body may go without a byte: a server that sends the head and then
/// trickles nothing cannot hold a request (and the view's place for it) for ever.
pub const BODY_IDLE: std::time::Duration = std::time::Duration::from_secs(30);

async fn exchange(
    method: &str,
    url: &str,
    fingerprint: &str,
    bearer: Option<&str>,
    body: Option<Bytes>,
    range: Option<(u64, u64)>,
    limit: usize,
) -> Result<Answer, FetchError> {
    let parsed = url::Url::parse(url).map_err(|e| ConnectError::BadUrl(format!("{url:?}: {e}")))?;
    let stream =
        tokio::time::timeout(TIMEOUT, tls(url, fingerprint)).await.map_err(|_| ConnectError::Timeout)??;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| FetchError::Http(e.to_string()))?;
    let driver = tokio::spawn(conn);
    let host = parsed.host_str().unwrap_or_default();
    let authority = match parsed.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let path = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_string(),
    };
    let mut req = Request::builder().method(method).uri(path).header(HOST, authority);
    if let Some(token) = bearer {
        req = req.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    if body.is_some() {
        req = req.header(CONTENT_TYPE, "application/pdf");
    }
    if let Some((begin, end)) = range.filter(|(b, e)| e > b) {
        req = req.header(RANGE, format!("bytes={begin}-{}", end - 1));
    }
    let req = req.body(Full::new(body.unwrap_or_default())).map_err(|e| FetchError::Http(e.to_string()))?;
    let res = tokio::time::timeout(TIMEOUT, sender.send_request(req))
        .await
        .map_err(|_| FetchError::Http("no answer in time".into()))?
        .map_err(|e| FetchError::Http(e.to_string()))?;
    let status = res.status().as_u16();
    let content_type = res.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
    // `bytes 0-65535/52428800`: the length after the slash.
    let total = res
        .headers()
        .get(CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit_once('/'))
        .and_then(|(_, n)| n.parse().ok());
    let mut incoming = Limited::new(res.into_body(), limit);
    let mut body = bytes::BytesMut::new();
    loop {
        match tokio::time::timeout(BODY_IDLE, incoming.frame()).await {
            Err(_) => return Err(FetchError::Http("the answer stopped arriving".into())),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(FetchError::Http(e.to_string())),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    body.extend_from_slice(&data);
                }
            }
        }
    }
    let body = body.freeze();
    driver.abort();
    Ok(Answer { status, body, content_type, total })
}
