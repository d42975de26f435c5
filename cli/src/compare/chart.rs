//! The comparison as an SVG chart: per mode, the share of edge cases captured next to the
//! share of bytes it exports, so the trade-off shows at a glance.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;
use wbpf_gateway::CompareSnapshot;

use super::table::percent;

const WIDTH: u32 = 900;
const HEIGHT: u32 = 360;

/// Writes the chart to `path`.
pub fn write_svg(snapshot: &CompareSnapshot, path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let title = format!(
        "{} traces, {} edge cases: what each mode keeps and costs",
        snapshot.traces_seen, snapshot.edge_cases_seen
    );
    let root = root
        .titled(&title, ("sans-serif", 18))
        .map_err(plot_error)?;
    let (left, right) = root.split_horizontally(WIDTH / 2);

    let captured: Vec<(String, f64)> = snapshot
        .modes
        .iter()
        .map(|m| {
            let share = percent(m.edge_cases_captured, snapshot.edge_cases_seen);
            (m.mode.clone(), share)
        })
        .collect();
    let bytes: Vec<(String, f64)> = snapshot
        .modes
        .iter()
        .map(|m| (m.mode.clone(), percent(m.bytes_kept, snapshot.bytes_seen)))
        .collect();
    bars(&left, "edge cases captured (%)", &captured, &GREEN)?;
    bars(&right, "bytes exported (% of received)", &bytes, &BLUE)?;
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Horizontal bars from 0 to 100 %, one per mode, labelled with their value.
fn bars(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    caption: &str,
    values: &[(String, f64)],
    color: &RGBColor,
) -> anyhow::Result<()> {
    let rows = values.len().max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 15))
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..100f64, 0f64..rows)
        .map_err(plot_error)?;
    let label = |y: &f64| {
        let index = (rows - y.floor() - 1.0) as usize;
        values
            .get(index)
            .filter(|_| y.fract() == 0.5)
            .map(|(name, _)| name.clone())
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(values.len() * 2 + 1)
        .y_label_formatter(&label)
        .x_desc("%")
        .draw()
        .map_err(plot_error)?;

    for (index, (_, value)) in values.iter().enumerate() {
        let top = rows - index as f64 - 0.2;
        let bottom = rows - index as f64 - 0.8;
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(0.0, bottom), (value.clamp(0.0, 100.0), top)],
                color.filled(),
            )))
            .map_err(plot_error)?;
        let text = format!("{value:.1}%");
        let x = (value + 2.0).min(85.0);
        chart
            .draw_series(std::iter::once(Text::new(
                text,
                (x, rows - index as f64 - 0.45),
                ("sans-serif", 13),
            )))
            .map_err(plot_error)?;
    }
    Ok(())
}

fn plot_error<E: std::fmt::Display>(err: E) -> anyhow::Error {
    anyhow::anyhow!("drawing the chart: {err}")
}

#[cfg(test)]
mod tests {
    use wbpf_gateway::ModeFigures;

    use super::*;

    #[test]
    fn the_svg_names_every_mode() {
        let mode = |name: &str, captured, bytes| ModeFigures {
            mode: name.to_owned(),
            exporting: name == "triggered",
            traces_decided: 100,
            traces_kept: 10,
            spans_kept: 90,
            bytes_kept: bytes,
            edge_cases_captured: captured,
        };
        let snapshot = CompareSnapshot {
            traces_seen: 100,
            spans_seen: 900,
            bytes_seen: 50_000,
            edge_cases_seen: 10,
            events_dropped: 0,
            modes: vec![
                mode("head", 1, 500),
                mode("tail", 9, 5_000),
                mode("triggered", 10, 700),
            ],
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("compare.svg");
        write_svg(&snapshot, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        for name in ["head", "tail", "triggered", "100.0%", "1.4%"] {
            assert!(svg.contains(name), "{name} missing");
        }
    }
}
