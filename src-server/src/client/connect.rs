//! Opening a WebSocket to a classroom over TLS pinned to its certificate fingerprint (§8), with typed
//! errors: a caller stops on a pin mismatch or a certificate not valid for its name, and retries an
//! unreachable server.

use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::protocol::SUBPROTOCOL;

/// A WebSocket over pinned TLS.
pub type Socket = WebSocketStream<TlsStream<TcpStream>>;

/// Why a connection to a classroom could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL or host is malformed.
    #[error("bad address: {0}")]
    BadUrl(String),
    /// No TCP connection (the server is down, or the network does not reach it).
    #[error("cannot reach {addr}: {source}")]
    Unreachable {
        /// `host:port`.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The server's certificate is not the pinned one: another machine, or a new certificate.
    #[error(
        "the server's certificate fingerprint {seen} is not the pinned {expected}: this is not the classroom in the \
         link, or its certificate changed (ask the teacher for a new link)"
    )]
    PinMismatch {
        /// The fingerprint pinned.
        expected: String,
        /// The fingerprint the server showed.
        seen: String,
    },
    /// The server's certificate, checked by name (a relay link that pins no fingerprint), is not
    /// valid: expired, for another name, from an authority this device does not trust.
    #[error("the security certificate of {host} {problem}: ask whoever runs it (or the teacher) to mend it")]
    Certificate {
        /// The name checked.
        host: String,
        /// What is wrong with it.
        problem: crate::tls::CertProblem,
    },
    /// TLS failed for another reason.
    #[error("{0}")]
    Tls(String),
    /// The server did not accept the WebSocket upgrade.
    #[error("WebSocket upgrade failed: {0}")]
    Upgrade(String),
    /// Connecting took too long.
    #[error("connecting timed out")]
    Timeout,
}

impl ConnectError {
    /// Whether trying again cannot help: a pin mismatch, a certificate that is not valid for its
    /// name (it will not become valid while we wait), a malformed address.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            ConnectError::PinMismatch { .. } | ConnectError::Certificate { .. } | ConnectError::BadUrl(_)
        )
    }
}

/// Where a URL points: the host as written (brackets kept for IPv6), the bare host, and the port.
fn target(url: &str) -> Result<(String, String, u16), ConnectError> {
    let parsed = url::Url::parse(url).map_err(|e| ConnectError::BadUrl(format!("{url:?}: {e}")))?;
    let host =
        parsed.host_str().ok_or_else(|| ConnectError::BadUrl(format!("no host in {url:?}")))?.to_string();
    let port = parsed.port().unwrap_or(lectern_protocol::DEFAULT_PORT);
    let bare = host.trim_start_matches('[').trim_end_matches(']').to_string();
    Ok((host, bare, port))
}

/// Opens a TCP connection and a TLS session to `url`'s host, trusting only the certificate with
/// `fingerprint`.
pub async fn tls(url: &str, fingerprint: &str) -> Result<TlsStream<TcpStream>, ConnectError> {
    let (host, bare, port) = target(url)?;
    let tcp = TcpStream::connect((bare.as_str(), port))
        .await
        .map_err(|source| ConnectError::Unreachable { addr: format!("{host}:{port}"), source })?;
    tls_over(tcp, url, fingerprint).await
}

/// Like [`tls`], over a TCP stream the caller opened (from a chosen source address, say).
pub async fn tls_over(
    tcp: TcpStream,
    url: &str,
    fingerprint: &str,
) -> Result<TlsStream<TcpStream>, ConnectError> {
    let (_, bare, port) = target(url)?;
    let _ = tcp.set_nodelay(true);
    let config =
        crate::tls::pinned_client_config(fingerprint).map_err(|e| ConnectError::Tls(e.to_string()))?;
    let name = rustls::pki_types::ServerName::try_from(bare.clone())
        .map_err(|e| ConnectError::BadUrl(format!("bad host name {bare:?}: {e}")))?;
    TlsConnector::from(Arc::new(config)).connect(name, tcp).await.map_err(|e| {
        if let Some(m) = crate::tls::pin_mismatch(&e) {
            return ConnectError::PinMismatch { expected: m.expected.clone(), seen: m.seen.clone() };
        }
        // Only a link that pins nothing is checked by name; a pinned link's other TLS failures (a
        // peer replaying the pinned certificate without its key, say) stay retryable.
        match crate::tls::certificate_problem(&e).filter(|_| fingerprint.is_empty()) {
            Some(problem) => ConnectError::Certificate { host: bare.clone(), problem },
            None => ConnectError::Tls(format!("TLS with {bare}:{port} failed: {e}")),
        }
    })
}

/// Opens a WebSocket to `ws_url`, trusting only the certificate with `fingerprint`.
pub async fn connect(ws_url: &str, fingerprint: &str) -> Result<Socket, ConnectError> {
    let tls = tls(ws_url, fingerprint).await?;
    upgrade(tls, ws_url).await
}

/// Like [`connect`], over a TCP stream the caller opened (to set socket options, say).
pub async fn connect_over(tcp: TcpStream, ws_url: &str, fingerprint: &str) -> Result<Socket, ConnectError> {
    let tls = tls_over(tcp, ws_url, fingerprint).await?;
    upgrade(tls, ws_url).await
}

async fn upgrade(tls: TlsStream<TcpStream>, ws_url: &str) -> Result<Socket, ConnectError> {
    let mut request = ws_url.into_client_request().map_err(|e| ConnectError::BadUrl(format!("{e}")))?;
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(SUBPROTOCOL));
    let config = WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(64 << 20));
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, tls, Some(config))
        .await
        .map_err(|e| ConnectError::Upgrade(e.to_string()))?;
    Ok(ws)
}
