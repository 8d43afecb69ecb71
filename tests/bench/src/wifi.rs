//! The weak Wi-Fi report (`lectern-bench-report --wifi RESULTS.jsonl OUT_DIR`): the grid of
//! `tests/bench/run.sh --wifi` (loss × sparse/dense × server) as `wifi.md` and `wifi.svg`, and the
//! table of Lectern's tail measures one at a time.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;
use serde_json::Value;

use super::{Spread, TARGETS, fmt, spread};

/// A run's label field, for example `loss` in `loss=0.05,1`.
fn label<'a>(run: &'a Value, key: &str) -> Option<&'a str> {
    run["label"].as_str()?.split(',').find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

fn row(rs: &[&Value], first: &str) -> String {
    let field = |f: &str| spread(rs.iter().filter_map(|r| r[f].as_f64()).collect());
    let lost: u64 = rs.iter().filter_map(|r| r["lost"].as_u64()).sum();
    format!(
        "| {first} | {} | {} | {} | {} | {lost} | {} | {} | {} |\n",
        fmt(field("p50_ms"), "ms", 2),
        fmt(field("p99_ms"), "ms", 1),
        fmt(field("p999_ms"), "ms", 1),
        fmt(field("max_ms"), "ms", 0),
        fmt(field("server_cpu_us_per_delivery"), "µs", 1),
        fmt(field("wire_bytes_per_delivery"), "B", 0),
        fmt(field("wire_packets_per_delivery"), "", 2),
    )
}

/// Writes `wifi.md` and `wifi.svg` into `out`.
pub fn report(runs: &[Value], out: &Path) -> anyhow::Result<()> {
    // (loss ‰, rate) -> target -> runs; measure -> runs
    let mut grid: BTreeMap<(u64, u64), BTreeMap<String, Vec<&Value>>> = BTreeMap::new();
    let mut measures: Vec<(String, Vec<&Value>)> = Vec::new();
    for r in runs {
        let Some(loss) = label(r, "loss").and_then(|l| l.parse::<f64>().ok()) else { continue };
        if let Some(m) = label(r, "measure") {
            match measures.iter_mut().find(|(name, _)| name == m) {
                Some((_, rs)) => rs.push(r),
                None => measures.push((m.to_string(), vec![r])),
            }
            continue;
        }
        let key = ((loss * 1000.0).round() as u64, r["rate"].as_u64().unwrap_or(0));
        grid.entry(key)
            .or_default()
            .entry(r["target"].as_str().unwrap_or("?").to_string())
            .or_default()
            .push(r);
    }
    let head = "| p50 | p99 | p99.9 | max | lost | server CPU / delivery | wire bytes / delivery | packets / delivery |";
    let mut md = format!("| loss, changes, server {head}\n|---|---|---|---|---|---|---|---|---|\n");
    for ((loss, rate), by) in &grid {
        for t in TARGETS {
            if let Some(rs) = by.get(t) {
                let what = if *rate <= 10 { "sparse" } else { "dense" };
                md.push_str(&row(rs, &format!("{}%, {what} ({rate}/s), {t}", *loss as f64 / 10.0)));
            }
        }
    }
    if !measures.is_empty() {
        md.push_str(&format!(
            "\nLectern's tail measures one at a time (5% loss, sparse changes, N = 30):\n\n| measure {head}\n|---|---|---|---|---|---|---|---|---|\n"
        ));
        for (name, rs) in &measures {
            md.push_str(&row(rs, name));
        }
    }
    std::fs::write(out.join("wifi.md"), &md)?;
    print!("{md}");
    plot(&grid, &out.join("wifi.svg"))
}

/// p99 against loss, sparse changes left and dense right, one line per server.
fn plot(grid: &BTreeMap<(u64, u64), BTreeMap<String, Vec<&Value>>>, svg: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(svg, (980, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, 2));
    let colors = [RGBColor(27, 110, 107), RGBColor(120, 120, 120), RGBColor(200, 80, 40)];
    for (panel, dense) in panels.iter().zip([false, true]) {
        let series: Vec<(&str, Vec<(f64, Spread)>)> = TARGETS
            .iter()
            .map(|t| {
                let pts = grid
                    .iter()
                    .filter(|((_, rate), _)| (*rate > 10) == dense)
                    .filter_map(|((loss, _), by)| {
                        let rs = by.get(*t)?;
                        let s = spread(rs.iter().filter_map(|r| r["p99_ms"].as_f64()).collect())?;
                        Some((*loss as f64 / 10.0, s))
                    })
                    .collect();
                (*t, pts)
            })
            .collect();
        let max_ms = series.iter().flat_map(|(_, p)| p.iter().map(|(_, s)| s.max)).fold(10.0f64, f64::max);
        let title = if dense { "dense changes (60/s)" } else { "sparse changes (4/s)" };
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("p99 under packet loss, N = 30, TLS: {title}"), ("sans-serif", 16))
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.5f64..10.5f64, (0.5f64..max_ms * 2.0).log_scale())?;
        chart
            .configure_mesh()
            .bold_line_style(RGBColor(200, 200, 200))
            .light_line_style(RGBColor(238, 238, 238))
            .x_desc("packets lost to the students (%)")
            .y_desc("p99 (ms)")
            .draw()?;
        for ((name, pts), color) in series.iter().zip(colors) {
            if pts.is_empty() {
                continue;
            }
            chart
                .draw_series(LineSeries::new(pts.iter().map(|(x, s)| (*x, s.median)), color.stroke_width(2)))?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            chart.draw_series(pts.iter().map(|(x, s)| Circle::new((*x, s.median), 4, color.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}
