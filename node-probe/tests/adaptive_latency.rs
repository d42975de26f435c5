//! End to end on the running kernel: a function-latency detector with a percentile instead of
//! a fixed threshold converges on a workload whose latency distribution is known. Needs root;
//! a failure to load eBPF fails the test with the reason.

mod common;

use std::time::Duration;

use common::{collect, from_pid, int, string, target};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use wbpf_config::{DetectorConfig, FunctionLatencyConfig, LatencyThreshold, ProbeConfig};

const PERCENTILE: f64 = 99.0;
const MIN_SAMPLES: u64 = 1000;
const CALLS: u64 = 5000;

async fn latency_mix(calls: u64, seed: u64) -> u32 {
    common::run_target(&["latency-mix", &calls.to_string(), &seed.to_string()]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flagged_fraction_converges_to_one_minus_the_percentile() {
    let (_serial, gateway, mut spans) = common::start().await;
    let config = ProbeConfig {
        gateway: gateway.into(),
        context: None,
        detectors: vec![DetectorConfig::FunctionLatency(FunctionLatencyConfig {
            name: Some("adaptive".to_owned()),
            binary: target(),
            symbol: "wbpf_test_work".to_owned(),
            threshold: LatencyThreshold::Percentile {
                percentile: PERCENTILE,
                min_samples: MIN_SAMPLES,
            },
            pid: None,
        })],
        admin: None,
        strict_privileges: false,
    };
    let probe = common::start_probe(&config).await;

    // Fewer calls than min_samples: the threshold is not armed, nothing triggers.
    latency_mix(MIN_SAMPLES / 2, 1).await;
    let early = collect(&mut spans, Duration::from_millis(2500)).await;
    assert!(
        early.is_empty(),
        "triggered before min_samples: {}",
        early.len()
    );

    // Warm up past min_samples and let the threshold be recomputed.
    latency_mix(2 * MIN_SAMPLES, 2).await;
    let warmup = collect(&mut spans, Duration::from_millis(2500)).await;
    println!("spans during warm-up: {}", warmup.len());

    // 2 % of calls sleep 2-10 ms: p99 lies in the middle of the slow calls, so about 1 %
    // of all calls should be flagged.
    let pid = latency_mix(CALLS, 3).await;
    let measured = collect(&mut spans, Duration::from_millis(2500)).await;
    let flagged = from_pid(&measured, pid);
    let fraction = flagged.len() as f64 / CALLS as f64;
    let thresholds: Vec<i64> = flagged
        .iter()
        .map(|span| int(span, "wbpf.threshold_ns"))
        .collect();
    println!(
        "flagged {} of {CALLS} calls ({:.2} %), thresholds {:?}..{:?} ns",
        flagged.len(),
        fraction * 100.0,
        thresholds.iter().min(),
        thresholds.iter().max()
    );
    let expected = 1.0 - PERCENTILE / 100.0;
    assert!(
        fraction > expected * 0.4 && fraction < expected * 2.0,
        "flagged fraction {fraction} is not close to {expected}"
    );
    for span in &flagged {
        assert_eq!(string(span, "wbpf.detector.name"), "adaptive");
        assert!(matches!(
            common::attribute(span, "wbpf.percentile"),
            Some(Value::DoubleValue(p)) if *p == PERCENTILE
        ));
        assert!(int(span, "wbpf.duration_ns") > int(span, "wbpf.threshold_ns"));
        // The threshold sits among the slow calls (2-10 ms), not among the fast ones.
        let threshold = int(span, "wbpf.threshold_ns");
        assert!((1_500_000..12_000_000).contains(&threshold), "{threshold}");
    }

    let stats = probe.shutdown().await.expect("clean shutdown");
    println!("final stats: {stats:?}");
    assert_eq!(stats.events_lost, 0);
}
