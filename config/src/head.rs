//! Head sampling: keep a fixed share of traces, decided from the trace id alone.
//!
//! The decision follows OpenTelemetry's consistent probability sampling (W3C trace context level
//! 2 randomness, `ot=th:` thresholds), implemented in the sampler crate.

use serde::Deserialize;

use crate::error::Problems;

/// `head:` settings.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadSamplingConfig {
    /// Share of traces kept, in percent (`1` keeps one trace in a hundred).
    pub percentage: f64,
}

impl HeadSamplingConfig {
    /// Checks that `percentage` is a number between 0 and 100; `prefix` is the block's key path.
    pub(crate) fn validate(&self, prefix: &str, problems: &mut Problems) {
        let pct = self.percentage;
        if !pct.is_finite() || !(0.0..=100.0).contains(&pct) {
            problems.push(
                format!("{prefix}.percentage"),
                format!("{pct} is not a percentage between 0 and 100"),
            );
        }
    }

    /// The share of traces kept, between 0 and 1.
    pub fn probability(&self) -> f64 {
        self.percentage / 100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentage_must_be_between_0_and_100() {
        let check = |config: HeadSamplingConfig| {
            let mut problems = Problems::default();
            config.validate("sampling.head", &mut problems);
            problems.into_result("h.yaml", "sampling:\n  head:\n    percentage: 0\n")
        };
        let ok: HeadSamplingConfig = serde_saphyr::from_str("percentage: 1.5").unwrap();
        assert!(check(ok).is_ok());
        assert!((ok.probability() - 0.015).abs() < 1e-12);

        let message = check(HeadSamplingConfig { percentage: 120.0 })
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            "h.yaml:3:5: sampling.head.percentage: 120 is not a percentage between 0 and 100"
        );
        assert!(check(HeadSamplingConfig {
            percentage: f64::NAN
        })
        .is_err());
    }
}
