//! Tail-sampling metrics in the Collector's spirit: per policy, how long it took to evaluate
//! and what it voted; per trace, the final decision and the time from first span to decision.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use wbpf_sampler::TailOutcome;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyLabels {
    policy: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VoteLabels {
    policy: String,
    decision: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    decision: String,
}

fn policy_latency_histogram() -> Histogram {
    // 1 µs to about 16 ms.
    Histogram::new(exponential_buckets(1e-6, 4.0, 8))
}

/// The tail sampler's metrics.
#[derive(Debug)]
pub struct PolicyMetrics {
    latency: Family<PolicyLabels, Histogram, fn() -> Histogram>,
    votes: Family<VoteLabels, Counter>,
    traces: Family<DecisionLabels, Counter>,
    decision_delay: Histogram,
    evaluation_errors: Counter,
}

impl Default for PolicyMetrics {
    fn default() -> Self {
        Self {
            latency: Family::new_with_constructor(policy_latency_histogram),
            votes: Family::default(),
            traces: Family::default(),
            // 10 ms to about 3 min.
            decision_delay: Histogram::new(exponential_buckets(0.01, 2.0, 15)),
            evaluation_errors: Counter::default(),
        }
    }
}

impl PolicyMetrics {
    /// Registers the metrics (names get the registry's prefix).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "policy_evaluation_seconds",
            "time each tail-sampling policy took to evaluate a trace",
            self.latency.clone(),
        );
        registry.register(
            "policy_decisions",
            "traces each policy voted on, by vote",
            self.votes.clone(),
        );
        registry.register(
            "tail_decisions",
            "traces decided by the tail policies, by final decision",
            self.traces.clone(),
        );
        registry.register(
            "tail_decision_delay_seconds",
            "time from a trace's first span to its tail decision",
            self.decision_delay.clone(),
        );
        registry.register(
            "tail_evaluation_errors",
            "stored span groups that could not be read back for a decision",
            self.evaluation_errors.clone(),
        );
    }

    /// Records one evaluation; `outcome` is `None` for a trace over the size limit.
    pub fn record<'a>(
        &self,
        policies: impl Iterator<Item = &'a str>,
        outcome: Option<&TailOutcome>,
        delay_ms: u64,
    ) {
        self.decision_delay.observe(delay_ms as f64 / 1_000.0);
        let Some(outcome) = outcome else {
            self.count_trace("too_large");
            return;
        };
        self.count_trace(outcome.decision.as_str());
        let verdicts = outcome.per_policy.iter().zip(&outcome.per_policy_nanos);
        for (policy, (verdict, nanos)) in policies.zip(verdicts) {
            let Some(verdict) = verdict else {
                continue;
            };
            let policy = policy.to_owned();
            self.latency
                .get_or_create(&PolicyLabels {
                    policy: policy.clone(),
                })
                .observe(*nanos as f64 / 1e9);
            self.votes
                .get_or_create(&VoteLabels {
                    policy,
                    decision: verdict.as_str().to_owned(),
                })
                .inc();
        }
    }

    pub fn evaluation_error(&self) {
        self.evaluation_errors.inc();
    }

    fn count_trace(&self, decision: &str) {
        self.traces
            .get_or_create(&DecisionLabels {
                decision: decision.to_owned(),
            })
            .inc();
    }
}
