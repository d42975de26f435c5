//! Recognising trigger spans.
//!
//! A trigger is an ordinary OTLP span (so it shows up inside its trace in Jaeger) carrying the
//! attribute `wbpf.trigger = true`. Node probes emit them; so can any application or operator
//! that wants a trace kept.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;

/// The attribute that marks a trigger span.
pub const TRIGGER_ATTRIBUTE: &str = "wbpf.trigger";

/// Whether `span` asks for its trace to be kept.
///
/// Accepts the boolean `true` and, for clients that can only send strings, `"true"`.
pub fn is_trigger(span: &Span) -> bool {
    span.attributes.iter().any(|kv| {
        kv.key == TRIGGER_ATTRIBUTE
            && match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::BoolValue(b)) => *b,
                Some(Value::StringValue(s)) => s.eq_ignore_ascii_case("true"),
                _ => false,
            }
    })
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};

    use super::*;

    fn span_with(key: &str, value: Value) -> Span {
        Span {
            attributes: vec![KeyValue {
                key: key.to_owned(),
                value: Some(AnyValue { value: Some(value) }),
                ..Default::default()
            }],
            ..Span::default()
        }
    }

    #[test]
    fn recognises_boolean_and_string_true_only() {
        assert!(is_trigger(&span_with(
            TRIGGER_ATTRIBUTE,
            Value::BoolValue(true)
        )));
        assert!(is_trigger(&span_with(
            TRIGGER_ATTRIBUTE,
            Value::StringValue("TRUE".into())
        )));
        assert!(!is_trigger(&span_with(
            TRIGGER_ATTRIBUTE,
            Value::BoolValue(false)
        )));
        assert!(!is_trigger(&span_with(
            TRIGGER_ATTRIBUTE,
            Value::IntValue(1)
        )));
        assert!(!is_trigger(&span_with(
            "wbpf.triggered",
            Value::BoolValue(true)
        )));
        assert!(!is_trigger(&Span::default()));
    }
}
