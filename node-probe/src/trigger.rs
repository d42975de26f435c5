//! Turns a kernel event into a trigger span the gateway recognises.
//!
//! With a trace context the span joins the affected trace as a child of the span the thread was
//! serving, so the gateway can release that trace. Without one it starts a fresh trace marked
//! `wbpf.context = "none"`; `process.pid`, `thread.id` and `wbpf.event_time_unix_nano` let the
//! gateway match it to the buffered spans of that process covering that time. The attribute
//! keys are a contract with the gateway's trigger matching: change them together.

use std::time::{Duration, UNIX_EPOCH};

use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, TraceContextExt as _, TraceFlags, TraceId,
    TraceState, Tracer as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracer;

use crate::clock::KtimeClock;
use crate::detector::{
    Detector, FUNCTION_LATENCY, MEMORY_PRESSURE, POOL_FAULTS, POOL_OBJECTS, SYSCALL_LATENCY,
};
use crate::events::{Event, TraceContext};
use crate::evidence::{self, saturating_i64};

/// Span name of function-latency triggers; the others are `wbpf.trigger <detector type>`.
pub const SPAN_NAME: &str = "wbpf.trigger function_latency";

/// Starts and ends the trigger span for one event. A symptom with a duration spans it; a
/// counted or instantaneous one is a point in time.
pub fn emit(tracer: &SdkTracer, clock: KtimeClock, detector: &Detector, event: &Event) {
    let end = clock.to_system_time(event.ktime_ns);
    let lasted = if event.kind.has_duration() {
        event.duration_ns.min(event.ktime_ns)
    } else {
        0
    };
    let start = end - Duration::from_nanos(lasted);

    let mut span = tracer
        .span_builder(span_name(detector))
        .with_kind(SpanKind::Internal)
        .with_start_time(start)
        .with_attributes(attributes(clock, detector, event))
        .start_with_context(tracer, &parent(event.trace));
    span.end_with_timestamp(end);
}

fn span_name(detector: &Detector) -> &'static str {
    match detector.type_name() {
        FUNCTION_LATENCY => SPAN_NAME,
        SYSCALL_LATENCY => "wbpf.trigger syscall_latency",
        MEMORY_PRESSURE => "wbpf.trigger memory_pressure",
        POOL_OBJECTS => "wbpf.trigger pool_objects",
        POOL_FAULTS => "wbpf.trigger pool_faults",
        _ => "wbpf.trigger",
    }
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

pub fn attributes(clock: KtimeClock, detector: &Detector, event: &Event) -> Vec<KeyValue> {
    let event_time = clock
        .to_system_time(event.ktime_ns)
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    let mut attributes = vec![
        KeyValue::new("wbpf.trigger", true),
        KeyValue::new("wbpf.detector", detector.type_name()),
        KeyValue::new("wbpf.detector.name", detector.name.clone()),
        KeyValue::new("process.pid", i64::from(event.pid)),
        KeyValue::new("thread.id", i64::from(event.tid)),
        KeyValue::new("process.command", event.comm.clone()),
        KeyValue::new(
            "wbpf.event_time_unix_nano",
            saturating_i64(u64::try_from(event_time).unwrap_or(u64::MAX)),
        ),
    ];
    attributes.extend(evidence::attributes(detector, event));
    if event.trace.is_none() {
        attributes.push(KeyValue::new("wbpf.context", "none"));
    }
    attributes
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use opentelemetry::Value;
    use wbpf_config::LatencyThreshold;

    use super::*;
    use crate::detector::Spec;
    use crate::events::Kind;
    use crate::function_latency::FunctionLatency;
    use crate::memory_pressure::MemoryPressure;

    fn detector() -> Detector {
        Detector {
            index: 0,
            name: "checkout".to_owned(),
            spec: Spec::FunctionLatency(FunctionLatency {
                binary: PathBuf::from("/srv/shop"),
                symbol: "charge_card".to_owned(),
                threshold: LatencyThreshold::Fixed(Duration::from_millis(20)),
                pid: None,
            }),
        }
    }

    fn event(kind: Kind, trace: Option<TraceContext>) -> Event {
        Event {
            kind,
            ktime_ns: 1_000_000_000,
            duration_ns: 60_000_000,
            threshold_ns: 20_000_000,
            trace,
            pid: 4242,
            tid: 4243,
            detector: 0,
            comm: "shop".to_owned(),
            evidence: [0; 4],
        }
    }

    fn clock() -> KtimeClock {
        KtimeClock::with_offset(1_700_000_000_000_000_000)
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
        let event = event(Kind::FunctionLatency, Some(trace));
        let attributes = attributes(clock(), &detector(), &event);

        let expected = [
            ("wbpf.trigger", Value::Bool(true)),
            ("wbpf.detector", Value::from("function_latency")),
            ("wbpf.detector.name", Value::from("checkout")),
            ("process.pid", Value::I64(4242)),
            ("thread.id", Value::I64(4243)),
            ("process.command", Value::from("shop")),
            (
                "wbpf.event_time_unix_nano",
                Value::I64(1_700_000_001_000_000_000),
            ),
            ("code.function.name", Value::from("charge_card")),
            ("wbpf.binary", Value::from("/srv/shop")),
            ("wbpf.duration_ns", Value::I64(60_000_000)),
            ("wbpf.threshold_ns", Value::I64(20_000_000)),
        ];
        for (key, expected) in expected {
            assert_eq!(value(&attributes, key), Some(&expected), "{key}");
        }
        assert_eq!(value(&attributes, "wbpf.context"), None);
        assert_eq!(value(&attributes, "wbpf.percentile"), None);
    }

    #[test]
    fn memory_events_carry_their_evidence_and_no_duration_when_counted() {
        let detector = Detector {
            index: 0,
            name: "memory_pressure".to_owned(),
            spec: Spec::MemoryPressure(MemoryPressure {
                reclaim_stall: Duration::from_millis(1),
                migration: None,
                oom_kill: true,
            }),
        };
        let mut storm = event(Kind::MigrationStorm, None);
        storm.evidence = [0, 5000, 12, 0];
        let attributes = attributes(clock(), &detector, &storm);

        assert_eq!(
            value(&attributes, "wbpf.detector"),
            Some(&Value::from("memory_pressure"))
        );
        assert_eq!(
            value(&attributes, "wbpf.memory.event"),
            Some(&Value::from("migration_storm"))
        );
        assert_eq!(
            value(&attributes, "wbpf.migrate.reason"),
            Some(&Value::from("compaction"))
        );
        assert_eq!(
            value(&attributes, "wbpf.migrate.pages"),
            Some(&Value::I64(5000))
        );
        assert_eq!(
            value(&attributes, "wbpf.migrate.failed"),
            Some(&Value::I64(12))
        );
        assert_eq!(value(&attributes, "wbpf.duration_ns"), None);
        assert_eq!(
            value(&attributes, "wbpf.context"),
            Some(&Value::from("none"))
        );
    }

    #[test]
    fn an_event_without_context_is_marked_and_has_no_parent() {
        let attributes = attributes(clock(), &detector(), &event(Kind::FunctionLatency, None));
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
