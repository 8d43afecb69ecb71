//! The accept loop and the server's periodic upkeep.
//!
//! Connections are capped by a semaphore (handshakes included), below the descriptor limit, and per
//! address (`slots`); accept errors are classified (a peer's reset is skipped, running out of
//! descriptors backs off); every connection is a tracked task that watches the shutdown token. Only
//! HTTP/1.1 is spoken (TLS offers nothing else), and an HTTP connection idle for `idle_timeout`
//! is closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::AppState;
use super::host::Host;

/// Binds a listener. The unspecified IPv6 address (`[::]`, the default) is bound dual-stack, so IPv4
/// and IPv6 students alike can connect; where the system has no IPv6 at all, it falls back to
/// `0.0.0.0` on the same port.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = |addr: SocketAddr| -> std::io::Result<TcpListener> {
        let s = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
        if addr.is_ipv6() {
            s.set_only_v6(false)?;
        }
        s.set_reuse_address(true)?;
        s.set_nonblocking(true)?;
        s.bind(&addr.into())?;
        s.listen(1024)?;
        TcpListener::from_std(s.into())
    };
    match socket(addr) {
        Err(e)
            if addr.ip() == std::net::IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED)
                && e.kind() != std::io::ErrorKind::AddrInUse =>
        {
            tracing::info!(error = %e, "no IPv6 here; listening on IPv4 only");
            socket(SocketAddr::from(([0, 0, 0, 0], addr.port())))
        }
        r => r,
    }
}

/// Runs the periodic upkeep: roster coalescing, metrics upkeep, forgetting old failed hellos.
pub(super) fn spawn_upkeep(app: &AppState) {
    let a = app.clone();
    app.tracker.spawn(async move {
        let mut tick = tokio::time::interval(a.timing.roster_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut n = 0u64;
        loop {
            tokio::select! {
                _ = a.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            a.rooms().flush_rosters();
            n += 1;
            if n.is_multiple_of(50) {
                a.metrics.upkeep();
                a.failed_hellos.prune();
                a.knocks.prune();
                a.held_claims.prune();
            }
        }
    });
}

/// Accepts connections until shutdown: TLS, then HTTP/1.1 with upgrades (the WebSocket).
pub(crate) async fn accept_loop(
    listener: TcpListener,
    tls: TlsAcceptor,
    router: axum::Router,
    app: Arc<Host>,
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
        // One address's flood waits for nothing and holds nothing: over its share, closed at once.
        let Some(slot) = per_address.take(peer.ip()) else {
            tracing::debug!(%peer, "over the connections allowed per address; closed");
            continue;
        };
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
        let tls = tls.clone();
        let router = router.clone();
        let app2 = app.clone();
        app.tracker.spawn(async move {
            let handshake = tokio::time::timeout(app2.timing.tls_handshake_timeout, tls.accept(tcp));
            let stream = match handshake.await {
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
            // HTTP/1.1 only, as TLS announces (hyper-util's auto builder would still speak HTTP/2 to
            // a raw preface, and keep it for ever): a preface is a parse error, and the connection
            // closes. An idle or trickling connection must not hold a slot for ever either.
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(app2.timing.idle_timeout)
                // The connection's permit and per-address slot travel with its stream, so a
                // WebSocket holds them for its whole life, after the upgrade too.
                .serve_connection(TokioIo::new(super::slots::Held::new(stream, (permit, slot))), svc)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => { if let Err(e) = r { tracing::debug!(%peer, error = %e, "http connection"); } }
                _ = app2.shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Config;
    use crate::engine::outbox::{Item, Outbox};
    use crate::protocol::Hello;

    fn hello(role: &str, secret: &str, device: &str) -> Hello {
        let (key, code) =
            if role == "teacher" { (Some(secret.into()), None) } else { (None, Some(secret.into())) };
        Hello {
            v: Some(1.into()),
            role: Some(role.into()),
            key,
            code,
            name: (role == "student").then(|| "Aisha".into()),
            device: Some(device.into()),
            ..Hello::default()
        }
    }

    fn rosters(outbox: &Outbox) -> usize {
        outbox.take().items.iter().filter(|i| matches!(i, Item::Roster(_))).count()
    }

    /// Acks and round trips reach the teacher folded into one roster update per interval (§6: at
    /// most 10 a second), never sooner; a join reaches it at once.
    #[tokio::test(start_paused = true)]
    async fn acks_reach_the_teacher_once_per_roster_interval() {
        let dir = tempfile::tempdir().unwrap();
        let config =
            Config { data_dir: Some(dir.path().into()), code: Some("482913".into()), ..Config::default() };
        let prepared = crate::server::setup::prepare(&config).unwrap();
        let key = prepared.parts.teacher_key.clone();
        let app = AppState::new(prepared.parts);
        spawn_upkeep(&app);
        let room = app.room();
        let teacher = room.join(hello("teacher", &key, "teacher-device"), None, false).unwrap();
        let _ = teacher.outbox.take(); // the welcome
        let student = room.join(hello("student", "482913", "student-device-1"), None, false).unwrap();
        assert_eq!(rosters(&teacher.outbox), 1, "a join is sent at once");

        // Let the upkeep's interval start, then ack: nothing until the interval has passed.
        tokio::time::sleep(Duration::from_millis(1)).await;
        let start = tokio::time::Instant::now();
        room.ack(&student.pid, 0, &student.outbox);
        room.rtt(&student.pid, 7);
        tokio::time::sleep_until(start + Duration::from_millis(95)).await;
        assert_eq!(rosters(&teacher.outbox), 0, "acks are held until the roster interval");
        tokio::time::sleep_until(start + Duration::from_millis(101)).await;
        assert_eq!(rosters(&teacher.outbox), 1, "the ack and the round trip arrive as one update");
        app.shutdown.cancel();
        app.store.close(Duration::from_secs(1));
    }
}
