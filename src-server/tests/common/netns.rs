//! Two network namespaces joined by a veth pair, made by a test and deleted when it ends: real
//! multicast and real packet loss with no packet leaving the machine. Needs root (CI runs as root);
//! `create` says so and returns `None` elsewhere.

use std::process::{Command, Stdio};

/// Two namespaces joined by a veth pair, deleted on drop.
pub struct NetPair {
    pub a: String,
    pub b: String,
    pub veth_a: String,
    pub veth_b: String,
    pub addr_a: String,
    pub addr_b: String,
}

/// Runs a command quietly; whether it succeeded.
pub fn sh(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl NetPair {
    /// The pair, or `None` (with a message) where namespaces cannot be made.
    pub fn create(tag: &str) -> Option<NetPair> {
        let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        if !root || !sh(&["ip", "-V"]) {
            eprintln!("skipping: network namespaces need root and iproute2 (CI runs as root)");
            return None;
        }
        let id = std::process::id() % 10_000;
        let subnet = (std::process::id() % 200) + 20;
        let p = NetPair {
            a: format!("lct{tag}{id}a"),
            b: format!("lct{tag}{id}b"),
            veth_a: format!("lv{tag}{id}a"),
            veth_b: format!("lv{tag}{id}b"),
            addr_a: format!("10.213.{subnet}.1"),
            addr_b: format!("10.213.{subnet}.2"),
        };
        let steps: Vec<Vec<String>> = vec![
            vec!["ip", "netns", "add", &p.a],
            vec!["ip", "netns", "add", &p.b],
            vec![
                "ip", "link", "add", &p.veth_a, "netns", &p.a, "type", "veth", "peer", "name", &p.veth_b,
                "netns", &p.b,
            ],
            vec!["ip", "-n", &p.a, "addr", "add", &format!("{}/24", p.addr_a), "dev", &p.veth_a],
            vec!["ip", "-n", &p.b, "addr", "add", &format!("{}/24", p.addr_b), "dev", &p.veth_b],
            vec!["ip", "-n", &p.a, "link", "set", &p.veth_a, "up"],
            vec!["ip", "-n", &p.b, "link", "set", &p.veth_b, "up"],
            vec!["ip", "-n", &p.a, "link", "set", "lo", "up"],
            vec!["ip", "-n", &p.b, "link", "set", "lo", "up"],
        ]
        .into_iter()
        .map(|v| v.into_iter().map(String::from).collect())
        .collect();
        for step in &steps {
            let args: Vec<&str> = step.iter().map(String::as_str).collect();
            assert!(sh(&args), "could not set up the namespaces: {}", step.join(" "));
        }
        Some(p)
    }

    /// A command run inside namespace `ns`.
    pub fn exec(&self, ns: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, program]);
        c
    }

    /// Turns segmentation and receive offloads off on both veth ends, so that one dropped packet is
    /// one lost segment (tests/wifi/rig.sh does the same for the benchmark).
    pub fn offloads_off(&self) {
        for (ns, dev) in [(&self.a, &self.veth_a), (&self.b, &self.veth_b)] {
            sh(&["ip", "netns", "exec", ns, "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off"]);
        }
    }

    /// Drops the fraction `p` of the packets namespace b receives, where they arrive (never in the
    /// sender's OUTPUT chain: TCP would see a local error, which no radio loss is).
    pub fn loss(&self, p: f64) {
        sh(&["ip", "netns", "exec", &self.b, "iptables", "-F", "INPUT"]);
        if p > 0.0 {
            let p = format!("{p}");
            let rule = [
                "-A",
                "INPUT",
                "-i",
                &self.veth_b,
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                &p,
                "-j",
                "DROP",
            ];
            let mut args = vec!["ip", "netns", "exec", &self.b, "iptables"];
            args.extend(rule);
            assert!(sh(&args), "iptables statistic rule (apt: iptables)");
        }
    }

    /// Drops everything namespace b receives: the link is dead, though no socket has noticed.
    pub fn blackhole(&self) {
        sh(&["ip", "netns", "exec", &self.b, "iptables", "-F", "INPUT"]);
        assert!(sh(&[
            "ip",
            "netns",
            "exec",
            &self.b,
            "iptables",
            "-A",
            "INPUT",
            "-i",
            &self.veth_b,
            "-j",
            "DROP"
        ]));
    }
}

impl Drop for NetPair {
    fn drop(&mut self) {
        sh(&["ip", "netns", "del", &self.a]);
        sh(&["ip", "netns", "del", &self.b]);
    }
}
