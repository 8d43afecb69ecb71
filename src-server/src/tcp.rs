//! A lesson's TCP sockets: the listener ([`bind`]), and their minimum retransmission timeout
//! (docs/WIFI.md).
//!
//! When the last segment of a page turn is lost on a weak link, TCP finds out from its tail-loss probe
//! or its retransmission timer. With one segment in flight, both wait at least the minimum RTO:
//! 200 ms on Linux, longer than the rest of a page turn's path together. Linux 6.15 and later let a
//! socket lower it (`TCP_RTO_MIN_US`); older kernels and other systems refuse the option, and Lectern
//! carries on with the system's value (the writer's tail probe covers them, see
//! `transport::connection::write`).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;

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

/// Sets the socket's minimum retransmission timeout, where the kernel has the option.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn set_rto_min(socket: &impl std::os::fd::AsFd, min: Duration) -> io::Result<()> {
    let us = libc::c_int::try_from(min.as_micros()).unwrap_or(libc::c_int::MAX);
    linux::set(socket, linux::TCP_RTO_MIN_US, us)
}

/// Reads the socket's minimum retransmission timeout back (rounded by the kernel to its clock tick).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn rto_min(socket: &impl std::os::fd::AsFd) -> io::Result<Duration> {
    let us = linux::get(socket, linux::TCP_RTO_MIN_US)?;
    Ok(Duration::from_micros(u64::try_from(us).unwrap_or(0)))
}

/// Sets the socket's minimum retransmission timeout: unsupported on this system.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn set_rto_min<S>(_socket: &S, _min: Duration) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Reads the socket's minimum retransmission timeout: unsupported on this system.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn rto_min<S>(_socket: &S) -> io::Result<Duration> {
    Err(io::ErrorKind::Unsupported.into())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[allow(unsafe_code)] // two libc calls on a borrowed, open descriptor, with sizes checked below
mod linux {
    use std::io;
    use std::os::fd::{AsFd, AsRawFd};

    /// `TCP_RTO_MIN_US` from linux/tcp.h (6.15); libc does not name it yet.
    pub const TCP_RTO_MIN_US: libc::c_int = 45;

    pub fn set(socket: &impl AsFd, option: libc::c_int, value: libc::c_int) -> io::Result<()> {
        let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: the descriptor is borrowed from a live socket for the call's duration, and the value
        // pointer and length describe one c_int on the stack.
        let r = unsafe {
            libc::setsockopt(
                socket.as_fd().as_raw_fd(),
                libc::IPPROTO_TCP,
                option,
                (&raw const value).cast(),
                len,
            )
        };
        if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
    }

    pub fn get(socket: &impl AsFd, option: libc::c_int) -> io::Result<libc::c_int> {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: as in `set`; the kernel writes at most `len` bytes into `value` and updates `len`.
        let r = unsafe {
            libc::getsockopt(
                socket.as_fd().as_raw_fd(),
                libc::IPPROTO_TCP,
                option,
                (&raw mut value).cast(),
                &raw mut len,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        if len as usize != std::mem::size_of::<libc::c_int>() {
            return Err(io::Error::other("the kernel answered TCP_RTO_MIN_US with an unexpected size"));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn the_minimum_rto_reads_back_as_set_where_the_kernel_has_it() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let stream = std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        match set_rto_min(&stream, Duration::from_millis(5)) {
            Ok(()) => {
                let back = rto_min(&stream).expect("getsockopt");
                // The kernel keeps it in clock ticks (1 to 10 ms): 5 ms reads back as at most one tick more.
                assert!(back >= Duration::from_millis(4) && back <= Duration::from_millis(10), "{back:?}");
                assert!(back < Duration::from_millis(200), "lower than the system's 200 ms");
            }
            // An older kernel: the option is unknown, which Lectern treats as "carry on".
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ENOPROTOOPT), "{e}"),
        }
    }
}
