//! One policy of a `tail_sampling` block, as the Collector spells it.
//!
//! The Collector writes a policy as `{name, type, <type>: {...}}`: the per-type settings sit in a
//! key named after the type. [`PolicyConfig`] mirrors that layout so pasted YAML deserializes, and
//! [`PolicyConfig::kind`] turns it into the tagged [`PolicyKind`] that code matches on.

use serde::Deserialize;

/// Every `type` the Collector defines, in the order its README lists them.
pub const POLICY_TYPES: &[&str] = &[
    "always_sample",
    "latency",
    "numeric_attribute",
    "probabilistic",
    "status_code",
    "string_attribute",
    "trace_state",
    "rate_limiting",
    "bytes_limiting",
    "span_count",
    "boolean_attribute",
    "ottl_condition",
    "trace_flags",
    "and",
    "not",
    "drop",
    "composite",
];

/// One entry of `policies` (or of a combinator's sub-policy list).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Names the policy in metrics and errors.
    pub name: String,
    /// One of [`POLICY_TYPES`]; checked by validation so the error can name the key path.
    #[serde(rename = "type")]
    pub policy_type: String,
    pub latency: Option<LatencyConfig>,
    pub numeric_attribute: Option<NumericAttributeConfig>,
    pub probabilistic: Option<ProbabilisticConfig>,
    pub status_code: Option<StatusCodeConfig>,
    pub string_attribute: Option<StringAttributeConfig>,
    pub boolean_attribute: Option<BooleanAttributeConfig>,
    pub rate_limiting: Option<RateLimitingConfig>,
    pub bytes_limiting: Option<BytesLimitingConfig>,
    pub span_count: Option<SpanCountConfig>,
    pub trace_state: Option<TraceStateConfig>,
    pub ottl_condition: Option<OttlConditionConfig>,
    pub and: Option<AndConfig>,
    pub not: Option<NotConfig>,
    pub drop: Option<DropConfig>,
    pub composite: Option<CompositeConfig>,
}

/// A policy's settings, tagged by its type. Borrowed from the [`PolicyConfig`] it came from.
#[derive(Debug, Clone, Copy)]
pub enum PolicyKind<'a> {
    AlwaysSample,
    Latency(&'a LatencyConfig),
    NumericAttribute(&'a NumericAttributeConfig),
    Probabilistic(&'a ProbabilisticConfig),
    StatusCode(&'a StatusCodeConfig),
    StringAttribute(&'a StringAttributeConfig),
    BooleanAttribute(&'a BooleanAttributeConfig),
    RateLimiting(&'a RateLimitingConfig),
    BytesLimiting(&'a BytesLimitingConfig),
    SpanCount(&'a SpanCountConfig),
    TraceState(&'a TraceStateConfig),
    TraceFlags,
    OttlCondition(&'a OttlConditionConfig),
    And(&'a [PolicyConfig]),
    Not(&'a PolicyConfig),
    Drop(&'a [PolicyConfig]),
    Composite(&'a CompositeConfig),
}

impl PolicyConfig {
    /// The settings for this policy's `type`; `None` if the type is unknown or its block missing.
    pub fn kind(&self) -> Option<PolicyKind<'_>> {
        use PolicyKind as K;
        Some(match self.policy_type.as_str() {
            "always_sample" => K::AlwaysSample,
            "trace_flags" => K::TraceFlags,
            "latency" => K::Latency(self.latency.as_ref()?),
            "numeric_attribute" => K::NumericAttribute(self.numeric_attribute.as_ref()?),
            "probabilistic" => K::Probabilistic(self.probabilistic.as_ref()?),
            "status_code" => K::StatusCode(self.status_code.as_ref()?),
            "string_attribute" => K::StringAttribute(self.string_attribute.as_ref()?),
            "boolean_attribute" => K::BooleanAttribute(self.boolean_attribute.as_ref()?),
            "rate_limiting" => K::RateLimiting(self.rate_limiting.as_ref()?),
            "bytes_limiting" => K::BytesLimiting(self.bytes_limiting.as_ref()?),
            "span_count" => K::SpanCount(self.span_count.as_ref()?),
            "trace_state" => K::TraceState(self.trace_state.as_ref()?),
            "ottl_condition" => K::OttlCondition(self.ottl_condition.as_ref()?),
            "and" => K::And(&self.and.as_ref()?.and_sub_policy),
            "not" => K::Not(&self.not.as_ref()?.not_sub_policy),
            "drop" => K::Drop(&self.drop.as_ref()?.drop_sub_policy),
            "composite" => K::Composite(self.composite.as_ref()?),
            _ => return None,
        })
    }

    /// The per-type blocks that are present, by key, for validation messages.
    pub(crate) fn present_blocks(&self) -> Vec<&'static str> {
        let present = [
            ("latency", self.latency.is_some()),
            ("numeric_attribute", self.numeric_attribute.is_some()),
            ("probabilistic", self.probabilistic.is_some()),
            ("status_code", self.status_code.is_some()),
            ("string_attribute", self.string_attribute.is_some()),
            ("boolean_attribute", self.boolean_attribute.is_some()),
            ("rate_limiting", self.rate_limiting.is_some()),
            ("bytes_limiting", self.bytes_limiting.is_some()),
            ("span_count", self.span_count.is_some()),
            ("trace_state", self.trace_state.is_some()),
            ("ottl_condition", self.ottl_condition.is_some()),
            ("and", self.and.is_some()),
            ("not", self.not.is_some()),
            ("drop", self.drop.is_some()),
            ("composite", self.composite.is_some()),
        ];
        present
            .iter()
            .filter(|(_, is)| *is)
            .map(|(key, _)| *key)
            .collect()
    }
}

/// `latency`: sample traces whose end-to-end duration is over `threshold_ms`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LatencyConfig {
    pub threshold_ms: i64,
    /// 0 = no upper bound; otherwise the lower bound becomes exclusive, as in the Collector.
    pub upper_threshold_ms: i64,
}

/// `numeric_attribute`: an integer span or resource attribute within `[min_value, max_value]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NumericAttributeConfig {
    pub key: String,
    /// Absent or 0 = no lower bound (the Collector treats 0 as unset).
    pub min_value: Option<i64>,
    /// Absent or 0 = no upper bound (the Collector treats 0 as unset).
    pub max_value: Option<i64>,
    pub invert_match: bool,
}

/// `probabilistic`: a share of traces picked by hashing the trace id.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbabilisticConfig {
    /// Empty = the Collector's default salt, so both pick the same traces.
    pub hash_salt: String,
    pub sampling_percentage: f64,
}

/// `status_code`: any span with one of these codes (`OK`, `ERROR`, `UNSET`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusCodeConfig {
    pub status_codes: Vec<String>,
}

/// `string_attribute`: a string span or resource attribute equal to (or matching) one of `values`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StringAttributeConfig {
    pub key: String,
    pub values: Vec<String>,
    /// Treat `values` as unanchored regular expressions (RE2 syntax).
    pub enabled_regex_matching: bool,
    /// Accepted for compatibility; wBPF's regex engine needs no match cache.
    pub cache_max_size: i64,
    pub invert_match: bool,
}

/// `boolean_attribute`: a boolean span or resource attribute equal to `value`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BooleanAttributeConfig {
    pub key: String,
    pub value: bool,
    pub invert_match: bool,
}

/// `rate_limiting`: a token bucket of spans.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitingConfig {
    pub spans_per_second: i64,
    /// Bucket size in spans; 0 = twice `spans_per_second`, as in the Collector.
    pub burst_capacity: i64,
}

/// `bytes_limiting`: a token bucket of bytes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BytesLimitingConfig {
    pub bytes_per_second: i64,
    /// Bucket size in bytes; 0 = twice `bytes_per_second`, as in the Collector.
    pub burst_capacity: i64,
}

/// `span_count`: traces with `min_spans..=max_spans` spans (`max_spans: 0` = no maximum).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpanCountConfig {
    pub min_spans: i32,
    pub max_spans: i32,
}

/// `trace_state`: a span whose W3C `tracestate` has `key` set to one of `values`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TraceStateConfig {
    pub key: String,
    pub values: Vec<String>,
}

/// `ottl_condition`: parsed so Collector configs load, then rejected by validation.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OttlConditionConfig {
    pub error_mode: String,
    pub span: Vec<String>,
    pub spanevent: Vec<String>,
}

/// `and`: sampled only if every sub-policy samples.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AndConfig {
    pub and_sub_policy: Vec<PolicyConfig>,
}

/// `not`: the opposite of one sub-policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotConfig {
    pub not_sub_policy: Box<PolicyConfig>,
}

/// `drop`: drops the trace, whatever other policies say, if every sub-policy samples it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DropConfig {
    pub drop_sub_policy: Vec<PolicyConfig>,
}

/// `composite`: sub-policies sharing a spans-per-second budget by `rate_allocation`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompositeConfig {
    pub max_total_spans_per_second: i64,
    /// Evaluation order by sub-policy name; sub-policies not listed follow in their own order.
    pub policy_order: Vec<String>,
    pub composite_sub_policy: Vec<PolicyConfig>,
    pub rate_allocation: Vec<RateAllocationConfig>,
}

/// One `rate_allocation` entry: `percent` of `max_total_spans_per_second` for `policy`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateAllocationConfig {
    pub policy: String,
    pub percent: i64,
}
