//! End to end on the running kernel: the pool-object detector's uprobes on the target's pool
//! hooks, a real OTLP/gRPC sink. Needs root; a failure to load eBPF fails the test with the
//! reason.
//!
//! The target runs one object's life per process (`pool-objects <scenario>`) with the object
//! id `pid << 20 | 1`, so each trigger can be matched to the run that caused it.

mod common;

use std::time::Duration;

use common::{collect, from_pid, hex, int, string, target};
use opentelemetry_proto::tonic::trace::v1::Span;
use wbpf_config::{ContextConfig, DetectorConfig, PoolObjectsConfig, ProbeConfig};

const TRACE_ID: &str = "5b8efff798038103d269b633813fc60c";
const SPAN_ID: &str = "eee19b7ec3c1b174";
const LEAK_AGE: Duration = Duration::from_millis(300);

fn config(gateway: String) -> ProbeConfig {
    ProbeConfig {
        gateway: gateway.into(),
        context: Some(ContextConfig {
            binary: target(),
            symbol: "wbpf_trace_context".to_owned(),
        }),
        detectors: vec![DetectorConfig::PoolObjects(PoolObjectsConfig {
            name: Some("test-pool".to_owned()),
            binary: target(),
            alloc_symbol: "wbpf_pool_alloc".to_owned(),
            release_symbol: "wbpf_pool_release".to_owned(),
            access_symbol: "wbpf_pool_access".to_owned(),
            leak_age: Some(LEAK_AGE),
            leak_idle: false,
        })],
        admin: None,
        strict_privileges: false,
    }
}

/// Runs one scenario with the published context; returns the target's pid.
async fn run(trace_id: &str, scenario: &str) -> u32 {
    common::run_target(&["pool-objects", trace_id, SPAN_ID, scenario]).await
}

fn object_id(pid: u32) -> i64 {
    (i64::from(pid) << 20) | 1
}

/// Asserts the one trigger of run `pid`: its kind, object, and the published trace.
fn assert_trigger(spans: &[Span], pid: u32, event: &str) {
    let triggers = from_pid(spans, pid);
    assert_eq!(triggers.len(), 1, "one {event} trigger: {spans:?}");
    let span = triggers[0];
    println!("{event} trigger: {span:?}");
    assert_eq!(span.name, "wbpf.trigger pool_objects");
    assert_eq!(string(span, "wbpf.detector"), "pool_objects");
    assert_eq!(string(span, "wbpf.detector.name"), "test-pool");
    assert_eq!(string(span, "wbpf.pool.event"), event);
    assert_eq!(int(span, "wbpf.pool.object_id"), object_id(pid));
    assert_eq!(int(span, "thread.id"), i64::from(pid));
    assert!(int(span, "wbpf.pool.object_age_ns") > 0);
    assert_eq!(hex(&span.trace_id), TRACE_ID, "in the offending trace");
    assert_eq!(hex(&span.parent_span_id), SPAN_ID);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_accesses_and_double_releases_trigger_in_the_offending_trace() {
    let (_serial, gateway, mut spans) = common::start().await;
    let probe = common::start_probe(&config(gateway)).await;

    let clean = run(TRACE_ID, "clean").await;
    let stale = run(TRACE_ID, "stale").await;
    let double = run(TRACE_ID, "double").await;

    // Long enough for a leak scan to have looked at everything too.
    let all = collect(&mut spans, LEAK_AGE + Duration::from_millis(1500)).await;
    assert!(
        from_pid(&all, clean).is_empty(),
        "a clean life triggered: {all:?}"
    );
    assert_trigger(&all, stale, "stale_access");
    assert_trigger(&all, double, "double_release");
    let stale_span = from_pid(&all, stale)[0];
    assert_eq!(
        int(stale_span, "wbpf.pool.released_by_pid"),
        i64::from(stale)
    );
    assert!(int(stale_span, "wbpf.pool.released_ago_ns") >= 0);

    let stats = probe.shutdown().await.expect("clean shutdown");
    println!("final stats: {stats:?}");
    assert_eq!(stats.events_seen, 2);
    assert_eq!((stats.events_lost, stats.untracked), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untouched_object_is_reported_as_leaked_in_the_trace_that_allocated_it() {
    let (_serial, gateway, mut spans) = common::start().await;
    let probe = common::start_probe(&config(gateway)).await;

    let leaked = run(TRACE_ID, "leak").await;
    let released = run(TRACE_ID, "clean").await;
    let without_context = run("none", "leak").await;

    let all = collect(&mut spans, LEAK_AGE + Duration::from_millis(1500)).await;
    assert_trigger(&all, leaked, "leak");
    let span = from_pid(&all, leaked)[0];
    assert!(int(span, "wbpf.pool.object_age_ns") >= LEAK_AGE.as_nanos() as i64);
    assert_eq!(int(span, "wbpf.pool.accesses"), 0);
    assert_eq!(
        int(span, "wbpf.pool.leak_age_ns"),
        LEAK_AGE.as_nanos() as i64
    );
    assert!(
        from_pid(&all, released).is_empty(),
        "a released object leaked: {all:?}"
    );

    let orphan = from_pid(&all, without_context);
    assert_eq!(orphan.len(), 1, "{all:?}");
    assert_eq!(string(orphan[0], "wbpf.context"), "none");
    assert_eq!(string(orphan[0], "wbpf.pool.event"), "leak");

    // Reported once, however many scans see it.
    let later = collect(&mut spans, Duration::from_millis(800)).await;
    assert!(later.is_empty(), "leaks reported twice: {later:?}");
    probe.shutdown().await.expect("clean shutdown");
}
