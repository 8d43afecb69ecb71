//! A TCP connection made from inside another network namespace: a socket keeps the namespace it
//! was made in, so one process can be the teacher in the rig's school and the students in a home,
//! on one clock (tests/wan/rig.sh).

use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use anyhow::Context;

/// Connects to `addr` from namespace `ns` (`/var/run/netns/NAME`, as `ip netns add` makes it), on a
/// thread of its own that enters the namespace and ends; the stream comes back non-blocking.
pub fn tcp_in(ns: &str, addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let path = format!("/var/run/netns/{ns}");
    let file = std::fs::File::open(&path).with_context(|| format!("no network namespace {path}"))?;
    let thread = std::thread::spawn(move || -> anyhow::Result<TcpStream> {
        #[allow(unsafe_code)] // setns on this thread only, with an open namespace descriptor
        // SAFETY: the descriptor is open for the call; entering a network namespace changes only
        // this thread, which ends right after.
        let entered = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        if entered != 0 {
            anyhow::bail!("entering the network namespace: {}", std::io::Error::last_os_error());
        }
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
        tcp.set_nonblocking(true)?;
        tcp.set_nodelay(true)?;
        Ok(tcp)
    });
    thread.join().map_err(|_| anyhow::anyhow!("the namespace thread panicked"))?
}

/// A WebSocket to `url` (pinned to `fp`), made from inside network namespace `ns` when one is named
/// (the URL must then hold an address, not a name).
pub async fn connect(ns: Option<&str>, url: &str, fp: &str) -> anyhow::Result<lectern::client::Socket> {
    let Some(ns) = ns else { return Ok(lectern::client::connect(url, fp).await?) };
    let addr: SocketAddr = url
        .trim_start_matches("wss://")
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .context("a connection from another namespace needs an address, not a name, in the URL")?;
    let ns = ns.to_string();
    let tcp = tokio::task::spawn_blocking(move || tcp_in(&ns, addr)).await??;
    Ok(lectern::client::connect_over(tokio::net::TcpStream::from_std(tcp)?, url, fp).await?)
}
