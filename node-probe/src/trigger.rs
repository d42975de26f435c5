//! Turns a kernel event into a trigger span the gateway recognises.
//!
//! With a trace context the span joins the affected trace as a child of the span the thread was
//! serving, so the gateway can release that trace. Without one it starts a fresh trace marked
//! `wbpf.context = "none"` for the gateway to correlate later. The attribute keys are a contract
//! with the gateway's trigger matching: change them together.

use std::time::Duration;

use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, TraceContextExt as _, TraceFlags, TraceId,
    TraceState, Tracer as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracer;

use crate::clock::KtimeClock;
use crate::detector::{Detector, FUNCTION_LATENCY};
use crate::events::{LatencyEvent, TraceContext};

pub const SPAN_NAME: &str = "wbpf.trigger function_latency";

/// Starts and ends the trigger span for one event.
pub fn emit(tracer: &SdkTracer, clock: KtimeClock, detector: &Detector, event: &LatencyEvent) {
    let end = clock.to_system_time(event.ktime_ns);
    let start = end - Duration::from_nanos(event.duration_ns.min(event.ktime_ns));

    let mut span = tracer
        .span_builder(SPAN_NAME)
        .with_kind(SpanKind::Internal)
        .with_start_time(start)
        .with_attributes(attributes(detector, event))
        .start_with_context(tracer, &parent(event.trace));
    span.end_with_timestamp(end);
}

/// The parent context: the thread's span as a sampled remote parent, or none (a new trace).
pub fn parent(trace: Option<TraceContext>) -> Context {
    match trace {
        Some(trace) => Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from_bytes(trace.trace_id),
            SpanId::from_bytes(trace.span_id),
            // The trigger must be kept whatever the workload's own sampling decided.
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        )),
        None => Context::new(),
    }
}

pub fn attributes(detector: &Detector, event: &LatencyEvent) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new("wbpf.trigger", true),
        KeyValue::new("wbpf.detector", FUNCTION_LATENCY),
        KeyValue::new("wbpf.detector.name", detector.name.clone()),
        KeyValue::new("process.pid", i64::from(event.pid)),
        KeyValue::new("thread.id", i64::from(event.tid)),
        KeyValue::new("process.command", event.comm.clone()),
        KeyValue::new("code.function.name", detector.symbol.clone()),
        KeyValue::new("wbpf.binary", detector.binary.display().to_string()),
        KeyValue::new("wbpf.duration_ns", saturating_i64(event.duration_ns)),
        KeyValue::new("wbpf.threshold_ns", saturating_i64(event.threshold_ns)),
    ];
    if event.trace.is_none() {
        attributes.push(KeyValue::new("wbpf.context", "none"));
    }
    attributes
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use opentelemetry::Value;

    use super::*;

    fn detector() -> Detector {
        Detector {
            index: 0,
            name: "checkout".to_owned(),
            binary: PathBuf::from("/srv/shop"),
            symbol: "charge_card".to_owned(),
            threshold: Duration::from_millis(20),
            pid: None,
        }
    }

    fn event(trace: Option<TraceContext>) -> LatencyEvent {
        LatencyEvent {
            ktime_ns: 1_000_000_000,
            duration_ns: 60_000_000,
            threshold_ns: 20_000_000,
            trace,
            pid: 4242,
            tid: 4243,
            detector: 0,
            comm: "shop".to_owned(),
        }
    }

    fn value<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
        attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    }

    #[test]
    fn attributes_carry_the_gateway_contract_keys_and_types() {
        let trace = TraceContext {
            trace_id: [7; 16],
            span_id: [9; 8],
        };
        let attributes = attributes(&detector(), &event(Some(trace)));

        assert_eq!(value(&attributes, "wbpf.trigger"), Some(&Value::Bool(true)));
        assert_eq!(
            value(&attributes, "wbpf.detector"),
            Some(&Value::from("function_latency"))
        );
        assert_eq!(
            value(&attributes, "wbpf.detector.name"),
            Some(&Value::from("checkout"))
        );
        assert_eq!(value(&attributes, "process.pid"), Some(&Value::I64(4242)));
        assert_eq!(value(&attributes, "thread.id"), Some(&Value::I64(4243)));
        assert_eq!(
            value(&attributes, "process.command"),
            Some(&Value::from("shop"))
        );
        assert_eq!(
            value(&attributes, "code.function.name"),
            Some(&Value::from("charge_card"))
        );
        assert_eq!(
            value(&attributes, "wbpf.binary"),
            Some(&Value::from("/srv/shop"))
        );
        assert_eq!(
            value(&attributes, "wbpf.duration_ns"),
            Some(&Value::I64(60_000_000))
        );
        assert_eq!(
            value(&attributes, "wbpf.threshold_ns"),
            Some(&Value::I64(20_000_000))
        );
        assert_eq!(value(&attributes, "wbpf.context"), None);
    }

    #[test]
    fn an_event_without_context_is_marked_and_has_no_parent() {
        let attributes = attributes(&detector(), &event(None));
        assert_eq!(
            value(&attributes, "wbpf.context"),
            Some(&Value::from("none"))
        );
        assert!(!parent(None).has_active_span());
    }

    #[test]
    fn the_parent_is_the_published_span_as_a_sampled_remote_context() {
        let trace = TraceContext {
            trace_id: [7; 16],
            span_id: [9; 8],
        };
        let context = parent(Some(trace));
        let span = context.span();
        let parent = span.span_context();

        assert_eq!(parent.trace_id(), TraceId::from_bytes([7; 16]));
        assert_eq!(parent.span_id(), SpanId::from_bytes([9; 8]));
        assert!(parent.is_remote());
        assert!(parent.is_sampled());
    }
}
