//! Head sampling: OpenTelemetry consistent probability sampling by trace id.
//!
//! A trace's randomness `R` is the `rv` sub-key of its `ot` tracestate member if present, else
//! the low 56 bits of its trace id (W3C trace context level 2 makes those random). It is kept iff
//! `R >= T` for the configured [`Threshold`] `T`; the exported spans then carry `ot=th:<T>` so
//! later stages know the sampling probability.
//!
//! An incoming `th` is honoured: a trace already sampled upstream with a higher threshold (a
//! lower probability) keeps that threshold, since sampling it again at our higher probability
//! changes nothing; a lower incoming threshold is raised to ours. A `th` that the trace's own
//! randomness does not satisfy is inconsistent and ignored, as the specification asks.

pub(crate) mod threshold;
pub(crate) mod tracestate;

use wbpf_config::HeadSamplingConfig;

pub use threshold::{parse_rv, Threshold, MAX_ADJUSTED_COUNT};

use crate::SamplerError;

/// A head sampler at one fixed probability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadSampler {
    threshold: Threshold,
}

/// The head decision for one trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadDecision {
    pub keep: bool,
    /// The threshold to write into `ot=th:` of the exported spans (see [`with_threshold`]).
    pub threshold: Threshold,
}

impl HeadSampler {
    /// A sampler keeping `percentage` percent of traces.
    pub fn new(percentage: f64) -> Result<Self, SamplerError> {
        if !percentage.is_finite() || !(0.0..=100.0).contains(&percentage) {
            return Err(SamplerError::HeadPercentage { percentage });
        }
        Ok(Self {
            threshold: Threshold::from_probability(percentage / 100.0),
        })
    }

    pub fn from_config(config: &HeadSamplingConfig) -> Result<Self, SamplerError> {
        Self::new(config.percentage)
    }

    /// The configured threshold.
    pub fn threshold(&self) -> Threshold {
        self.threshold
    }

    /// Decides for the trace `trace_id` whose (root or any) span carries `tracestate`.
    pub fn decide(&self, trace_id: &[u8; 16], tracestate: &str) -> HeadDecision {
        let randomness = randomness(trace_id, tracestate);
        let incoming = incoming_threshold(tracestate).filter(|th| th.keeps(randomness));
        let threshold = incoming.map_or(self.threshold, |th| th.max(self.threshold));
        HeadDecision {
            keep: threshold.keeps(randomness),
            threshold,
        }
    }
}

/// The trace's 56-bit randomness: `ot=rv:` if valid, else the trace id's low 56 bits.
pub fn randomness(trace_id: &[u8; 16], tracestate: &str) -> u64 {
    let explicit = tracestate::ot_value(tracestate)
        .and_then(tracestate::parse_ot)
        .and_then(|pairs| pairs.into_iter().find(|(key, _)| *key == "rv"))
        .and_then(|(_, rv)| parse_rv(rv));
    explicit.unwrap_or_else(|| {
        let mut low = [0u8; 8];
        low[1..].copy_from_slice(&trace_id[9..]);
        u64::from_be_bytes(low)
    })
}

/// The `th` of the `ot` member of `tracestate`, if present and well formed.
pub fn incoming_threshold(tracestate: &str) -> Option<Threshold> {
    let pairs = tracestate::parse_ot(tracestate::ot_value(tracestate)?)?;
    let (_, th) = pairs.into_iter().find(|(key, _)| *key == "th")?;
    Threshold::from_th(th)
}

/// `tracestate` with `th` of its `ot` member set to `threshold`, the `ot` member first and its
/// other sub-keys (such as `rv`) kept. [`Threshold::NEVER`] has no encoding: the input is
/// returned unchanged (such a trace is not exported anyway).
pub fn with_threshold(tracestate: &str, threshold: Threshold) -> String {
    let Some(th) = threshold.to_th() else {
        return tracestate.to_owned();
    };
    let mut value = format!("th:{th}");
    let others = tracestate::ot_value(tracestate).and_then(tracestate::parse_ot);
    for (key, sub) in others
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| *k != "th")
    {
        value.push_str(&format!(";{key}:{sub}"));
    }
    tracestate::upsert(tracestate, "ot", &value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_with_randomness(r: u64) -> [u8; 16] {
        let mut id = [0xff; 16];
        id[8..].copy_from_slice(&r.to_be_bytes());
        id[8] = 0xaa; // byte 8 is not part of the randomness
        id
    }

    #[test]
    fn randomness_is_the_low_56_bits_unless_rv_is_given() {
        let id = id_with_randomness(0x0012_3456_789a_bcde);
        assert_eq!(randomness(&id, ""), 0x0012_3456_789a_bcde);
        assert_eq!(randomness(&id, "ot=rv:00000000000001"), 1);
        assert_eq!(randomness(&id, "ot=rv:bad"), 0x0012_3456_789a_bcde);
    }

    #[test]
    fn keeps_iff_randomness_reaches_the_threshold() {
        let half = HeadSampler::new(50.0).unwrap();
        let at = id_with_randomness(1 << 55);
        let below = id_with_randomness((1 << 55) - 1);
        assert!(half.decide(&at, "").keep);
        assert!(!half.decide(&below, "").keep);
        assert!(HeadSampler::new(100.0).unwrap().decide(&below, "").keep);
        assert!(!HeadSampler::new(0.0).unwrap().decide(&at, "").keep);
        assert!(HeadSampler::new(101.0).is_err());
    }

    #[test]
    fn an_incoming_threshold_is_honoured_when_higher_and_consistent() {
        let half = HeadSampler::new(50.0).unwrap();
        let r = 0xe0 << 48; // kept at 12.5% (th:e) and at 50%
        let id = id_with_randomness(r);

        let upstream_lower_p = half.decide(&id, "ot=th:e");
        assert!(upstream_lower_p.keep);
        assert_eq!(upstream_lower_p.threshold.to_th().as_deref(), Some("e"));

        let upstream_higher_p = half.decide(&id, "ot=th:0");
        assert_eq!(upstream_higher_p.threshold, half.threshold());

        // th:f requires R >= 0xf0..., which this trace does not have: inconsistent, ignored.
        assert_eq!(half.decide(&id, "ot=th:f").threshold, half.threshold());
    }

    #[test]
    fn writing_th_keeps_rv_and_other_vendors() {
        let th = Threshold::from_probability(0.25);
        assert_eq!(with_threshold("", th), "ot=th:c");
        assert_eq!(
            with_threshold("a=1,ot=rv:0123456789abcd;th:8", th),
            "ot=th:c;rv:0123456789abcd,a=1"
        );
        assert_eq!(with_threshold("a=1", Threshold::NEVER), "a=1");
        assert_eq!(incoming_threshold(&with_threshold("b=2", th)), Some(th));
    }
}
