//! Bounds on what one span may carry, applied at the receivers before anything is stored.
//!
//! Each limit repairs the span rather than rejecting it, so one pathological field does not
//! cost its trace a span: the end time is clamped, and attributes, events and links beyond a
//! limit are dropped and added to the span's `dropped_*_count`, as an SDK's span limits would.
//! An attribute whose value nests arrays or key-value lists deeper than [`MAX_DEPTH`] is dropped
//! too: everything downstream (policies, exporters) walks values recursively.
//!
//! Payloads nested far deeper never get here: prost refuses messages nested more than 100
//! deep and serde_json more than 128, which for attribute values is about 30 levels, and the
//! receivers answer those with 400 / `INVALID_ARGUMENT`.

use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;

use crate::portable::make_portable;

/// Most attributes kept per span, event, link, scope and resource.
pub const MAX_ATTRIBUTES: usize = 1024;
/// Most events kept per span.
pub const MAX_EVENTS: usize = 1024;
/// Most links kept per span.
pub const MAX_LINKS: usize = 1024;
/// Deepest attribute value kept: a scalar is one level, each array or key-value list one more.
pub const MAX_DEPTH: usize = 16;

/// Applies the limits to `span`; returns the first repair made, naming the field.
pub fn limit_span(span: &mut Span) -> Option<String> {
    let mut first = None;

    if span.end_time_unix_nano < span.start_time_unix_nano {
        span.end_time_unix_nano = span.start_time_unix_nano;
        first = Some("endTimeUnixNano: earlier than startTimeUnixNano, set to the start".into());
    }

    let repair = limit_attributes(&mut span.attributes, &mut span.dropped_attributes_count);
    first = first.or(repair.map(|problem| format!("attributes{problem}")));

    let dropped = truncate(&mut span.events, MAX_EVENTS);
    if dropped > 0 {
        span.dropped_events_count = span.dropped_events_count.saturating_add(dropped);
        first = first.or_else(|| Some(over_limit("events", dropped, MAX_EVENTS)));
    }
    for (e, event) in span.events.iter_mut().enumerate() {
        let repair = limit_attributes(&mut event.attributes, &mut event.dropped_attributes_count);
        first = first.or(repair.map(|problem| format!("events[{e}].attributes{problem}")));
    }

    let dropped = truncate(&mut span.links, MAX_LINKS);
    if dropped > 0 {
        span.dropped_links_count = span.dropped_links_count.saturating_add(dropped);
        first = first.or_else(|| Some(over_limit("links", dropped, MAX_LINKS)));
    }
    for (l, link) in span.links.iter_mut().enumerate() {
        let repair = limit_attributes(&mut link.attributes, &mut link.dropped_attributes_count);
        first = first.or(repair.map(|problem| format!("links[{l}].attributes{problem}")));
    }

    first
}

/// Drops attributes nested deeper than [`MAX_DEPTH`] and those beyond [`MAX_ATTRIBUTES`],
/// adding them to `dropped`, and makes the rest portable (see [`crate::portable`]); returns the
/// first problem, to be appended to the field's path.
pub fn limit_attributes(attributes: &mut Vec<KeyValue>, dropped: &mut u32) -> Option<String> {
    let mut first = None;

    let mut index = 0;
    let before = attributes.len();
    attributes.retain(|kv| {
        let keep = !deeper_than(kv.value.as_ref(), MAX_DEPTH);
        if !keep && first.is_none() {
            first = Some(format!(
                "[{index}].value: nested deeper than {MAX_DEPTH} levels, attribute dropped"
            ));
        }
        index += 1;
        keep
    });
    let mut removed = count(before - attributes.len());

    let extra = truncate(attributes, MAX_ATTRIBUTES);
    if extra > 0 {
        removed = removed.saturating_add(extra);
        first = first.or_else(|| Some(over_limit("", extra, MAX_ATTRIBUTES)));
    }

    *dropped = dropped.saturating_add(removed);
    first.or(make_portable(attributes))
}

/// Whether `value` has more than `levels` levels.
fn deeper_than(value: Option<&AnyValue>, levels: usize) -> bool {
    let Some(value) = value.and_then(|v| v.value.as_ref()) else {
        return false;
    };
    if levels == 0 {
        return true;
    }
    match value {
        Value::ArrayValue(array) => {
            let mut values = array.values.iter();
            values.any(|v| deeper_than(Some(v), levels - 1))
        }
        Value::KvlistValue(list) => {
            let mut values = list.values.iter();
            values.any(|kv| deeper_than(kv.value.as_ref(), levels - 1))
        }
        _ => false,
    }
}

/// Keeps the first `max` items; returns how many were dropped.
fn truncate<T>(items: &mut Vec<T>, max: usize) -> u32 {
    let dropped = items.len().saturating_sub(max);
    items.truncate(max);
    count(dropped)
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn over_limit(field: &str, dropped: u32, max: usize) -> String {
    format!("{field}: over the limit of {max}, {dropped} dropped")
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::ArrayValue;
    use opentelemetry_proto::tonic::trace::v1::span::Event;

    use super::*;

    fn nested(levels: usize) -> AnyValue {
        let mut value = AnyValue {
            value: Some(Value::IntValue(1)),
        };
        for _ in 1..levels {
            value = AnyValue {
                value: Some(Value::ArrayValue(ArrayValue {
                    values: vec![value],
                })),
            };
        }
        value
    }

    fn attribute(key: &str, value: AnyValue) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(value),
            ..Default::default()
        }
    }

    #[test]
    fn clamps_an_end_before_the_start() {
        let mut span = Span {
            start_time_unix_nano: 20,
            end_time_unix_nano: 10,
            ..Default::default()
        };
        let repair = limit_span(&mut span).expect("a repair");
        assert!(repair.starts_with("endTimeUnixNano: earlier"), "{repair}");
        assert_eq!(span.end_time_unix_nano, 20);
    }

    #[test]
    fn keeps_values_at_the_depth_limit_and_drops_deeper_ones() {
        let mut attributes = vec![
            attribute("ok", nested(MAX_DEPTH)),
            attribute("deep", nested(MAX_DEPTH + 1)),
        ];
        let mut dropped = 2;
        let repair = limit_attributes(&mut attributes, &mut dropped).expect("a repair");
        assert!(
            repair.starts_with("[1].value: nested deeper than 16"),
            "{repair}"
        );
        assert_eq!(attributes.len(), 1);
        assert_eq!(attributes[0].key, "ok");
        assert_eq!(dropped, 3);
    }

    #[test]
    fn drops_attributes_and_events_beyond_the_limits_and_counts_them() {
        let value = nested(1);
        let event = Event {
            attributes: vec![attribute("e", value.clone()); MAX_ATTRIBUTES + 1],
            ..Default::default()
        };
        let mut span = Span {
            attributes: vec![attribute("a", value); MAX_ATTRIBUTES + 5],
            events: vec![event; MAX_EVENTS + 2],
            ..Default::default()
        };
        let repair = limit_span(&mut span).expect("a repair");
        assert_eq!(repair, "attributes: over the limit of 1024, 5 dropped");
        assert_eq!(span.attributes.len(), MAX_ATTRIBUTES);
        assert_eq!(span.dropped_attributes_count, 5);
        assert_eq!(span.events.len(), MAX_EVENTS);
        assert_eq!(span.dropped_events_count, 2);
        assert_eq!(span.events[3].dropped_attributes_count, 1);
    }

    #[test]
    fn a_span_within_the_limits_is_untouched() {
        let mut span = Span {
            start_time_unix_nano: 10,
            end_time_unix_nano: 10,
            attributes: vec![attribute("a", nested(3))],
            ..Default::default()
        };
        let before = span.clone();
        assert_eq!(limit_span(&mut span), None);
        assert_eq!(span, before);
    }
}
