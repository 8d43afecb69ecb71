//! Discovery with real multicast packets (PROTOCOL.md §8). Two network namespaces made by the test are
//! joined by a veth pair: the server announces in one, and in the other Lectern's client resolves it
//! with the right fingerprint, joins with `--discover`, sees the TXT follow a new lesson, and sees the
//! goodbye remove it. Third-party resolvers (python-zeroconf, avahi) see the service with the §8 TXT.
//!
//! Every mDNS socket is restricted to the veth ends, so no packet leaves the test's namespaces.
//! Namespaces need root (CI runs as root); elsewhere each test skips with a message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use common::ServeProcess;
use common::netns::{NetPair, sh};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_lectern");

impl NetPair {
    /// `lectern serve` in namespace a, announcing on its veth end only.
    fn serve(&self, dir: &std::path::Path, name: &str) -> (ServeProcess, lectern::protocol::http::Ready) {
        let mut cmd = self.exec(&self.a, BIN);
        cmd.args([
            "serve",
            "--json",
            "--listen",
            "0.0.0.0:0",
            "--mdns-interface",
            &self.veth_a,
            "--name",
            name,
        ])
        .args(["--title", "Quran, level 2", "--data-dir"])
        .arg(dir);
        ServeProcess::spawn(cmd)
    }

    /// `lectern discover --watch --json` in namespace b; its events arrive on the receiver.
    fn watch(&self, seconds: u64) -> (Child, Receiver<Value>) {
        let mut child = self
            .exec(&self.b, BIN)
            .args(["discover", "--watch", "--json", "--timeout", &format!("{seconds}s")])
            .args(["--mdns-interface", &self.veth_b])
            .env("LECTERN_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    return;
                }
            }
        });
        (child, rx)
    }
}

/// The first event matching `pred` within `within`.
fn next_matching(rx: &Receiver<Value>, within: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match rx.recv_timeout(left) {
            Ok(v) if pred(&v) => return Some(v),
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
        }
    }
}

fn resolved_with(fp: &str) -> impl Fn(&Value) -> bool + '_ {
    move |v| v["event"] == "resolved" && v["fingerprint"] == fp
}

#[test]
fn a_client_in_another_namespace_resolves_joins_follows_the_lesson_and_sees_the_goodbye() {
    let Some(net) = NetPair::create("r") else { return };
    let dir = tempfile::tempdir().unwrap();
    let (mut watcher, events) = net.watch(60);
    let (server, ready) = net.serve(dir.path(), "Room 12");
    let port = common::port_of(&ready);

    let found = next_matching(&events, Duration::from_secs(10), resolved_with(&ready.fingerprint))
        .expect("the client in the other namespace resolves the server");
    assert_eq!(found["name"], "Room 12");
    assert_eq!(found["title"], "Quran, level 2");
    assert_eq!(found["room"], ready.room.as_str());
    assert_eq!(found["port"], port);
    assert_eq!(found["path"], "/v1/ws");
    assert!(
        found["addresses"].as_array().unwrap().iter().any(|a| a == net.addr_a.as_str()),
        "announced on the veth address: {found}"
    );

    // Two mDNS stacks in one namespace share port 5353, and a unicast answer reaches only one of
    // them: the watcher stops while the student's own browser looks (one stack per device, as on a
    // tablet), then a new one watches the rest.
    let _ = watcher.kill();
    let _ = watcher.wait();

    // A student joins by name, with the TXT fingerprint pinned.
    let out = net
        .exec(&net.b, BIN)
        .args(["join", "--discover", "Room 12", "--code", &ready.code, "--name", "Aisha", "--json"])
        .args(["--mdns-interface", &net.veth_b, "--timeout", "10s", "--device", "student-tablet-01"])
        .env("LECTERN_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut joined = out;
    let mut line = String::new();
    BufReader::new(joined.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let _ = joined.kill();
    let _ = joined.wait();
    let first: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    assert_eq!(first["event"], "connected", "join --discover connected: {first}");

    let (mut watcher, events) = net.watch(60);
    next_matching(&events, Duration::from_secs(10), resolved_with(&ready.fingerprint))
        .expect("resolved again");

    // A new lesson: the TXT follows (new room id, new title).
    let new = net
        .exec(&net.a, "curl")
        .args(["-sk", "-X", "POST", "-H", &format!("Authorization: Bearer {}", ready.teacher_key)])
        .arg(format!("https://127.0.0.1:{port}/v1/lessons?title=Second%20lesson"))
        .output()
        .unwrap();
    let new: Value = serde_json::from_slice(&new.stdout).expect("new lesson answer");
    let room = new["room"].as_str().unwrap().to_string();
    let updated = next_matching(&events, Duration::from_secs(10), |v| {
        v["event"] == "resolved" && v["room"] == room.as_str()
    })
    .expect("the announcement follows the new lesson");
    assert_eq!(updated["title"], "Second lesson");

    // SIGTERM: the goodbye removes it at once (without one, browsers keep it for the record's TTL).
    let stopped = Instant::now();
    server.signal("-TERM");
    assert!(server.wait_exit(Duration::from_secs(5)).success());
    let gone = next_matching(&events, Duration::from_secs(5), |v| v["event"] == "removed")
        .expect("the goodbye reaches the client");
    assert!(gone["fullname"].as_str().unwrap().starts_with("Room 12."));
    eprintln!("goodbye seen {} ms after SIGTERM", stopped.elapsed().as_millis());
    let _ = watcher.kill();
    let _ = watcher.wait();
}

#[test]
fn without_a_usable_interface_nothing_is_found_and_the_error_says_what_to_do() {
    let Some(net) = NetPair::create("n") else { return };
    let dir = tempfile::tempdir().unwrap();
    let (_server, ready) = net.serve(dir.path(), "Room 7");
    // Browse on loopback only: the server announces on its veth end, so nothing may be found.
    let out = net
        .exec(&net.b, BIN)
        .args(["join", "--discover", "--code", &ready.code, "--name", "Omar", "--timeout", "2s"])
        .args(["--mdns-interface", "lo"])
        .env("LECTERN_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no classroom found") && err.contains("lectern doctor"), "{err}");
}

#[test]
fn python_zeroconf_sees_the_service_with_the_protocol_txt() {
    let Some(net) = NetPair::create("z") else { return };
    if !Command::new("python3").args(["-c", "import zeroconf"]).status().is_ok_and(|s| s.success()) {
        eprintln!("skipping: python-zeroconf is not installed (CI installs it: pip install zeroconf)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_server, ready) = net.serve(dir.path(), "Room 3");
    let script = format!(
        r#"
import json, time
from zeroconf import Zeroconf, ServiceBrowser, ServiceListener
zc = Zeroconf(interfaces=["{addr}"])
found = {{}}
class L(ServiceListener):
    def add_service(self, zc, t, name): found[name] = None
    def update_service(self, zc, t, name): found[name] = None
    def remove_service(self, zc, t, name): pass
ServiceBrowser(zc, "_lectern._tcp.local.", L())
end = time.time() + 10
while time.time() < end:
    for name in list(found):
        info = zc.get_service_info("_lectern._tcp.local.", name, timeout=2000)
        if info and info.properties.get(b"fp"):
            print(json.dumps({{"name": name, "port": info.port,
                "addresses": info.parsed_addresses(),
                "txt": {{k.decode(): (v or b"").decode() for k, v in info.properties.items()}}}}))
            zc.close(); raise SystemExit(0)
    time.sleep(0.05)
zc.close(); raise SystemExit(1)
"#,
        addr = net.addr_b
    );
    let out = net.exec(&net.b, "python3").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "python-zeroconf found nothing: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["name"], "Room 3._lectern._tcp.local.");
    assert_eq!(v["port"], common::port_of(&ready));
    assert_eq!(v["txt"]["v"], "1");
    assert_eq!(v["txt"]["fp"], ready.fingerprint.as_str());
    assert_eq!(v["txt"]["room"], ready.room.as_str());
    assert_eq!(v["txt"]["title"], "Quran, level 2");
    assert_eq!(v["txt"]["path"], "/v1/ws");
    assert!(v["addresses"].as_array().unwrap().iter().any(|a| a == net.addr_a.as_str()));
}

#[test]
fn avahi_browse_sees_the_service_with_the_protocol_txt() {
    let Some(net) = NetPair::create("v") else { return };
    if !["avahi-daemon", "avahi-browse", "dbus-daemon"]
        .iter()
        .all(|p| sh(&["sh", "-c", &format!("command -v {p}")]))
    {
        eprintln!("skipping: avahi is not installed (CI installs avahi-daemon and avahi-utils)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // avahi talks over the system bus: a private one, so the test needs no systemd and touches no
    // running daemon.
    let bus = tmp.path().join("system_bus_socket");
    let bus_addr = format!("unix:path={}", bus.display());
    let mut dbus = Command::new("dbus-daemon")
        .args(["--config-file=/usr/share/dbus-1/system.conf", "--nofork", "--nopidfile"])
        .arg(format!("--address={bus_addr}"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let conf = tmp.path().join("avahi-daemon.conf");
    std::fs::write(
        &conf,
        format!(
            "[server]\nuse-ipv4=yes\nuse-ipv6=no\nallow-interfaces={}\nenable-dbus=yes\n\
             [publish]\ndisable-publishing=yes\n",
            net.veth_b
        ),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !bus.exists() {
        assert!(Instant::now() < deadline, "the private dbus-daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut avahi = net
        .exec(&net.b, "avahi-daemon")
        .args(["--no-drop-root", "--no-chroot", "--no-rlimits", "-f"])
        .arg(&conf)
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus_addr)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_server, ready) = net.serve(dir.path(), "Room 5");

    let deadline = Instant::now() + Duration::from_secs(20);
    let line = loop {
        let out = net
            .exec(&net.b, "avahi-browse")
            .args(["-rtp", "_lectern._tcp"])
            .env("DBUS_SYSTEM_BUS_ADDRESS", &bus_addr)
            .stderr(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if let Some(line) = text.lines().find(|l| l.starts_with('=') && l.contains("fp=")) {
            break line.to_string();
        }
        assert!(Instant::now() < deadline, "avahi-browse did not resolve the service: {text}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = avahi.kill();
    let _ = avahi.wait();
    let _ = dbus.kill();
    let _ = dbus.wait();
    // =;IFACE;IPv4;NAME;TYPE;DOMAIN;HOST;ADDRESS;PORT;"k=v" "k=v" ...
    let fields: Vec<&str> = line.splitn(10, ';').collect();
    assert_eq!(fields[4], "_lectern._tcp", "{line}");
    assert!(fields[3].starts_with("Room"), "{line}");
    assert_eq!(fields[7], net.addr_a, "{line}");
    assert_eq!(fields[8], common::port_of(&ready).to_string(), "{line}");
    for kv in [
        "\"v=1\"".to_string(),
        format!("\"fp={}\"", ready.fingerprint),
        format!("\"room={}\"", ready.room),
        "\"title=Quran, level 2\"".to_string(),
        "\"path=/v1/ws\"".to_string(),
    ] {
        assert!(fields[9].contains(&kv), "TXT has {kv}: {line}");
    }
}

fn percentile(xs: &mut [f64], q: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[((q * xs.len() as f64).ceil() as usize).clamp(1, xs.len()) - 1]
}

/// Not a test: the measurement of issue 6. Time for a browsing student to resolve the server, from
/// `serve` start (cold) and from a running server (warm), 20 runs each.
#[test]
#[ignore = "a measurement: cargo test --release -p lectern --test mdns -- --ignored --nocapture"]
fn resolve_times() {
    let Some(net) = NetPair::create("t") else { return };
    let dir = tempfile::tempdir().unwrap();
    let runs = 20;
    // Cold: a student is already browsing when the teacher starts Lectern.
    let (mut watcher, events) = net.watch(600);
    let mut cold = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let (server, ready) = net.serve(dir.path(), "Room 1");
        next_matching(&events, Duration::from_secs(10), resolved_with(&ready.fingerprint)).expect("resolved");
        cold.push(start.elapsed().as_secs_f64() * 1000.0);
        server.signal("-TERM");
        assert!(server.wait_exit(Duration::from_secs(5)).success());
        next_matching(&events, Duration::from_secs(5), |v| v["event"] == "removed").expect("goodbye");
    }
    let _ = watcher.kill();
    let _ = watcher.wait();
    // Warm: the server runs; a student opens the app and browses.
    let (_server, ready) = net.serve(dir.path(), "Room 1");
    let mut warm = Vec::new();
    // The first browse is not counted: it waits out the server's start-up announcements.
    for run in 0..=runs {
        let start = Instant::now();
        let (mut w, ev) = net.watch(10);
        next_matching(&ev, Duration::from_secs(10), resolved_with(&ready.fingerprint)).expect("resolved");
        if run > 0 {
            warm.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        let _ = w.kill();
        let _ = w.wait();
        // Runs are spaced as students arriving one by one: a responder multicasts a record at most
        // once a second (RFC 6762 §6), so back-to-back browsers would measure that rule, not the
        // resolve. (Students opening the app together all hear the same answer.)
        std::thread::sleep(Duration::from_millis(1500));
    }
    let report = serde_json::json!({
        "runs": runs,
        "cold_p50_ms": percentile(&mut cold, 0.5), "cold_p95_ms": percentile(&mut cold, 0.95),
        "warm_p50_ms": percentile(&mut warm, 0.5), "warm_p95_ms": percentile(&mut warm, 0.95),
        "cold_ms": cold, "warm_ms": warm,
    });
    println!("{report}");
}

#[test]
fn doctor_says_what_works_and_what_to_change() {
    let Some(net) = NetPair::create("d") else { return };
    let doctor = |ns: &str, port: &str| {
        let out = net
            .exec(ns, BIN)
            .args(["doctor", "--listen", &format!("0.0.0.0:{port}")])
            .env("LECTERN_LOG", "warn")
            .env("LECTERN_DATA_DIR", "/nonexistent-lectern-doctor")
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string())
    };

    // A good classroom network: every check passes.
    let (ok, text) = doctor(&net.a, "7443");
    assert!(ok, "{text}");
    for line in [
        format!("✓ network interfaces: {} {}", net.veth_a, net.addr_a),
        "✓ multicast works".to_string(),
        "✓ port 7443 is free".to_string(),
        "✓ port 7443 answers on every LAN address".to_string(),
        "✓ mDNS announce and browse work".to_string(),
    ] {
        assert!(text.contains(&line), "{line}\n{text}");
    }

    // Another program holds the port: said, with what to do.
    let mut holder = net
        .exec(&net.a, "python3")
        .args(["-c", "import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0',7443)); s.listen(); print('ready', flush=True); time.sleep(60)"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(holder.stdout.take().unwrap()).read_line(&mut ready).unwrap();
    assert_eq!(ready.trim(), "ready", "the other program holds the port");
    let (ok, text) = doctor(&net.a, "7443");
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(!ok, "{text}");
    assert!(text.contains("✗ port 7443 is in use by another program"), "{text}");
    assert!(text.contains("--listen 0.0.0.0:7444"), "{text}");

    // No network at all (only loopback): said, with what to do.
    let lonely = format!("{}x", net.a);
    assert!(sh(&["ip", "netns", "add", &lonely]));
    sh(&["ip", "-n", &lonely, "link", "set", "lo", "up"]);
    let (ok, text) = doctor(&lonely, "7443");
    sh(&["ip", "netns", "del", &lonely]);
    assert!(!ok, "{text}");
    assert!(text.contains("✗ no usable network interface"), "{text}");
    assert!(text.contains("connect this computer to the classroom's Wi-Fi"), "{text}");
}
