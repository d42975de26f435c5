//! Reading attributes the way the Collector does, and its any-match / all-match loops.
//!
//! The Collector reads an attribute with pdata's typed getters, which return the zero value for
//! another type: an integer policy sees a string attribute as `0`, a boolean policy sees it as
//! `false`, a string policy sees an integer as `""`. These helpers copy that, so a policy copied
//! from a Collector config picks the same traces even on oddly typed attributes.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;

use super::Decision;
use crate::tail::SpanFacts;
use crate::TraceData;

/// The first attribute named `key`, as pdata's `Map.Get` finds it.
pub fn get<'a>(attributes: &'a [KeyValue], key: &str) -> Option<Option<&'a Value>> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| kv.value.as_ref().and_then(|v| v.value.as_ref()))
}

/// The value as pdata's `Int()` reads it: the integer, or 0 for any other type.
pub fn as_int(value: Option<&Value>) -> i64 {
    match value {
        Some(Value::IntValue(v)) => *v,
        _ => 0,
    }
}

/// The value as pdata's `Str()` reads it: the string, or `""` for any other type.
pub fn as_str(value: Option<&Value>) -> &str {
    match value {
        Some(Value::StringValue(v)) => v,
        _ => "",
    }
}

/// The value as pdata's `Bool()` reads it: the boolean, or `false` for any other type.
pub fn as_bool(value: Option<&Value>) -> bool {
    matches!(value, Some(Value::BoolValue(true)))
}

/// `Sampled` if any resource or any span satisfies its check, else `NotSampled`.
pub fn any_resource_or_span(
    trace: &TraceData,
    resource: impl Fn(&[KeyValue]) -> bool,
    span: impl Fn(&SpanFacts) -> bool,
) -> Decision {
    let hit = trace
        .batches
        .iter()
        .any(|batch| resource(&batch.resource_attributes) || batch.spans.iter().any(&span));
    if hit {
        Decision::Sampled
    } else {
        Decision::NotSampled
    }
}

/// The inverted flow: `Sampled` if every resource and every span satisfies its check (which,
/// for an inverted policy, means none matched), else `NotSampled`.
///
/// Plain verdicts, as the Collector has given since v0.152 retired `InvertSampled` and
/// `InvertNotSampled`: an inverted policy that finds an excluded value does not veto the other
/// policies, and `not` flips its verdict.
pub fn all_resources_and_spans(
    trace: &TraceData,
    resource: impl Fn(&[KeyValue]) -> bool,
    span: impl Fn(&SpanFacts) -> bool,
) -> Decision {
    let all = trace
        .batches
        .iter()
        .all(|batch| resource(&batch.resource_attributes) && batch.spans.iter().all(&span));
    if all {
        Decision::Sampled
    } else {
        Decision::NotSampled
    }
}

/// `Sampled` if any span satisfies `check`, else `NotSampled`.
pub fn any_span(trace: &TraceData, mut check: impl FnMut(&SpanFacts) -> bool) -> Decision {
    if trace.spans().any(|(_, span)| check(span)) {
        Decision::Sampled
    } else {
        Decision::NotSampled
    }
}
