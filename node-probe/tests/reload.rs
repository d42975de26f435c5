//! End to end on the running kernel: detectors added, removed and retuned while the probe
//! runs, with a real OTLP/gRPC sink. Needs root; a failure to load eBPF fails the test with
//! the reason.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{collect, string};
use opentelemetry_proto::tonic::trace::v1::Span;
use wbpf_config::{
    DetectorConfig, FunctionLatencyConfig, LatencyThreshold, ProbeConfig, SyscallHook,
    SyscallLatencyConfig,
};
use wbpf_probe::{Change, Probe, ReloadReport};

const SYSCALLS: &str = "reload-syscalls";
const FUNCTION: &str = "reload-function";
const COMM: &str = "wbpf-rl-test";

fn config(gateway: &str, function_threshold: Option<Duration>) -> ProbeConfig {
    let mut detectors = vec![DetectorConfig::SyscallLatency(SyscallLatencyConfig {
        name: Some(SYSCALLS.to_owned()),
        threshold: Duration::from_millis(20),
        pids: vec![],
        comms: vec![COMM.to_owned()],
        cgroups: Vec::new(),
        hook: SyscallHook::Auto,
    })];
    if let Some(threshold) = function_threshold {
        detectors.push(DetectorConfig::FunctionLatency(FunctionLatencyConfig {
            name: Some(FUNCTION.to_owned()),
            binary: common::target(),
            symbol: "wbpf_test_work".to_owned(),
            threshold: LatencyThreshold::Fixed(threshold),
            pid: None,
        }));
    }
    ProbeConfig {
        gateway: gateway.into(),
        context: None,
        detectors,
        admin: None,
        strict_privileges: false,
    }
}

async fn reload(probe: &mut Probe, config: &ProbeConfig) -> ReloadReport {
    match probe.reload(config).await {
        Ok(report) => {
            println!(
                "reload: {:?}; loads {:?}; unloads {:?}",
                report.changes, report.loads, report.unloads
            );
            assert!(report.failures.is_empty(), "{:?}", report.failures);
            report
        }
        Err(error) => panic!("reload failed: {}", common::error_chain(&error)),
    }
}

/// One call of `wbpf_test_work` sleeping `ms` in a process the syscall detector ignores.
async fn slow_call(ms: u64) {
    common::run_target(&["none", "0", &ms.to_string()]).await;
}

fn of(spans: &[Span], detector: &str) -> usize {
    spans
        .iter()
        .filter(|span| string(span, "wbpf.detector.name") == detector)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_and_re_adding_a_detector_loses_none_of_another_detectors_events() {
    let (_serial, gateway, mut spans) = common::start().await;
    let with_function = config(&gateway, Some(Duration::from_millis(20)));
    let without_function = config(&gateway, None);
    let mut probe = common::start_probe(&with_function).await;

    // A steady stream of syscall triggers: one 40 ms nanosleep per run, runs back to back.
    let stop = Arc::new(AtomicBool::new(false));
    let workload = tokio::spawn({
        let stop = Arc::clone(&stop);
        async move {
            let mut runs = 0u64;
            while !stop.load(Ordering::Relaxed) {
                common::run_target(&["syscalls", COMM, "40"]).await;
                runs += 1;
            }
            runs
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    slow_call(60).await;

    for _ in 0..2 {
        let removed = reload(&mut probe, &without_function).await;
        assert_eq!(removed.named(Change::Removed), [FUNCTION]);
        assert_eq!(removed.named(Change::Kept), [SYSCALLS]);
        assert_eq!(removed.loads.len(), 0);
        assert_eq!(removed.unloads.len(), 1);
        slow_call(60).await;
        tokio::time::sleep(Duration::from_millis(200)).await;

        let added = reload(&mut probe, &with_function).await;
        assert_eq!(added.named(Change::Added), [FUNCTION]);
        assert_eq!(added.named(Change::Kept), [SYSCALLS]);
        assert_eq!((added.loads.len(), added.unloads.len()), (1, 0));
        slow_call(60).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let runs = workload.await.expect("workload task");
    let stats = probe.shutdown().await.expect("clean shutdown");
    let all = collect(&mut spans, Duration::from_millis(1500)).await;
    println!("workload runs: {runs}; final stats: {stats:?}");

    assert!(runs >= 10, "the workload ran throughout: {runs} runs");
    assert_eq!(
        of(&all, SYSCALLS) as u64,
        runs,
        "every slow syscall triggered once"
    );
    // Slow calls before removal and after each re-add trigger; the ones while removed do not.
    assert_eq!(of(&all, FUNCTION), 3);
    assert_eq!(stats.events_lost, 0);
    assert_eq!((stats.object_loads, stats.object_unloads), (4, 4));
    assert!(stats.load_ns_max > 0 && stats.unload_ns_max > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retuning_a_fixed_threshold_rewrites_it_without_reloading() {
    let (_serial, gateway, mut spans) = common::start().await;
    let mut probe = common::start_probe(&config(&gateway, Some(Duration::from_millis(20)))).await;

    slow_call(60).await;
    let retuned = reload(
        &mut probe,
        &config(&gateway, Some(Duration::from_millis(200))),
    )
    .await;
    assert_eq!(retuned.named(Change::Retuned), [FUNCTION]);
    assert_eq!(retuned.named(Change::Kept), [SYSCALLS]);
    assert_eq!((retuned.loads.len(), retuned.unloads.len()), (0, 0));
    slow_call(60).await;

    let stats = probe.shutdown().await.expect("clean shutdown");
    let all = collect(&mut spans, Duration::from_millis(1500)).await;
    assert_eq!(
        of(&all, FUNCTION),
        1,
        "60 ms is below the new 200 ms threshold"
    );
    assert_eq!(stats.object_loads, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_configuration_changes_nothing() {
    let (_serial, gateway, _spans) = common::start().await;
    let mut probe = common::start_probe(&config(&gateway, None)).await;

    let mut invalid = config(&gateway, None);
    invalid.detectors.clear();
    assert!(probe.reload(&invalid).await.is_err());

    let stats = probe.shutdown().await.expect("clean shutdown");
    assert_eq!((stats.object_loads, stats.object_unloads), (1, 1));
}
