//! Starting `lectern serve` for a bench binary: on loopback, port 0, no mDNS, a data directory of
//! its own, and its JSON ready line read back (the address, fingerprint, code and teacher key).

use anyhow::Context;
use serde_json::Value;

/// Starts `bin serve` on `dir` with `extra` arguments and `log` as its log level; the child and
/// its ready line.
pub fn start(
    bin: &std::path::Path,
    dir: &std::path::Path,
    extra: &[&str],
    log: &str,
) -> anyhow::Result<(std::process::Child, Value)> {
    let mut child = std::process::Command::new(bin)
        .args(["serve", "--json", "--no-mdns", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(extra)
        .env("LECTERN_LOG", log)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("start lectern serve")?;
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().context("stdout")?),
        &mut line,
    )?;
    let ready: Value = serde_json::from_str(&line).context("ready line")?;
    Ok((child, ready))
}
