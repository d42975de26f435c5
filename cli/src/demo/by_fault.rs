//! Recall per injected fault kind (far-memory stall, leak, stale access, double release,
//! fault storm), so each detector of the demo is scored on the faults it is there to find.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use wbpf_demo::GroundTruthEntry;

use super::score::ExportedTrace;

/// How one kind of injected fault fared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct FaultScore {
    /// Faults of this kind injected (ground-truth lines).
    pub injected: u64,
    /// Of those, the ones whose trace reached the exporter with every span.
    pub exported_whole: u64,
    pub recall: f64,
}

/// Scores every fault kind found in `truth`, keyed by its `fault` name.
pub fn score(
    truth: &[GroundTruthEntry],
    exported: &HashMap<String, ExportedTrace>,
) -> BTreeMap<String, FaultScore> {
    let mut scores: BTreeMap<String, FaultScore> = BTreeMap::new();
    for entry in truth {
        let score = scores.entry(entry.fault.clone()).or_default();
        score.injected += 1;
        let whole = exported
            .get(&entry.trace_id.to_ascii_lowercase())
            .is_some_and(|trace| trace.spans >= u64::from(entry.spans));
        if whole {
            score.exported_whole += 1;
        }
    }
    for score in scores.values_mut() {
        score.recall = score.exported_whole as f64 / score.injected as f64;
    }
    scores
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(trace_id: &str, fault: &str) -> GroundTruthEntry {
        GroundTruthEntry {
            trace_id: trace_id.to_owned(),
            fault: fault.to_owned(),
            service: "frontend".to_owned(),
            spans: 9,
        }
    }

    #[test]
    fn each_kind_is_scored_on_its_own_traces() {
        let truth = [
            entry("AA", "leak"),
            entry("bb", "leak"),
            entry("cc", "fault_storm"),
        ];
        let whole = ExportedTrace {
            spans: 9,
            trigger_spans: 1,
        };
        let partial = ExportedTrace {
            spans: 3,
            trigger_spans: 1,
        };
        let exported = HashMap::from([("aa".to_owned(), whole), ("cc".to_owned(), partial)]);

        let scores = score(&truth, &exported);
        assert_eq!(scores.len(), 2);
        assert_eq!(
            scores["leak"],
            FaultScore {
                injected: 2,
                exported_whole: 1,
                recall: 0.5
            }
        );
        assert_eq!(scores["fault_storm"].exported_whole, 0);
    }
}
