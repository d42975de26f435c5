//! `boolean_attribute`: keeps a trace if a span or resource has the boolean attribute `value`.
//!
//! As in the Collector an attribute of another type reads as `false`.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use wbpf_config::BooleanAttributeConfig;

use super::attributes::{all_resources_and_spans, any_resource_or_span, as_bool, get};
use super::{Decision, Policy};
use crate::TraceData;

#[derive(Debug)]
pub struct BooleanAttribute {
    key: String,
    value: bool,
    invert: bool,
}

impl BooleanAttribute {
    pub fn new(config: &BooleanAttributeConfig) -> Self {
        Self {
            key: config.key.clone(),
            value: config.value,
            invert: config.invert_match,
        }
    }

    fn matches(&self, attributes: &[KeyValue]) -> bool {
        get(attributes, &self.key).is_some_and(|value| as_bool(value) == self.value)
    }
}

impl Policy for BooleanAttribute {
    fn evaluate(&self, trace: &TraceData, _now_ms: u64) -> Decision {
        if self.invert {
            return all_resources_and_spans(
                trace,
                |resource| !self.matches(resource),
                |span| !self.matches(&span.attributes),
            );
        }
        any_resource_or_span(
            trace,
            |resource| self.matches(resource),
            |span| self.matches(&span.attributes),
        )
    }
}
