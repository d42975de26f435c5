//! The one error type of the sampler crate.

use thiserror::Error;

/// Why a sampler could not be built from its configuration.
///
/// Evaluation never fails: every check that can fail happens when the policies are built.
#[derive(Debug, Error)]
pub enum SamplerError {
    /// A policy's settings cannot be used (normally caught earlier by config validation).
    #[error("policy {policy}: {message}")]
    InvalidPolicy { policy: String, message: String },
    /// A policy type the Collector has and wBPF does not implement yet.
    #[error("policy {policy}: {policy_type} is not supported yet")]
    Unsupported { policy: String, policy_type: String },
    /// A `string_attribute` value that is not a valid regular expression.
    #[error("policy {policy}: invalid regular expression {pattern:?}")]
    Regex {
        policy: String,
        pattern: String,
        #[source]
        source: regex::Error,
    },
    /// A head-sampling percentage outside `0..=100`.
    #[error("head sampling percentage {percentage} is not between 0 and 100")]
    HeadPercentage { percentage: f64 },
}
