//! The final decision from the per-policy decisions: the Collector's precedence, in one place.

use crate::Decision;

/// Merges per-policy verdicts into the trace's decision, with the Collector's precedence:
///
/// 1. any `Dropped` drops the trace (a `drop` policy vetoes everything);
/// 2. else any `InvertNotSampled` (an `invert_match` policy found an excluded value) means not
///    sampled, even if other policies sampled;
/// 3. else any `Sampled` samples;
/// 4. else any `InvertSampled` samples, but only if no policy said `NotSampled`;
/// 5. else not sampled (also when there were no verdicts at all).
///
/// Returns `Sampled`, `NotSampled` or `Dropped`, and the index of the first verdict that decided
/// it (`None` for the default of rule 5). `None` entries are policies that were not evaluated
/// because an earlier one settled the trace (`Dropped`, or `Sampled` with
/// `sample_on_first_match`).
pub fn merge(decisions: &[Option<Decision>]) -> (Decision, Option<usize>) {
    let first = |wanted: Decision| decisions.iter().position(|d| *d == Some(wanted));

    if let Some(index) = first(Decision::Dropped) {
        return (Decision::Dropped, Some(index));
    }
    if let Some(index) = first(Decision::InvertNotSampled) {
        return (Decision::NotSampled, Some(index));
    }
    if let Some(index) = first(Decision::Sampled) {
        return (Decision::Sampled, Some(index));
    }
    if let Some(index) = first(Decision::InvertSampled) {
        if first(Decision::NotSampled).is_none() {
            return (Decision::Sampled, Some(index));
        }
    }
    (Decision::NotSampled, None)
}

/// [`merge`] for verdicts that were all evaluated; returns only the decision.
pub fn final_decision(decisions: &[Decision]) -> Decision {
    let decisions: Vec<Option<Decision>> = decisions.iter().copied().map(Some).collect();
    merge(&decisions).0
}
