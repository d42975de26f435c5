//! End to end on the running kernel: the pool-fault detector's page-fault tracepoint, the
//! `/proc/<pid>/maps` scan finding a pool file under /dev/shm, a real OTLP/gRPC sink. Needs
//! root and tracefs; a failure to load eBPF fails the test with the reason.
//!
//! The target maps a fresh file and writes one byte per page: each write is one page fault
//! (a shared file mapping has no fault-around for writes, and tmpfs huge pages are assumed
//! off, as they are by default).

mod common;

use std::time::Duration;

use common::{collect, from_pid, hex, int, string, target};
use wbpf_config::{ContextConfig, DetectorConfig, FaultBurstConfig, PoolFaultsConfig, ProbeConfig};

const TRACE_ID: &str = "a3ce929d0e0e47364bf92f3577b34da6";
const SPAN_ID: &str = "53995c3f42cd8ad8";
const PREFIX: &str = "/dev/shm/wbpf-pool-test-";
const RESCAN: Duration = Duration::from_millis(50);
/// How long the target waits between mapping and touching: several rescans.
const WAIT_MS: &str = "400";
const PAGE: i64 = 4096;

fn config(
    gateway: String,
    max_faults: Option<u64>,
    burst: Option<FaultBurstConfig>,
) -> ProbeConfig {
    ProbeConfig {
        gateway: gateway.into(),
        context: Some(ContextConfig {
            binary: target(),
            symbol: "wbpf_trace_context".to_owned(),
        }),
        detectors: vec![DetectorConfig::PoolFaults(PoolFaultsConfig {
            name: Some("test-faults".to_owned()),
            paths: vec![PREFIX.to_owned()],
            max_faults,
            burst,
            rescan: RESCAN,
        })],
        admin: None,
        strict_privileges: false,
    }
}

/// Touches `pages` fresh pages of a file at `path`; returns the target's pid.
async fn touch(trace_id: &str, path: &str, pages: u32) -> u32 {
    let pages = pages.to_string();
    common::run_target(&["pool-faults", trace_id, SPAN_ID, path, &pages, WAIT_MS]).await
}

fn pool_path(name: &str) -> String {
    format!("{PREFIX}{name}-{}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_storm_inside_one_request_triggers_in_its_trace() {
    let (_serial, gateway, mut spans) = common::start().await;
    let probe = common::start_probe(&config(gateway, Some(64), None)).await;

    let storm = touch(TRACE_ID, &pool_path("storm"), 512).await;
    let few = touch(TRACE_ID, &pool_path("few"), 16).await;
    let elsewhere = format!("/dev/shm/wbpf-not-a-pool-{}", std::process::id());
    let not_pool = touch(TRACE_ID, &elsewhere, 512).await;

    let all = collect(&mut spans, Duration::from_millis(1500)).await;
    let storms = from_pid(&all, storm);
    assert_eq!(storms.len(), 1, "one storm trigger per request: {all:?}");
    let span = storms[0];
    println!("storm trigger: {span:?}");
    assert_eq!(span.name, "wbpf.trigger pool_faults");
    assert_eq!(string(span, "wbpf.detector"), "pool_faults");
    assert_eq!(string(span, "wbpf.detector.name"), "test-faults");
    assert_eq!(string(span, "wbpf.pool.event"), "fault_storm");
    assert_eq!(string(span, "wbpf.pool.fault.scope"), "request");
    assert_eq!(int(span, "wbpf.pool.fault.count"), 65);
    assert_eq!(int(span, "wbpf.pool.fault.limit"), 64);
    // The 65th page written is the 65th fault.
    assert_eq!(int(span, "wbpf.pool.offset"), 64 * PAGE);
    assert!(int(span, "wbpf.pool.fault.address") > 0);
    assert_eq!(
        hex(&span.trace_id),
        TRACE_ID,
        "in the faulting request's trace"
    );
    assert_eq!(hex(&span.parent_span_id), SPAN_ID);
    assert!(
        from_pid(&all, few).is_empty(),
        "16 faults triggered: {all:?}"
    );
    assert!(
        from_pid(&all, not_pool).is_empty(),
        "a non-pool file triggered: {all:?}"
    );

    let stats = probe.shutdown().await.expect("clean shutdown");
    println!("final stats: {stats:?}");
    assert_eq!(stats.events_lost, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_pool_faults_in_one_process_triggers_without_a_request() {
    let (_serial, gateway, mut spans) = common::start().await;
    let burst = FaultBurstConfig {
        window: Duration::from_secs(1),
        max_faults: 100,
    };
    let probe = common::start_probe(&config(gateway, None, Some(burst))).await;

    let bursty = touch("none", &pool_path("burst"), 512).await;
    let calm = touch("none", &pool_path("calm"), 50).await;

    let all = collect(&mut spans, Duration::from_millis(1500)).await;
    let bursts = from_pid(&all, bursty);
    assert_eq!(bursts.len(), 1, "one burst trigger per window: {all:?}");
    let span = bursts[0];
    println!("burst trigger: {span:?}");
    assert_eq!(string(span, "wbpf.pool.event"), "fault_burst");
    assert_eq!(string(span, "wbpf.pool.fault.scope"), "process");
    assert_eq!(int(span, "wbpf.pool.fault.count"), 101);
    assert_eq!(int(span, "wbpf.pool.fault.window_ns"), 1_000_000_000);
    assert_eq!(string(span, "wbpf.context"), "none");
    assert!(
        from_pid(&all, calm).is_empty(),
        "50 faults triggered: {all:?}"
    );

    probe.shutdown().await.expect("clean shutdown");
}
