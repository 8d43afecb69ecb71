//! Which network interfaces discovery uses: by default every interface that is up, skipping loopback and
//! interfaces that look virtual (docker, bridges, VPNs, veth); or exactly the ones named.

use std::collections::BTreeSet;

use mdns_sd::{IfKind, ServiceDaemon};

use crate::error::{Error, Result};

/// Which interfaces to announce and browse on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Interfaces {
    /// Every usable interface: up, not loopback, not virtual-looking.
    #[default]
    Usable,
    /// Exactly these interface names (loopback included if named).
    Named(Vec<String>),
}

impl Interfaces {
    /// From `--mdns-interface` values (none means [`Interfaces::Usable`]).
    pub fn from_names(names: &[String]) -> Interfaces {
        if names.is_empty() { Interfaces::Usable } else { Interfaces::Named(names.to_vec()) }
    }

    /// The names of the interfaces this choice selects now.
    pub fn select(&self) -> BTreeSet<String> {
        let all = if_addrs::get_if_addrs().unwrap_or_default();
        match self {
            Interfaces::Usable => all
                .iter()
                .filter(|i| !i.is_loopback() && !looks_virtual(&i.name))
                .map(|i| i.name.clone())
                .collect(),
            Interfaces::Named(names) => {
                all.iter().filter(|i| names.contains(&i.name)).map(|i| i.name.clone()).collect()
            }
        }
    }
}

/// Whether an interface name looks like a container bridge, a VPN or another virtual link, where
/// students are not.
pub fn looks_virtual(name: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "docker",
        "br-",
        "virbr",
        "veth",
        "vnet",
        "tun",
        "tap",
        "wg",
        "tailscale",
        "zt",
        "vmnet",
        "vboxnet",
        "utun",
        "lxc",
        "lxd",
        "cni",
        "flannel",
        "cali",
        "podman",
        "kube",
        "ppp",
        "ipsec",
        "gif",
        "awdl",
        "llw",
        "anpi",
        "bridge",
    ];
    let n = name.to_ascii_lowercase();
    PREFIXES.iter().any(|p| n.starts_with(p))
}

/// Applies an interface choice to a daemon: everything off, then the chosen names on.
pub(super) fn apply(daemon: &ServiceDaemon, names: &BTreeSet<String>) -> Result<()> {
    daemon.disable_interface(IfKind::All).map_err(mdns_error)?;
    for name in names {
        daemon.enable_interface(IfKind::Name(name.clone())).map_err(mdns_error)?;
    }
    Ok(())
}

pub(super) fn mdns_error(e: mdns_sd::Error) -> Error {
    Error::Mdns(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_interfaces_are_recognised() {
        for name in ["docker0", "br-1a2b", "virbr0", "veth12ab", "tun0", "wg0", "tailscale0", "utun3"] {
            assert!(looks_virtual(name), "{name}");
        }
        for name in ["eth0", "wlan0", "wlp2s0", "enp0s31f6", "en0"] {
            assert!(!looks_virtual(name), "{name}");
        }
    }
}
