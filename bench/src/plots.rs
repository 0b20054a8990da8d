//! PNG plots of the report (plotters, bitmap backend, DejaVu Sans from Debian's
//! fonts-dejavu-core): throughput and p99 by workload and server as horizontal bars with min–max
//! whiskers, and RSS by idle connections.

use std::path::Path;

use anyhow::{anyhow, Context as _};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::figures::Spread;
use crate::scenarios::Results;

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Makes "sans-serif" available to plotters (once per process).
fn register_font() -> anyhow::Result<()> {
    static DONE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let bytes = std::fs::read(FONT)
            .map_err(|e| format!("reading {FONT} (Debian package fonts-dejavu-core): {e}"))?;
        plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            Box::leak(bytes.into_boxed_slice()),
        )
        .map_err(|_| format!("{FONT} is not a usable font"))
    })
    .clone()
    .map_err(|e| anyhow!(e))
}

struct Bar {
    label: String,
    value: Spread,
    strata: bool,
}

fn bars(results: &Results, get: fn(&crate::figures::Summary) -> Spread) -> Vec<Bar> {
    let mut out = Vec::new();
    for w in &results.workloads {
        for s in w
            .servers
            .iter()
            .filter(|s| s.failure.is_none() && !s.runs.is_empty())
        {
            out.push(Bar {
                label: format!("{} ×{}: {}", w.title, w.connections, s.name),
                value: get(&s.summary),
                strata: s.strata,
            });
        }
    }
    out
}

fn bar_chart(
    path: &Path,
    title: &str,
    unit: &str,
    rows: &[Bar],
    marker: Option<(f64, &str)>,
) -> anyhow::Result<()> {
    let n = rows.len().max(1);
    let height = 120 + 26 * n as u32;
    let root = BitMapBackend::new(path, (1400, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let top = rows
        .iter()
        .map(|r| r.value.max)
        .chain(marker.map(|m| m.0))
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.08;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(620)
        .build_cartesian_2d(0f64..top, -0.5f64..n as f64 - 0.5)
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc(unit)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    // Row labels, right-aligned against the axis (plotters picks its own key points otherwise).
    let label_style = ("sans-serif", 14)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Right, VPos::Center));
    for (i, r) in rows.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(0.0, i as f64));
        root.draw(&Text::new(r.label.clone(), (x - 8, y), label_style.clone()))
            .map_err(|e| anyhow!("{e}"))?;
    }
    let strata_colour = RGBColor(31, 119, 180);
    let peer_colour = RGBColor(160, 160, 160);
    chart
        .draw_series(rows.iter().enumerate().map(|(i, r)| {
            let y = i as f64;
            let colour = if r.strata { strata_colour } else { peer_colour };
            Rectangle::new([(0.0, y - 0.35), (r.value.median, y + 0.35)], colour.filled())
        }))
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .draw_series(rows.iter().enumerate().map(|(i, r)| {
            PathElement::new(
                vec![(r.value.min, i as f64), (r.value.max, i as f64)],
                BLACK.stroke_width(2),
            )
        }))
        .map_err(|e| anyhow!("{e}"))?;
    if let Some((x, name)) = marker {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x, -0.5), (x, n as f64 - 0.5)],
                RED.stroke_width(2),
            )))
            .map_err(|e| anyhow!("{e}"))?
            .label(name)
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
    }
    root.present()
        .map_err(|e| anyhow!("writing {}: {e}", path.display()))
}

fn idle_chart(path: &Path, results: &Results) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    type Line<'a> = (&'a str, bool, Vec<(f64, f64)>);
    let series: Vec<Line> = results
        .idle
        .iter()
        .filter_map(|i| {
            let run = i.runs.first()?;
            Some((
                i.name.as_str(),
                i.strata,
                run.levels
                    .iter()
                    .map(|l| (l.connections as f64, l.rss_kib as f64 / 1024.0))
                    .collect(),
            ))
        })
        .collect();
    let xmax = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.0))
        .fold(1.0, f64::max)
        * 1.05;
    let ymax = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.1))
        .fold(1.0, f64::max)
        * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption("Server RSS by idle keep-alive connections", ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..xmax, 0f64..ymax)
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("idle connections")
        .y_desc("RSS MiB")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    for (name, strata, points) in series {
        let colour = if strata {
            RGBColor(31, 119, 180)
        } else {
            RGBColor(214, 39, 40)
        };
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
            .map_err(|e| anyhow!("{e}"))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
        chart
            .draw_series(points.into_iter().map(|p| Circle::new(p, 4, colour.filled())))
            .map_err(|e| anyhow!("{e}"))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    root.present()
        .map_err(|e| anyhow!("writing {}: {e}", path.display()))
}

/// Writes throughput.png, p99.png and idle_rss.png into `dir`.
pub fn write_all(dir: &Path, results: &Results) -> anyhow::Result<()> {
    register_font()?;
    bar_chart(
        &dir.join("throughput.png"),
        "Throughput by workload and server (median, min–max)",
        "Gbit/s",
        &bars(results, |s| s.gbit_per_sec),
        Some((results.limit.gbit_per_sec.median, "machine limit (sendfile loop)")),
    )
    .context("plotting throughput")?;
    bar_chart(
        &dir.join("p99.png"),
        "p99 latency by workload and server (median, min–max)",
        "ms",
        &bars(results, |s| s.p99_ms),
        None,
    )
    .context("plotting p99")?;
    idle_chart(&dir.join("idle_rss.png"), results).context("plotting idle RSS")
}
