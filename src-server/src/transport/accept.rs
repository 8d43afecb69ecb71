//! The accept loop, shared by the teacher's server and the relay.
//!
//! Connections are capped by a semaphore (handshakes included), below the descriptor limit, and per
//! address (`slots`); accept errors are classified (a peer's reset is skipped, running out of
//! descriptors backs off); every connection is a tracked task that watches the shutdown token. Only
//! HTTP/1.1 is spoken (TLS offers nothing else), and an HTTP connection idle for `idle_timeout`
//! is closed. On a relay behind load balancers the operator named, each of their connections starts
//! with a PROXY protocol header (`proxy`), and the client it names is the one every limit counts.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::host::Host;

/// The most an HTTP/1.1 connection buffers: of an answer its peer does not read, and of a request's
/// head (hyper applies one bound to both; 64 KiB of headers is far more than any client sends).
const CONNECTION_BUFFER: usize = 64 * 1024;

/// Accepts connections until shutdown: TLS, then HTTP/1.1 with upgrades (the WebSocket). From the
/// load balancers in `proxies`, a PROXY protocol v2 header first, which names the client.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    tls: TlsAcceptor,
    router: axum::Router,
    app: Arc<Host>,
    proxies: super::proxy::TrustedProxies,
) {
    let total = super::slots::total_cap(app.limits.max_connections);
    let permits = Arc::new(tokio::sync::Semaphore::new(total));
    // By default one address never holds more than an eighth of all the connections there can be;
    // a value set in the configuration (a benchmark from one machine, say) is kept, within the total.
    let asked = app.limits.max_connections_per_address;
    let default = crate::config::Limits::default().max_connections_per_address;
    let share = if asked == default { total / 8 } else { total };
    let per_address = super::slots::PerAddress::new(asked.min(share).max(1));
    let mut backoff = Duration::from_millis(5);
    loop {
        let permit = tokio::select! {
            _ = app.shutdown.cancelled() => return,
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
        };
        let (tcp, peer) = tokio::select! {
            _ = app.shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(c) => { backoff = Duration::from_millis(5); c }
                Err(e) => {
                    // Per-connection errors (reset before accept) are the peer's; resource errors (out of
                    // file descriptors) are ours: back off instead of spinning.
                    if matches!(e.kind(), std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset) {
                        continue;
                    }
                    tracing::warn!(error = %e, "accept failed; backing off");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
        };
        if proxies.trusts(peer.ip()) {
            // A load balancer the operator named: its PROXY header says whose connection this is, and
            // only then does anything count (within the handshake's time, as a TLS hello would).
            let (per_address, tls, router, app2) =
                (per_address.clone(), tls.clone(), router.clone(), app.clone());
            app.tracker.spawn(async move {
                let mut tcp = tcp;
                let header = tokio::time::timeout(
                    super::proxy::HEADER_WAIT,
                    super::proxy::read_header(&mut tcp, peer),
                );
                let client = match header.await {
                    Ok(Ok(client)) => client,
                    Ok(Err(e)) => return super::proxy::warn_misconfigured(peer, &e.to_string()),
                    Err(_) => return super::proxy::warn_misconfigured(peer, "no header in time"),
                };
                let Some(slot) = per_address.take(client.ip()) else { return };
                serve(tcp, client, (permit, slot), tls, router, app2).await;
            });
            continue;
        }
        // One address's flood waits for nothing and holds nothing: over its share, closed at once.
        let Some(slot) = per_address.take(peer.ip()) else {
            tracing::debug!(%peer, "over the connections allowed per address; closed");
            continue;
        };
        app.tracker.spawn(serve(tcp, peer, (permit, slot), tls.clone(), router.clone(), app.clone()));
    }
}

/// Serves one connection from `peer` (the client, as a trusted balancer named it): TLS, then HTTP/1.1
/// with upgrades, holding `held` (its permit of the total and its slot of its address) for its life.
async fn serve(
    tcp: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    held: (tokio::sync::OwnedSemaphorePermit, super::slots::Slot),
    tls: TlsAcceptor,
    router: axum::Router,
    app: Arc<Host>,
) {
    let _ = tcp.set_nodelay(true);
    if !app.timing.rto_min.is_zero()
        && let Err(e) = crate::tcp::set_rto_min(&tcp, app.timing.rto_min)
    {
        // An older kernel or another system: the writer's tail probe still shortens the tail.
        tracing::debug!(error = %e, "TCP_RTO_MIN_US not set");
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if app.limits.unsent_bytes > 0
        && let Err(e) = socket2::SockRef::from(&tcp).set_tcp_notsent_lowat(app.limits.unsent_bytes)
    {
        tracing::debug!(error = %e, "TCP_NOTSENT_LOWAT not set");
    }
    let handshake = tokio::time::timeout(app.timing.tls_handshake_timeout, tls.accept(tcp));
    let stream = match handshake.await {
        // The ACME server checking a relay's challenge (`relay::acme`) asks for nothing more.
        Ok(Ok(s)) if s.get_ref().1.alpn_protocol() == Some(crate::tls::ACME_CHALLENGE_ALPN) => return,
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => return,
    };
    let svc = router.map_request(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req
    });
    let svc = TowerToHyperService::new(svc);
    // HTTP/1.1 only, as TLS announces (hyper-util's auto builder would still speak HTTP/2 to a raw
    // preface, and keep it for ever): a preface is a parse error, and the connection closes. An idle
    // or trickling connection must not hold a slot for ever either.
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(app.timing.idle_timeout)
        // What a connection buffers of an answer its peer does not read (a document, streamed): a
        // relay holding 120 such answers holds 120 of these, not 120 documents.
        .max_buf_size(CONNECTION_BUFFER)
        // The connection's permit and per-address slot travel with its stream, so a WebSocket holds
        // them for its whole life, after the upgrade too.
        .serve_connection(TokioIo::new(super::slots::Held::new(stream, held)), svc)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => { if let Err(e) = r { tracing::debug!(%peer, error = %e, "http connection"); } }
        _ = app.shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
        }
    }
}
