//! `numeric_attribute`: keeps a trace if a span or resource has an integer attribute in range.
//!
//! A missing bound is open. As in the Collector a bound of 0 counts as missing, and an attribute
//! of another type reads as 0.

use wbpf_config::NumericAttributeConfig;

use super::attributes::{all_resources_and_spans, any_resource_or_span, as_int, get};
use super::{Decision, Policy};
use crate::TraceData;

#[derive(Debug)]
pub struct NumericAttribute {
    key: String,
    min: i64,
    max: i64,
    invert: bool,
}

impl NumericAttribute {
    pub fn new(config: &NumericAttributeConfig) -> Self {
        let set = |bound: Option<i64>| bound.filter(|value| *value != 0);
        Self {
            key: config.key.clone(),
            min: set(config.min_value).unwrap_or(i64::MIN),
            max: set(config.max_value).unwrap_or(i64::MAX),
            invert: config.invert_match,
        }
    }

    /// Whether `attributes` hold the key with a value in range.
    fn in_range(&self, attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue]) -> bool {
        get(attributes, &self.key)
            .map(as_int)
            .is_some_and(|value| self.min <= value && value <= self.max)
    }
}

impl Policy for NumericAttribute {
    fn evaluate(&self, trace: &TraceData, _now_ms: u64) -> Decision {
        if self.invert {
            return all_resources_and_spans(
                trace,
                |resource| !self.in_range(resource),
                |span| !self.in_range(&span.attributes),
            );
        }
        any_resource_or_span(
            trace,
            |resource| self.in_range(resource),
            |span| self.in_range(&span.attributes),
        )
    }
}
