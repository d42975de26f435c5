//! `string_attribute`: keeps a trace if a span or resource has a string attribute equal to one
//! of `values`, or matching one of them as an unanchored regular expression.
//!
//! As in the Collector: an attribute of another type reads as `""`; an empty span attribute never
//! matches (a resource attribute is still tried, which matters only for regexes that match `""`);
//! an empty entry in exact `values` is ignored. The Collector's regex result cache
//! (`cache_max_size`) is not needed: matching here costs no allocation.

use std::collections::HashSet;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use regex::RegexSet;
use wbpf_config::StringAttributeConfig;

use super::attributes::{all_resources_and_spans, any_resource_or_span, as_str, get};
use super::{Decision, Policy, SamplerError};
use crate::TraceData;

#[derive(Debug)]
enum Matcher {
    Exact(HashSet<String>),
    Regex(RegexSet),
}

#[derive(Debug)]
pub struct StringAttribute {
    key: String,
    matcher: Matcher,
    invert: bool,
}

impl StringAttribute {
    pub fn new(policy: &str, config: &StringAttributeConfig) -> Result<Self, SamplerError> {
        let matcher = if config.enabled_regex_matching {
            for pattern in &config.values {
                // Compiled one by one first so the error names the pattern at fault.
                regex::Regex::new(pattern).map_err(|source| SamplerError::Regex {
                    policy: policy.to_owned(),
                    pattern: pattern.clone(),
                    source,
                })?;
            }
            let set = RegexSet::new(&config.values).map_err(|source| SamplerError::Regex {
                policy: policy.to_owned(),
                pattern: config.values.join(" | "),
                source,
            })?;
            Matcher::Regex(set)
        } else {
            let values = config
                .values
                .iter()
                .filter(|v| !v.is_empty())
                .cloned()
                .collect();
            Matcher::Exact(values)
        };
        Ok(Self {
            key: config.key.clone(),
            matcher,
            invert: config.invert_match,
        })
    }

    fn matches_value(&self, value: &str) -> bool {
        match &self.matcher {
            Matcher::Exact(values) => values.contains(value),
            Matcher::Regex(set) => set.is_match(value),
        }
    }

    fn resource_matches(&self, attributes: &[KeyValue]) -> bool {
        get(attributes, &self.key).is_some_and(|value| self.matches_value(as_str(value)))
    }

    fn span_matches(&self, attributes: &[KeyValue]) -> bool {
        get(attributes, &self.key).is_some_and(|value| {
            let value = as_str(value);
            !value.is_empty() && self.matches_value(value)
        })
    }
}

impl Policy for StringAttribute {
    fn evaluate(&self, trace: &TraceData, _now_ms: u64) -> Decision {
        if self.invert {
            return all_resources_and_spans(
                trace,
                |resource| !self.resource_matches(resource),
                |span| !self.span_matches(&span.attributes),
            );
        }
        any_resource_or_span(
            trace,
            |resource| self.resource_matches(resource),
            |span| self.span_matches(&span.attributes),
        )
    }
}
