//! Resource use of a process, from /proc (Linux): CPU seconds and resident memory.

use anyhow::Context;

/// Resource use of a process, from /proc.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ProcStat {
    /// User and system CPU time so far.
    pub cpu_seconds: f64,
    /// Resident memory now.
    pub rss_kib: u64,
    /// Peak resident memory.
    pub peak_rss_kib: u64,
}

/// What /proc says of process `pid`.
pub fn proc_stat(pid: &str) -> anyhow::Result<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').map(|(_, a)| a).context("bad /proc stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(ProcStat { cpu_seconds: ticks / 100.0, rss_kib: kib("VmRSS:"), peak_rss_kib: kib("VmHWM:") })
}
