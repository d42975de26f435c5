//! Tail-sampling policies: one file per Collector policy type, each behind [`Policy::evaluate`].
//!
//! [`build`] turns a validated [`PolicyConfig`] into a runtime policy. Policies with state (the
//! rate limits, `composite`) keep it behind a mutex, so one built sampler can be shared by threads;
//! they read time only from the `now_ms` argument, never from a clock.

mod always_sample;
mod and;
pub(crate) mod attributes;
mod boolean_attribute;
mod bytes_limiting;
mod composite;
mod drop;
mod error;
mod latency;
mod not;
mod numeric_attribute;
mod probabilistic;
mod rate_limiting;
mod span_count;
mod status_code;
mod string_attribute;
mod token_bucket;
mod trace_flags;
mod trace_state;

use std::fmt::Debug;

use wbpf_config::{PolicyConfig, PolicyKind};

pub use error::SamplerError;
pub use probabilistic::{hash_trace_id, threshold_for_percentage};

use crate::TraceData;

/// One policy's verdict on a trace.
///
/// The inverted variants come from `invert_match` attribute policies and only matter for the
/// final merge (see [`crate::tail::final_decision`]), exactly as in the Collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Sampled,
    NotSampled,
    /// Vetoes every other policy (`drop`).
    Dropped,
    /// An inverted match found nothing to exclude: sampled, unless another policy said no.
    InvertSampled,
    /// An inverted match found a value to exclude: not sampled, whatever others said.
    InvertNotSampled,
}

impl Decision {
    /// A stable lowercase name, for metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Sampled => "sampled",
            Decision::NotSampled => "not_sampled",
            Decision::Dropped => "dropped",
            Decision::InvertSampled => "invert_sampled",
            Decision::InvertNotSampled => "invert_not_sampled",
        }
    }

    /// Whether this verdict, taken alone, keeps the trace.
    pub fn is_sampled(self) -> bool {
        matches!(self, Decision::Sampled | Decision::InvertSampled)
    }
}

/// A built tail-sampling policy.
pub trait Policy: Debug + Send + Sync {
    /// Looks at the whole trace and decides; `now_ms` is the caller's clock (Unix milliseconds).
    fn evaluate(&self, trace: &TraceData, now_ms: u64) -> Decision;
}

/// Builds the runtime policy for `config`, which config validation should already have passed.
pub fn build(config: &PolicyConfig) -> Result<Box<dyn Policy>, SamplerError> {
    let invalid = |message: &str| SamplerError::InvalidPolicy {
        policy: config.name.clone(),
        message: message.to_owned(),
    };
    let Some(kind) = config.kind() else {
        let ty = &config.policy_type;
        return Err(invalid(&format!(
            "unknown type {ty:?} or missing {ty}: block"
        )));
    };

    Ok(match kind {
        PolicyKind::AlwaysSample => Box::new(always_sample::AlwaysSample),
        PolicyKind::Latency(c) => Box::new(latency::Latency::new(c)),
        PolicyKind::NumericAttribute(c) => Box::new(numeric_attribute::NumericAttribute::new(c)),
        PolicyKind::Probabilistic(c) => Box::new(probabilistic::Probabilistic::new(c)),
        PolicyKind::StatusCode(c) => {
            Box::new(status_code::StatusCode::new(c).map_err(|m| invalid(&m))?)
        }
        PolicyKind::StringAttribute(c) => {
            Box::new(string_attribute::StringAttribute::new(&config.name, c)?)
        }
        PolicyKind::BooleanAttribute(c) => Box::new(boolean_attribute::BooleanAttribute::new(c)),
        PolicyKind::RateLimiting(c) => Box::new(rate_limiting::RateLimiting::new(c)),
        PolicyKind::BytesLimiting(c) => Box::new(bytes_limiting::BytesLimiting::new(c)),
        PolicyKind::SpanCount(c) => Box::new(span_count::SpanCount::new(c)),
        PolicyKind::TraceState(c) => Box::new(trace_state::TraceState::new(c)),
        PolicyKind::TraceFlags => Box::new(trace_flags::TraceFlags),
        PolicyKind::OttlCondition(_) => {
            return Err(SamplerError::Unsupported {
                policy: config.name.clone(),
                policy_type: config.policy_type.clone(),
            })
        }
        PolicyKind::And(subs) => Box::new(and::And::new(build_all(subs)?)),
        PolicyKind::Not(sub) => Box::new(not::Not::new(build(sub)?)),
        PolicyKind::Drop(subs) => Box::new(drop::Drop::new(build_all(subs)?)),
        PolicyKind::Composite(c) => Box::new(composite::Composite::new(c)?),
    })
}

fn build_all(configs: &[PolicyConfig]) -> Result<Vec<Box<dyn Policy>>, SamplerError> {
    configs.iter().map(build).collect()
}
