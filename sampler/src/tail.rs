//! Tail sampling: the Collector's `tail_sampling` policies applied to a whole buffered trace.
//!
//! [`TailSampler`] is built once from a validated [`TailSamplingConfig`] and then asked, per
//! trace, when its decision is due and what it is. It keeps the per-policy verdicts of every
//! evaluation so the caller can count them per policy, as the Collector's metrics do. Buffering,
//! late spans (which follow the cached decision) and the clock belong to the gateway.

mod merge;
mod projection;
mod trace_data;

use wbpf_config::TailSamplingConfig;

pub use merge::{final_decision, merge};
pub use projection::Projection;
pub use trace_data::{is_root, ResourceBatch, SpanFacts, TraceData};

use crate::policy::{self, Decision, Policy, SamplerError};

/// The built policies of one `tail_sampling` block.
#[derive(Debug)]
pub struct TailSampler {
    /// Policy names and runtime policies, drop policies first (the Collector's order).
    policies: Vec<(String, Box<dyn Policy>)>,
    sample_on_first_match: bool,
    decision_wait_ms: u64,
    after_root_ms: u64,
    max_trace_bytes: u64,
}

/// One evaluation: the decision and how each policy voted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailOutcome {
    /// `Sampled`, `NotSampled` or `Dropped`.
    pub decision: Decision,
    /// Index (into [`TailSampler::policy_names`]) of the policy that settled the decision.
    pub policy: Option<usize>,
    /// Each policy's verdict, in [`TailSampler::policy_names`] order; `None` = not evaluated.
    pub per_policy: Vec<Option<Decision>>,
    /// How long each evaluated policy took, in nanoseconds by the clock given to
    /// [`TailSampler::evaluate_timed`] (zero from [`TailSampler::evaluate`]).
    pub per_policy_nanos: Vec<u64>,
}

impl TailSampler {
    /// Builds every policy of `config`, which [`TailSamplingConfig::validate`] should have passed.
    pub fn build(config: &TailSamplingConfig) -> Result<Self, SamplerError> {
        let mut drops = Vec::new();
        let mut others = Vec::new();
        for policy_config in &config.policies {
            let built = (policy_config.name.clone(), policy::build(policy_config)?);
            if policy_config.policy_type == "drop" {
                drops.push(built);
            } else {
                others.push(built);
            }
        }
        drops.extend(others);

        let millis = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Ok(Self {
            policies: drops,
            sample_on_first_match: config.sample_on_first_match,
            decision_wait_ms: millis(config.decision_wait),
            after_root_ms: millis(config.decision_wait_after_root_received),
            max_trace_bytes: config.maximum_trace_size_bytes,
        })
    }

    /// Policy names in evaluation order (drop policies first), as `per_policy` is indexed.
    pub fn policy_names(&self) -> impl Iterator<Item = &str> {
        self.policies.iter().map(|(name, _)| name.as_str())
    }

    /// When `trace` should be decided: `decision_wait` after its first span, or
    /// `decision_wait_after_root_received` after its root span if that is set and earlier.
    pub fn decision_due_ms(&self, trace: &TraceData) -> u64 {
        let due = trace.first_arrival_ms.saturating_add(self.decision_wait_ms);
        match trace.root_arrival_ms {
            Some(root) if self.after_root_ms > 0 => {
                due.min(root.saturating_add(self.after_root_ms))
            }
            _ => due,
        }
    }

    /// `decision_wait_after_root_received` in milliseconds, if set.
    pub fn after_root_ms(&self) -> Option<u64> {
        (self.after_root_ms > 0).then_some(self.after_root_ms)
    }

    /// Whether `trace` outgrew `maximum_trace_size_bytes`; the Collector then decides it
    /// `NotSampled` at once, without evaluating policies.
    pub fn exceeds_max_size(&self, trace: &TraceData) -> bool {
        self.max_trace_bytes > 0 && trace.size_bytes > self.max_trace_bytes
    }

    /// Evaluates the policies on `trace` at `now_ms` and merges their verdicts (see [`merge`]).
    ///
    /// Stops early on `Dropped`, and on `Sampled` when `sample_on_first_match` is set. Stateful
    /// policies (rate limits, `composite`) count this trace against their budgets if they
    /// sample it, even if another policy decides the trace.
    pub fn evaluate(&self, trace: &TraceData, now_ms: u64) -> TailOutcome {
        self.evaluate_timed(trace, now_ms, || 0)
    }

    /// [`TailSampler::evaluate`], timing each policy with `clock_nanos`, a monotonic clock
    /// in nanoseconds supplied by the caller (the sampler reads no clock itself).
    pub fn evaluate_timed(
        &self,
        trace: &TraceData,
        now_ms: u64,
        mut clock_nanos: impl FnMut() -> u64,
    ) -> TailOutcome {
        let mut per_policy = vec![None; self.policies.len()];
        let mut per_policy_nanos = vec![0; self.policies.len()];
        let slots = per_policy.iter_mut().zip(per_policy_nanos.iter_mut());
        for ((slot, nanos), (_, policy)) in slots.zip(&self.policies) {
            let started = clock_nanos();
            let decision = policy.evaluate(trace, now_ms);
            *nanos = clock_nanos().saturating_sub(started);
            *slot = Some(decision);
            if decision == Decision::Dropped
                || (self.sample_on_first_match && decision == Decision::Sampled)
            {
                break;
            }
        }

        let (decision, policy) = merge(&per_policy);
        TailOutcome {
            decision,
            policy,
            per_policy,
            per_policy_nanos,
        }
    }
}
