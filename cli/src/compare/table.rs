//! The comparison as a terminal table.

use std::fmt::Write;

use wbpf_gateway::CompareSnapshot;

/// `part` as a percentage of `whole`; zero when there is no whole.
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// One row per mode: what it kept, what that costs, and which edge cases it caught.
pub fn render(snapshot: &CompareSnapshot) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<11} {:>9} {:>8} {:>10} {:>13} {:>8} {:>15}",
        "mode", "traces", "kept %", "spans", "bytes", "bytes %", "edge cases"
    );
    for mode in &snapshot.modes {
        let name = match mode.exporting {
            true => format!("{}*", mode.mode),
            false => mode.mode.clone(),
        };
        let edge = format!(
            "{}/{} {:>3.0}%",
            mode.edge_cases_captured,
            snapshot.edge_cases_seen,
            percent(mode.edge_cases_captured, snapshot.edge_cases_seen)
        );
        let _ = writeln!(
            out,
            "{:<11} {:>9} {:>7.2}% {:>10} {:>13} {:>7.2}% {:>15}",
            name,
            mode.traces_kept,
            percent(mode.traces_kept, snapshot.traces_seen),
            mode.spans_kept,
            mode.bytes_kept,
            percent(mode.bytes_kept, snapshot.bytes_seen),
            edge,
        );
    }
    let _ = writeln!(
        out,
        "of {} traces, {} spans, {} bytes seen; * exports, the others are shadows",
        snapshot.traces_seen, snapshot.spans_seen, snapshot.bytes_seen
    );
    if snapshot.events_dropped > 0 {
        let _ = writeln!(
            out,
            "warning: the comparison fell behind and skipped {} events; figures undercount",
            snapshot.events_dropped
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use wbpf_gateway::ModeFigures;

    use super::*;

    #[test]
    fn rows_show_shares_and_mark_the_exporting_mode() {
        let snapshot = CompareSnapshot {
            traces_seen: 200,
            spans_seen: 1_800,
            bytes_seen: 100_000,
            edge_cases_seen: 4,
            events_dropped: 0,
            modes: vec![ModeFigures {
                mode: "triggered".to_owned(),
                exporting: true,
                traces_decided: 200,
                traces_kept: 4,
                spans_kept: 36,
                bytes_kept: 2_000,
                edge_cases_captured: 4,
            }],
        };
        let text = render(&snapshot);
        let row = text.lines().nth(1).unwrap();
        assert!(row.starts_with("triggered*"), "{text}");
        assert!(row.contains("2.00%"), "{text}");
        assert!(row.contains("4/4 100%"), "{text}");
    }
}
