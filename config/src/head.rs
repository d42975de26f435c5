//! Head sampling: keep a fixed share of traces, decided from the trace id alone.
//!
//! The decision follows OpenTelemetry's consistent probability sampling (W3C trace context level
//! 2 randomness, `ot=th:` thresholds), implemented in the sampler crate.

use serde::Deserialize;

use crate::ConfigError;

/// `head:` settings.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadSamplingConfig {
    /// Share of traces kept, in percent (`1` keeps one trace in a hundred).
    pub percentage: f64,
}

impl HeadSamplingConfig {
    /// Checks that `percentage` is a number between 0 and 100; `prefix` is the block's key path.
    pub fn validate(&self, file: &str, prefix: &str) -> Result<(), ConfigError> {
        let pct = self.percentage;
        if !pct.is_finite() || !(0.0..=100.0).contains(&pct) {
            return Err(ConfigError::Invalid {
                file: file.to_owned(),
                key: format!("{prefix}.percentage"),
                message: format!("{pct} is not a percentage between 0 and 100"),
            });
        }
        Ok(())
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
        let ok: HeadSamplingConfig = serde_saphyr::from_str("percentage: 1.5").unwrap();
        assert!(ok.validate("h.yaml", "sampling.head").is_ok());
        assert!((ok.probability() - 0.015).abs() < 1e-12);

        let bad = HeadSamplingConfig { percentage: 120.0 };
        let message = bad
            .validate("h.yaml", "sampling.head")
            .unwrap_err()
            .to_string();
        assert!(message.contains("sampling.head.percentage"), "{message}");
        assert!(HeadSamplingConfig {
            percentage: f64::NAN
        }
        .validate("h", "h")
        .is_err());
    }
}
