//! `lectern doctor`: checks what commonly breaks discovery and joining in a classroom (no usable
//! interface, multicast not possible, the port in use, the port not reachable, mDNS not answering)
//! and says, for each problem, what to change. The CLI prints the checks; the app can show them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use crate::discovery::{Announcement, Announcer, Browser, Found, Interfaces};

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Passed?
    pub ok: bool,
    /// What was found.
    pub what: String,
    /// What to change, when it failed.
    pub fix: Option<String>,
}

impl Check {
    fn pass(what: impl Into<String>) -> Check {
        Check { ok: true, what: what.into(), fix: None }
    }
    fn fail(what: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { ok: false, what: what.into(), fix: Some(fix.into()) }
    }
}

/// The usable interfaces and their addresses.
fn usable(interfaces: &Interfaces) -> Vec<(String, IpAddr)> {
    let names = interfaces.select();
    let mut out: Vec<(String, IpAddr)> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| names.contains(&i.name))
        .map(|i| (i.name.clone(), i.ip()))
        .collect();
    out.sort();
    out
}

/// Interfaces: at least one usable one, and say which were skipped as virtual.
pub fn check_interfaces(interfaces: &Interfaces) -> (Check, Vec<(String, IpAddr)>) {
    let found = usable(interfaces);
    if found.is_empty() {
        let skipped: Vec<String> = if_addrs::get_if_addrs()
            .unwrap_or_default()
            .into_iter()
            .filter(|i| !i.is_loopback())
            .map(|i| i.name)
            .collect();
        let fix = if skipped.is_empty() {
            "connect this computer to the classroom's Wi-Fi or network cable; students find the class \
             only on the same network"
                .to_string()
        } else {
            format!(
                "only virtual interfaces are up ({}); connect to the classroom's network, or choose one \
                 with --mdns-interface NAME",
                skipped.join(", ")
            )
        };
        return (Check::fail("no usable network interface", fix), found);
    }
    let list: Vec<String> = found.iter().map(|(n, a)| format!("{n} {a}")).collect();
    (Check::pass(format!("network interfaces: {}", list.join(", "))), found)
}

/// Multicast: join the mDNS group on each IPv4 interface and hear our own packet.
pub fn check_multicast(found: &[(String, IpAddr)]) -> Check {
    let group = Ipv4Addr::new(224, 0, 0, 251);
    let v4: Vec<(&String, Ipv4Addr)> = found
        .iter()
        .filter_map(|(n, a)| match a {
            IpAddr::V4(v4) => Some((n, *v4)),
            IpAddr::V6(_) => None,
        })
        .collect();
    if v4.is_empty() {
        return Check::fail(
            "no IPv4 address to send multicast from",
            "get an IPv4 address on the classroom network (DHCP); most tablets look for classrooms over IPv4",
        );
    }
    let mut failures = Vec::new();
    for (name, addr) in &v4 {
        let result = (|| -> std::io::Result<()> {
            let sock = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
            sock.join_multicast_v4(&group, addr)?;
            sock.set_multicast_loop_v4(true)?;
            sock.set_read_timeout(Some(Duration::from_millis(500)))?;
            let port = sock.local_addr()?.port();
            let probe = format!("lectern-doctor {}", std::process::id());
            // Sent to the group on our own port: with loopback on, the kernel hands it back to us.
            let sender = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
            sender.set_multicast_if_v4(addr)?;
            sender.set_multicast_loop_v4(true)?;
            sender.send_to(probe.as_bytes(), &SocketAddrV4::new(group, port).into())?;
            let mut buf = [0u8; 64];
            let deadline = Instant::now() + Duration::from_millis(500);
            while Instant::now() < deadline {
                let (n, _) = sock.recv_from(&mut buf)?;
                if &buf[..n] == probe.as_bytes() {
                    return Ok(());
                }
            }
            Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "no multicast packet came back"))
        })();
        if let Err(e) = result {
            failures.push(format!("{name}: {e}"));
        }
    }
    if failures.is_empty() {
        Check::pass("multicast works (the mDNS group 224.0.0.251 can be joined and used)")
    } else {
        Check::fail(
            format!("multicast is not possible on {}", failures.join("; ")),
            "make sure the interface allows multicast (`ip link set DEV multicast on`) and that no \
             firewall drops UDP port 5353; on a guest or \"isolated\" Wi-Fi, ask for a network where \
             devices can see each other, or share the join link or QR code instead",
        )
    }
}

/// The port: free to listen on, or already served by Lectern.
pub async fn check_port(
    listen: SocketAddr,
    data_dir: &std::path::Path,
) -> (Check, Option<tokio::net::TcpListener>) {
    match crate::tcp::bind(listen) {
        Ok(l) => (Check::pass(format!("port {} is free", listen.port())), Some(l)),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let lectern = is_lectern(listen.port(), data_dir).await;
            let check = if lectern {
                Check::pass(format!("port {} is in use by a running Lectern", listen.port()))
            } else {
                Check::fail(
                    format!("port {} is in use by another program", listen.port()),
                    format!(
                        "stop that program, or start Lectern on another port: lectern serve --listen 0.0.0.0:{}",
                        listen.port().wrapping_add(1).max(1024)
                    ),
                )
            };
            (check, None)
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => (
            Check::fail(
                format!("not allowed to listen on port {}", listen.port()),
                "ports below 1024 need administrator rights; use the default, --listen 0.0.0.0:7443",
            ),
            None,
        ),
        Err(e) => {
            (Check::fail(format!("cannot listen on {listen}: {e}"), "check the --listen address"), None)
        }
    }
}

/// Whether the Lectern of this data directory serves this port: a WebSocket handshake pinned to its
/// certificate succeeds.
async fn is_lectern(port: u16, data_dir: &std::path::Path) -> bool {
    let Ok(identity) = crate::tls::Identity::load(data_dir) else {
        return false;
    };
    let url = format!("wss://127.0.0.1:{port}/v1/ws");
    matches!(
        tokio::time::timeout(Duration::from_secs(2), crate::client::connect(&url, &identity.fingerprint()))
            .await,
        Ok(Ok(_))
    )
}

/// Whether a server listening on `listen` answers on `addr`: an unspecified IPv4 address takes every
/// IPv4 address, an unspecified IPv6 address (dual stack) takes every address, and a specific
/// address only itself.
pub fn listens_on(listen: SocketAddr, addr: IpAddr) -> bool {
    match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => addr.is_ipv4(),
        IpAddr::V6(v6) if v6.is_unspecified() => true,
        ip => ip == addr,
    }
}

/// Reachability: connect to the port through each LAN address of this machine that a server
/// listening on `listen` would answer on (an IPv4-only server is not blamed for IPv6 addresses).
pub async fn check_reachable(found: &[(String, IpAddr)], listen: SocketAddr) -> Check {
    let port = listen.port();
    let mut bad = Vec::new();
    for (name, addr) in found.iter().filter(|(_, a)| listens_on(listen, *a)) {
        if let IpAddr::V6(v6) = addr
            && (v6.segments()[0] & 0xffc0) == 0xfe80
        {
            continue; // link-local needs a scope id; students use IPv4 or a routable IPv6
        }
        let target = SocketAddr::new(*addr, port);
        let ok = matches!(
            tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(target)).await,
            Ok(Ok(_))
        );
        if !ok {
            bad.push(format!("{target} ({name})"));
        }
    }
    if bad.is_empty() {
        Check::pass(format!("port {port} answers on every LAN address (checked from this machine)"))
    } else {
        Check::fail(
            format!("port {port} does not answer on {}", bad.join(", ")),
            format!(
                "a firewall blocks it: allow incoming TCP port {port} (for example `sudo ufw allow {port}/tcp`, \
                 or allow Lectern in the system's firewall settings)"
            ),
        )
    }
}

/// mDNS end to end on this machine: announce a test service and browse for it.
pub async fn check_mdns(interfaces: &Interfaces, port: u16) -> Check {
    let name = format!("lectern-doctor-{}", std::process::id());
    let announcement = Announcement {
        name: name.clone(),
        port,
        fingerprint: "A".repeat(43),
        room: "doctor".into(),
        title: "lectern doctor".into(),
        pk: None,
    };
    let announcer = {
        let (a, i) = (announcement.clone(), interfaces.clone());
        match tokio::task::spawn_blocking(move || Announcer::start(a, i)).await {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => {
                return Check::fail(format!("cannot start mDNS: {e}"), "see the multicast check above");
            }
            Err(e) => return Check::fail(format!("cannot start mDNS: {e}"), "see the multicast check above"),
        }
    };
    let started = Instant::now();
    let mut seen = None;
    if let Ok(mut browser) = Browser::open(interfaces).await {
        let deadline = started + Duration::from_secs(4);
        while let Some(event) = browser.next(deadline).await {
            if let Found::Resolved(room) = event
                && room.name == name
            {
                seen = Some(started.elapsed());
                break;
            }
        }
        browser.close().await;
    }
    let _ = tokio::task::spawn_blocking(move || announcer.stop()).await;
    match seen {
        Some(t) => Check::pass(format!("mDNS announce and browse work ({} ms to resolve)", t.as_millis())),
        None => Check::fail(
            "an mDNS announcement from this machine was not seen within 4 s",
            "another mDNS responder may hold port 5353 exclusively, or a firewall drops UDP 5353; allow \
             it, or share the join link or QR code",
        ),
    }
}

/// Runs every check, in order; a failed check carries what to change.
pub async fn checks(listen: SocketAddr, names: &[String], data_dir: &std::path::Path) -> Vec<Check> {
    let interfaces = Interfaces::from_names(names);
    let mut checks = Vec::new();
    let (c, found) = check_interfaces(&interfaces);
    checks.push(c);
    if !found.is_empty() {
        checks.push(check_multicast(&found));
    }
    let (c, listener) = check_port(listen, data_dir).await;
    let port_checked = c.ok;
    checks.push(c);
    if port_checked && !found.is_empty() {
        // Accept while we connect; a running Lectern accepts by itself.
        let accept = listener.map(|l| {
            tokio::spawn(async move {
                while let Ok((s, _)) = l.accept().await {
                    drop(s);
                }
            })
        });
        checks.push(check_reachable(&found, listen).await);
        if let Some(task) = accept {
            task.abort();
        }
    }
    if !found.is_empty() {
        checks.push(check_mdns(&interfaces, listen.port()).await);
    }
    checks
}

#[cfg(test)]
mod listen_tests {
    use super::*;

    #[test]
    fn an_ipv4_listener_is_not_blamed_for_ipv6_addresses() {
        let v6: IpAddr = "fd00::2".parse().unwrap();
        let v4: IpAddr = "192.168.1.20".parse().unwrap();
        assert!(!listens_on("0.0.0.0:7443".parse().unwrap(), v6));
        assert!(listens_on("0.0.0.0:7443".parse().unwrap(), v4));
        assert!(listens_on("[::]:7443".parse().unwrap(), v6) && listens_on("[::]:7443".parse().unwrap(), v4));
        assert!(!listens_on("192.168.1.20:7443".parse().unwrap(), "192.168.1.21".parse().unwrap()));
    }
}
