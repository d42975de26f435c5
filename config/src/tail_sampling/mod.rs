//! The OpenTelemetry Collector's `tail_sampling` block, accepted verbatim.
//!
//! The keys, nesting and defaults are those of the Collector's `tailsamplingprocessor`, so a block
//! copied from a Collector config parses unchanged. Deserialization only checks shapes; everything
//! that depends on values (unknown policy types, missing per-type blocks, regexes, percentages,
//! `rate_allocation` names, `ottl_condition`) is checked afterwards, and every problem found is
//! reported with its line, column and key path. The sampler crate turns a validated block into
//! runtime policies.

mod collector;
mod policy;
mod validate;

use std::time::Duration;

use serde::Deserialize;

pub use collector::parse_tail_sampling_block;
pub use policy::{
    AndConfig, BooleanAttributeConfig, BytesLimitingConfig, CompositeConfig, DropConfig,
    LatencyConfig, NotConfig, NumericAttributeConfig, OttlConditionConfig, PolicyConfig,
    PolicyKind, ProbabilisticConfig, RateAllocationConfig, RateLimitingConfig, SpanCountConfig,
    StatusCodeConfig, StringAttributeConfig, TraceStateConfig, POLICY_TYPES,
};
pub(crate) use validate::validate_policies;

/// A `tail_sampling:` block.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TailSamplingConfig {
    /// Wait after a trace's first span before deciding (Collector default 30s).
    #[serde(with = "crate::duration")]
    pub decision_wait: Duration,
    /// Decide this long after the root span arrived, if earlier than `decision_wait`; 0 = off.
    #[serde(with = "crate::duration")]
    pub decision_wait_after_root_received: Duration,
    /// Accepted for compatibility; wBPF bounds its buffer by bytes on disk instead.
    pub num_traces: u64,
    /// Accepted for compatibility; a sizing hint only.
    pub expected_new_traces_per_sec: u64,
    /// How many decided trace ids are remembered for late spans.
    pub decision_cache: DecisionCacheConfig,
    /// Stop evaluating at the first policy that samples.
    pub sample_on_first_match: bool,
    /// Traces larger than this are not sampled, before their decision is due; 0 = no limit.
    pub maximum_trace_size_bytes: u64,
    /// On shutdown, drop undecided traces instead of deciding them early.
    pub drop_pending_traces_on_shutdown: bool,
    /// Accepted for compatibility; wBPF never evicts undecided traces by count.
    pub block_on_overflow: bool,
    /// The policies, evaluated as the Collector does (drop policies first).
    pub policies: Vec<PolicyConfig>,
}

impl Default for TailSamplingConfig {
    fn default() -> Self {
        Self {
            decision_wait: Duration::from_secs(30),
            decision_wait_after_root_received: Duration::ZERO,
            num_traces: 50_000,
            expected_new_traces_per_sec: 0,
            decision_cache: DecisionCacheConfig::default(),
            sample_on_first_match: false,
            maximum_trace_size_bytes: 0,
            drop_pending_traces_on_shutdown: false,
            block_on_overflow: false,
            policies: Vec::new(),
        }
    }
}

/// `decision_cache`: how many sampled and not-sampled trace ids are remembered.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DecisionCacheConfig {
    pub sampled_cache_size: u64,
    pub non_sampled_cache_size: u64,
}
