//! End to end on the running kernel: real eBPF programs, a real target process, a real
//! OTLP/gRPC sink. Needs root; a failure to load eBPF fails the test with the reason.

mod common;

use std::time::Duration;

use common::{attribute, error_chain, hex, int, next_span, string, target};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use wbpf_config::{
    ContextConfig, DetectorConfig, FunctionLatencyConfig, LatencyThreshold, ProbeConfig,
    SyscallHook, SyscallLatencyConfig,
};
use wbpf_probe::Probe;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN_ID: &str = "00f067aa0ba902b7";
const THRESHOLD: Duration = Duration::from_millis(20);

/// Runs the target to completion; returns its pid.
async fn run_target(trace_id: &str, sleep_ms: u64) -> u32 {
    common::run_target(&[trace_id, SPAN_ID, &sleep_ms.to_string()]).await
}

fn latency(name: Option<&str>, symbol: &str) -> DetectorConfig {
    DetectorConfig::FunctionLatency(FunctionLatencyConfig {
        name: name.map(str::to_owned),
        binary: target(),
        symbol: symbol.to_owned(),
        threshold: LatencyThreshold::Fixed(THRESHOLD),
        pid: None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_calls_trigger_spans_in_the_published_trace_and_fast_calls_do_not() {
    let (_serial, gateway, mut spans) = common::start().await;
    let config = ProbeConfig {
        gateway: gateway.into(),
        context: Some(ContextConfig {
            binary: target(),
            symbol: "wbpf_trace_context".to_owned(),
        }),
        detectors: vec![latency(Some("test-work"), "wbpf_test_work")],
        admin: None,
        strict_privileges: false,
    };
    let probe = common::start_probe(&config).await;

    // A slow call inside a published trace: one trigger, a child of the published span.
    let pid = run_target(TRACE_ID, 60).await;
    let span = next_span(&mut spans).await;
    println!("trigger span: {span:?}");
    assert_eq!(span.name, "wbpf.trigger function_latency");
    assert_eq!(hex(&span.trace_id), TRACE_ID);
    assert_eq!(hex(&span.parent_span_id), SPAN_ID);
    assert!(matches!(
        attribute(&span, "wbpf.trigger"),
        Some(Value::BoolValue(true))
    ));
    assert_eq!(string(&span, "wbpf.detector"), "function_latency");
    assert_eq!(string(&span, "wbpf.detector.name"), "test-work");
    assert_eq!(string(&span, "code.function.name"), "wbpf_test_work");
    assert_eq!(int(&span, "process.pid"), i64::from(pid));
    assert_eq!(
        int(&span, "thread.id"),
        i64::from(pid),
        "the target works on its main thread"
    );
    assert!(int(&span, "wbpf.duration_ns") >= 60_000_000);
    assert_eq!(int(&span, "wbpf.threshold_ns"), THRESHOLD.as_nanos() as i64);
    assert!(attribute(&span, "wbpf.context").is_none());
    let span_ns = span.end_time_unix_nano - span.start_time_unix_nano;
    assert_eq!(span_ns as i64, int(&span, "wbpf.duration_ns"));

    // A fast call: nothing within a bounded wait (several batch delays).
    run_target(TRACE_ID, 1).await;
    let quiet = tokio::time::timeout(Duration::from_millis(1500), spans.recv()).await;
    assert!(quiet.is_err(), "a 1 ms call must not trigger: {quiet:?}");

    // A slow call with no published context: a trigger in a fresh trace, marked as such.
    let pid = run_target("none", 60).await;
    let span = next_span(&mut spans).await;
    assert_ne!(hex(&span.trace_id), TRACE_ID);
    assert!(
        span.parent_span_id.is_empty(),
        "a fresh trace starts at the trigger"
    );
    assert_eq!(string(&span, "wbpf.context"), "none");
    assert_eq!(int(&span, "process.pid"), i64::from(pid));

    let stats = probe.shutdown().await.expect("clean shutdown");
    println!("final stats: {stats:?}");
    assert_eq!(stats.events_seen, 2);
    assert_eq!(stats.triggers_sent, 2);
    assert_eq!(stats.triggers_without_context, 1);
    assert_eq!(stats.events_lost, 0);
    assert_eq!(stats.triggers_failed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_symbol_fails_start_naming_the_symbol_and_the_binary() {
    let config = ProbeConfig {
        gateway: "http://127.0.0.1:9".into(),
        context: None,
        detectors: vec![latency(None, "wbpf_no_such_symbol")],
        admin: None,
        strict_privileges: false,
    };

    let error = match Probe::start(&config).await {
        Ok(probe) => panic!("attached to a missing symbol: {:?}", probe.stats()),
        Err(error) => error,
    };
    let message = error.to_string();
    println!("start failed as expected: {}", error_chain(&error));
    assert!(message.contains("wbpf_no_such_symbol"), "{message}");
    assert!(
        message.contains(&target().display().to_string()),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detector_that_cannot_attach_is_reported_and_the_others_still_run() {
    let (_serial, gateway, mut spans) = common::start().await;
    let config = ProbeConfig {
        gateway: gateway.into(),
        context: None,
        detectors: vec![
            latency(Some("missing"), "wbpf_no_such_symbol"),
            latency(Some("present"), "wbpf_test_work"),
            DetectorConfig::SyscallLatency(SyscallLatencyConfig {
                name: Some("idle".to_owned()),
                threshold: Duration::from_secs(3600),
                pids: vec![],
                comms: vec!["wbpf-no-such".to_owned()],
                cgroups: Vec::new(),
                hook: SyscallHook::Auto,
            }),
        ],
        admin: None,
        strict_privileges: false,
    };

    let probe = match Probe::start(&config).await {
        Ok(probe) => probe,
        Err(error) => panic!("nothing started: {}", error_chain(&error)),
    };
    let failures: Vec<String> = probe.failures().iter().map(ToString::to_string).collect();
    println!("reported failures: {failures:?}");
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].starts_with("missing (function_latency): "),
        "{failures:?}"
    );
    assert!(failures[0].contains("wbpf_no_such_symbol"), "{failures:?}");

    let pid = run_target("none", 60).await;
    let span = next_span(&mut spans).await;
    assert_eq!(string(&span, "wbpf.detector.name"), "present");
    assert_eq!(int(&span, "process.pid"), i64::from(pid));
    assert!(int(&span, "wbpf.event_time_unix_nano") > 0);
    probe.shutdown().await.expect("clean shutdown");
}
