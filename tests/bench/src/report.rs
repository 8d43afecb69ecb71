//! `lectern-bench-report RESULTS.jsonl OUT_DIR`: folds the runs of `tests/bench/run.sh` into the
//! benchmark table (median and min–max of each figure over the repeats, Lectern vs the floor vs
//! Socket.IO) and a latency plot, `OUT_DIR/table.md` and `OUT_DIR/latency.svg`. With `--wifi` first,
//! it folds `run.sh --wifi` instead (see `wifi.rs`).

use std::collections::BTreeMap;

use anyhow::Context;
use plotters::prelude::*;
use serde_json::Value;

mod wifi;

const TARGETS: [&str; 3] = ["lectern", "floor", "socketio"];

/// Median, min and max of some runs.
#[derive(Debug, Clone, Copy)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

fn spread(mut v: Vec<f64>) -> Option<Spread> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let median = if v.len() % 2 == 1 { v[v.len() / 2] } else { (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0 };
    Some(Spread { median, min: v[0], max: v[v.len() - 1] })
}

fn fmt(s: Option<Spread>, unit: &str, digits: usize) -> String {
    match s {
        Some(s) if s.min == s.max => format!("{:.*} {unit}", digits, s.median),
        Some(s) => format!("{:.*} {unit} ({:.*}–{:.*})", digits, s.median, digits, s.min, digits, s.max),
        None => "–".into(),
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    let lossy = args.next_if(|a| a == "--wifi").is_some();
    let input = args.next().context("usage: lectern-bench-report [--wifi] RESULTS.jsonl OUT_DIR")?;
    let out =
        std::path::PathBuf::from(args.next().context("usage: lectern-bench-report RESULTS.jsonl OUT_DIR")?);
    std::fs::create_dir_all(&out)?;
    let runs: Vec<Value> =
        std::fs::read_to_string(&input)?.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    anyhow::ensure!(!runs.is_empty(), "no runs in {input}");
    if lossy {
        return wifi::report(&runs, &out);
    }

    // (students, rate) -> target -> runs
    let mut scenarios: BTreeMap<(u64, u64), BTreeMap<String, Vec<&Value>>> = BTreeMap::new();
    let mut idle: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for r in &runs {
        let target = r["target"].as_str().unwrap_or("?").to_string();
        if r["idle"] == true {
            idle.entry(target).or_default().push(r);
        } else {
            let key = (r["students"].as_u64().unwrap_or(0), r["rate"].as_u64().unwrap_or(0));
            scenarios.entry(key).or_default().entry(target).or_default().push(r);
        }
    }
    let field = |rs: &[&Value], f: &str| spread(rs.iter().filter_map(|r| r[f].as_f64()).collect());
    let mut md = String::from(
        "| scenario | server | p50 | p99 | p99.9 | max | deliveries/s | lost | server CPU / delivery | load generator CPU |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut lost_any = 0u64;
    for ((n, rate), by_target) in &scenarios {
        for t in TARGETS {
            let Some(rs) = by_target.get(t) else { continue };
            let lost: u64 = rs.iter().filter_map(|r| r["lost"].as_u64()).sum();
            lost_any += lost;
            md.push_str(&format!(
                "| N = {n}, {rate}/s | {t} ({} runs) | {} | {} | {} | {} | {} | {lost} | {} | {} |\n",
                rs.len(),
                fmt(field(rs, "p50_ms"), "ms", 2),
                fmt(field(rs, "p99_ms"), "ms", 2),
                fmt(field(rs, "p999_ms"), "ms", 2),
                fmt(field(rs, "max_ms"), "ms", 1),
                fmt(field(rs, "deliveries_per_s"), "", 0),
                fmt(field(rs, "server_cpu_us_per_delivery"), "µs", 1),
                fmt(field(rs, "client_cpu_seconds"), "s", 1),
            ));
        }
    }
    if !idle.is_empty() {
        md.push_str(
            "\n| idle connections | server | memory per TLS connection | server RSS |\n|---|---|---|---|\n",
        );
        for t in TARGETS {
            let Some(rs) = idle.get(t) else { continue };
            md.push_str(&format!(
                "| {} | {t} | {} | {} |\n",
                rs[0]["students"],
                fmt(field(rs, "kib_per_connection"), "KiB", 1),
                fmt(
                    spread(
                        rs.iter().filter_map(|r| r["server_rss_kib"].as_f64().map(|k| k / 1024.0)).collect()
                    ),
                    "MiB",
                    1
                ),
            ));
        }
    }
    std::fs::write(out.join("table.md"), &md)?;
    print!("{md}");

    // Plot: p99 against students at 60 changes/s, one line per server, with min–max bars.
    let svg = out.join("latency.svg");
    {
        let root = SVGBackend::new(&svg, (820, 480)).into_drawing_area();
        root.fill(&WHITE)?;
        let points: Vec<(&str, Vec<(u64, Spread)>)> = TARGETS
            .iter()
            .map(|t| {
                let pts = scenarios
                    .iter()
                    .filter(|((n, rate), _)| *rate == 60 || *n >= 5000)
                    .filter_map(|((n, _), by)| by.get(*t).and_then(|rs| field(rs, "p99_ms")).map(|s| (*n, s)))
                    .collect();
                (*t, pts)
            })
            .collect();
        let max_n = points.iter().flat_map(|(_, p)| p.iter().map(|(n, _)| *n)).max().unwrap_or(30).max(31);
        let max_ms = points.iter().flat_map(|(_, p)| p.iter().map(|(_, s)| s.max)).fold(1.0f64, f64::max);
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "p99 teacher→student latency, 60 changes/s (10/s at 5,000), TLS, loopback",
                ("sans-serif", 18),
            )
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d((20u64..max_n * 2).log_scale(), (0.1f64..max_ms * 2.0).log_scale())?;
        chart
            .configure_mesh()
            .bold_line_style(RGBColor(200, 200, 200))
            .light_line_style(RGBColor(238, 238, 238))
            .x_desc("students")
            .y_desc("p99 (ms)")
            .draw()?;
        let colors = [RGBColor(27, 110, 107), RGBColor(120, 120, 120), RGBColor(200, 80, 40)];
        for ((name, pts), color) in points.iter().zip(colors) {
            if pts.is_empty() {
                continue;
            }
            chart
                .draw_series(LineSeries::new(pts.iter().map(|(n, s)| (*n, s.median)), color.stroke_width(2)))?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            chart.draw_series(pts.iter().map(|(n, s)| Circle::new((*n, s.median), 4, color.filled())))?;
            chart.draw_series(
                pts.iter()
                    .map(|(n, s)| PathElement::new(vec![(*n, s.min), (*n, s.max)], color.stroke_width(1))),
            )?;
        }
        chart.configure_series_labels().background_style(WHITE.mix(0.9)).border_style(BLACK).draw()?;
        root.present()?;
    }
    eprintln!("wrote {} and {}", out.join("table.md").display(), svg.display());
    if lost_any > 0 {
        eprintln!("{lost_any} deliveries were lost in these runs (see the table)");
    }
    Ok(())
}
