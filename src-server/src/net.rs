//! Facts about this host's network: its name and the addresses students can reach it on.

use std::net::IpAddr;

/// This host's name, without a domain (empty if it has none).
pub fn host_name() -> String {
    let name = gethostname::gethostname().to_string_lossy().into_owned();
    name.split('.').next().unwrap_or_default().to_string()
}

/// Every non-loopback address of an interface that is up.
pub fn interface_addrs() -> Vec<IpAddr> {
    let mut addrs: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| !i.is_loopback())
        .map(|i| i.ip())
        .collect();
    addrs.sort();
    addrs.dedup();
    addrs
}

/// The address to print in links for people on the LAN: the first private IPv4 address, else any IPv4,
/// else localhost.
pub fn lan_address() -> IpAddr {
    let addrs = interface_addrs();
    addrs
        .iter()
        .find(|a| matches!(a, IpAddr::V4(v4) if v4.is_private()))
        .or_else(|| addrs.iter().find(|a| a.is_ipv4()))
        .copied()
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}
