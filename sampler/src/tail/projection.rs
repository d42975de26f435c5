//! What of a trace the configured policies read, so a waiting trace can be held in memory
//! without its payload.
//!
//! Tail policies look at few span fields ([`SpanFacts`](super::SpanFacts)) and, of the
//! attributes, only those named by attribute policies. A [`Projection`] built from the
//! `tail_sampling` block keeps exactly those attributes, so the gateway can keep a trimmed
//! [`TraceData`] per undecided trace and decide it without reading its spans back from storage.
//! Sizes, counts and the root's arrival are taken from the whole spans, so `span_count`,
//! `bytes_limiting` and `decision_wait_after_root_received` see the whole trace.

use std::collections::HashSet;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use wbpf_config::{PolicyConfig, PolicyKind, TailSamplingConfig};

use super::TraceData;

/// The attribute keys the policies of one `tail_sampling` block read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projection {
    keys: HashSet<String>,
}

impl Projection {
    /// The projection for every policy of `config`, sub-policies included.
    pub fn of(config: &TailSamplingConfig) -> Self {
        let mut projection = Self::default();
        for policy in &config.policies {
            projection.add(policy);
        }
        projection
    }

    /// Whether attribute `key` is read by some policy.
    pub fn reads(&self, key: &str) -> bool {
        self.keys.contains(key)
    }

    fn add(&mut self, policy: &PolicyConfig) {
        let Some(kind) = policy.kind() else {
            return;
        };
        match kind {
            PolicyKind::NumericAttribute(c) => self.add_key(&c.key),
            PolicyKind::StringAttribute(c) => self.add_key(&c.key),
            PolicyKind::BooleanAttribute(c) => self.add_key(&c.key),
            PolicyKind::And(subs) | PolicyKind::Drop(subs) => subs.iter().for_each(|p| self.add(p)),
            PolicyKind::Not(sub) => self.add(sub),
            PolicyKind::Composite(c) => c.composite_sub_policy.iter().for_each(|p| self.add(p)),
            PolicyKind::AlwaysSample
            | PolicyKind::Latency(_)
            | PolicyKind::Probabilistic(_)
            | PolicyKind::StatusCode(_)
            | PolicyKind::RateLimiting(_)
            | PolicyKind::BytesLimiting(_)
            | PolicyKind::SpanCount(_)
            | PolicyKind::TraceState(_)
            | PolicyKind::TraceFlags
            | PolicyKind::OttlCondition(_) => {}
        }
    }

    fn add_key(&mut self, key: &str) {
        self.keys.insert(key.to_owned());
    }

    /// The trimmed view of resource spans that arrived at `arrival_ms`: the same decisions as
    /// [`TraceData::from_resource_spans`] on the whole spans, in a fraction of the memory.
    pub fn trace_data(
        &self,
        trace_id: [u8; 16],
        resource_spans: &[ResourceSpans],
        arrival_ms: u64,
    ) -> TraceData {
        TraceData::keeping(trace_id, resource_spans, arrival_ms, |kvs| {
            self.attributes(kvs)
        })
    }

    fn attributes(&self, attributes: &[KeyValue]) -> Vec<KeyValue> {
        if self.keys.is_empty() {
            return Vec::new();
        }
        attributes
            .iter()
            .filter(|kv| self.keys.contains(&kv.key))
            .cloned()
            .collect()
    }
}

impl TraceData {
    /// Adds what arrived later of the same trace: its batches, counts and root arrival.
    pub fn absorb(&mut self, later: TraceData) {
        self.span_count += later.span_count;
        self.size_bytes += later.size_bytes;
        self.root_arrival_ms = self.root_arrival_ms.or(later.root_arrival_ms);
        self.first_arrival_ms = self.first_arrival_ms.min(later.first_arrival_ms);
        self.batches.extend(later.batches);
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ScopeSpans, Span, Status};

    use super::*;
    use crate::TailSampler;

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value: Some(value) }),
            ..KeyValue::default()
        }
    }

    fn config(block: &str) -> TailSamplingConfig {
        wbpf_config::parse_tail_sampling_block(block, "test.yaml").expect("test config parses")
    }

    const POLICIES: &str = r#"
tail_sampling:
  decision_wait: 1s
  policies:
    - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
    - {name: slow, type: latency, latency: {threshold_ms: 100}}
    - name: both
      type: and
      and:
        and_sub_policy:
          - {name: tier, type: string_attribute, string_attribute: {key: tier, values: [gold]}}
          - {name: big, type: numeric_attribute, numeric_attribute: {key: n, min_value: 10}}
    - {name: few, type: span_count, span_count: {min_spans: 3}}
"#;

    fn spans(errors: bool, tier: &str, n: i64, slow: bool) -> Vec<ResourceSpans> {
        let span = |parent: Vec<u8>, end: u64| Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            parent_span_id: parent,
            name: "a fairly long operation name".to_owned(),
            start_time_unix_nano: 1_000_000_000,
            end_time_unix_nano: end,
            attributes: vec![
                kv("n", Value::IntValue(n)),
                kv("payload", Value::StringValue("x".repeat(500))),
            ],
            status: errors.then(|| Status {
                code: 2,
                message: "boom".to_owned(),
            }),
            ..Span::default()
        };
        let end = if slow { 1_500_000_000 } else { 1_010_000_000 };
        vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("tier", Value::StringValue(tier.to_owned())),
                    kv("host", Value::StringValue("h".repeat(200))),
                ],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![span(Vec::new(), end), span(vec![3; 8], end)],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }]
    }

    #[test]
    fn keeps_only_the_attributes_policies_read() {
        let projection = Projection::of(&config(POLICIES));
        assert!(projection.reads("tier") && projection.reads("n"));
        assert!(!projection.reads("payload") && !projection.reads("host"));

        let data = projection.trace_data([1; 16], &spans(false, "gold", 1, false), 5);
        let batch = &data.batches[0];
        assert_eq!(batch.resource_attributes.len(), 1);
        assert!(batch.spans.iter().all(|s| s.attributes.len() == 1));
        assert_eq!(data.root_arrival_ms, Some(5));
    }

    #[test]
    fn counts_and_sizes_are_those_of_the_whole_spans() {
        let projection = Projection::of(&config(POLICIES));
        let whole = spans(true, "gold", 12, true);
        let full = TraceData::from_resource_spans([1; 16], &whole, 5);
        let trimmed = projection.trace_data([1; 16], &whole, 5);
        assert_eq!(trimmed.span_count, full.span_count);
        assert_eq!(trimmed.size_bytes, full.size_bytes);
    }

    #[test]
    fn trimmed_traces_get_the_decisions_of_whole_ones() {
        let config = config(POLICIES);
        let projection = Projection::of(&config);
        let sampler = TailSampler::build(&config).expect("policies build");
        for errors in [false, true] {
            for tier in ["gold", "lead"] {
                for n in [1, 12] {
                    for slow in [false, true] {
                        let whole = spans(errors, tier, n, slow);
                        let mut full = TraceData::from_resource_spans([1; 16], &whole, 5);
                        let mut trimmed = projection.trace_data([1; 16], &whole, 5);
                        // A second arrival pushes span_count over `few`'s minimum.
                        full.absorb(TraceData::from_resource_spans([1; 16], &whole, 6));
                        trimmed.absorb(projection.trace_data([1; 16], &whole, 6));
                        assert_eq!(
                            sampler.evaluate(&trimmed, 10).per_policy,
                            sampler.evaluate(&full, 10).per_policy,
                            "errors={errors} tier={tier} n={n} slow={slow}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn absorbing_keeps_the_first_root_and_adds_counts() {
        let projection = Projection::of(&config(POLICIES));
        let mut data = TraceData::new([1; 16], 7);
        data.absorb(projection.trace_data([1; 16], &spans(false, "gold", 1, false), 9));
        data.absorb(projection.trace_data([1; 16], &spans(false, "gold", 1, false), 11));
        assert_eq!(data.span_count, 4);
        assert_eq!(data.first_arrival_ms, 7);
        assert_eq!(data.root_arrival_ms, Some(9));
        assert_eq!(data.batches.len(), 2);
    }
}
