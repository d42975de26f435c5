//! Head and tail modes of the gateway over real OTLP/gRPC and a real RocksDB directory.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::{status, Span, Status};
use wbpf_gateway::Gateway;
use wbpf_tests::{exported_by_trace, gateway_config as config, metric, scrape, test_span};

fn span(trace: [u8; 16], id: u8, error: bool, trace_state: &str) -> Span {
    let code = if error {
        status::StatusCode::Error
    } else {
        status::StatusCode::Ok
    };
    Span {
        trace_state: trace_state.to_owned(),
        status: Some(Status {
            code: code as i32,
            ..Default::default()
        }),
        ..test_span(trace, id)
    }
}

async fn send(gateway: &Gateway, spans: Vec<Span>) {
    wbpf_tests::send_spans(gateway.grpc_addr(), spans).await;
}

/// Exported spans per hex trace id, with their tracestate.
fn exported(dir: &Path) -> HashMap<String, Vec<String>> {
    exported_by_trace(&dir.join("out.jsonl"))
        .into_iter()
        .map(|(trace, spans)| (trace, spans.into_iter().map(|s| s.trace_state).collect()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_mode_keeps_what_the_policies_sample_and_late_spans_follow() {
    let dir = tempfile::tempdir().unwrap();
    let sampling = "sampling:\n  mode: tail\n  sweep_interval: 100ms\n  tail_sampling:\n    \
                    decision_wait: 1s\n    policies:\n      - name: errors\n        \
                    type: status_code\n        status_code:\n          status_codes: [ERROR]\n";
    let gateway = Gateway::start(&config(dir.path(), sampling)).await.unwrap();

    let failed = [0x11; 16];
    let fine = [0x22; 16];
    send(
        &gateway,
        vec![span(failed, 1, false, ""), span(fine, 2, false, "")],
    )
    .await;
    send(
        &gateway,
        vec![span(failed, 3, true, ""), span(fine, 4, false, "")],
    )
    .await;

    let failed_hex = hex::encode(failed);
    let mut released = false;
    for _ in 0..100 {
        if exported(dir.path()).get(&failed_hex).map_or(0, Vec::len) == 2 {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(released, "the trace with an ERROR span was not released");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!exported(dir.path()).contains_key(&hex::encode(fine)));

    // Late spans follow the decision made for their trace.
    send(
        &gateway,
        vec![span(failed, 5, false, ""), span(fine, 6, true, "")],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(exported(dir.path())[&failed_hex].len(), 3);
    assert!(!exported(dir.path()).contains_key(&hex::encode(fine)));

    let admin = gateway.admin_addr().unwrap();
    let metrics = scrape(admin).await;
    let series = r#"wbpf_gateway_policy_decisions_total{policy="errors",decision="sampled"}"#;
    assert_eq!(metric(&metrics, series), Some(1.0), "{metrics}");
    let series = r#"wbpf_gateway_tail_decisions_total{decision="not_sampled"}"#;
    assert_eq!(metric(&metrics, series), Some(1.0), "{metrics}");
    let series = r#"wbpf_gateway_policy_evaluation_seconds_count{policy="errors"}"#;
    assert_eq!(metric(&metrics, series), Some(2.0), "{metrics}");

    let stats = gateway.shutdown().await.unwrap();
    assert_eq!(stats.traces_released, 1);
    assert_eq!(stats.traces_sampled_out, 1);
    assert_eq!(stats.late_spans_forwarded, 1);
    assert_eq!(stats.late_spans_dropped, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_mode_keeps_exactly_the_ids_above_the_threshold_and_writes_th() {
    let dir = tempfile::tempdir().unwrap();
    let sampling = "sampling:\n  mode: head\n  head:\n    percentage: 25\n";
    let gateway = Gateway::start(&config(dir.path(), sampling)).await.unwrap();

    // 25 %: threshold T = 0.75 * 2^56; keep iff the low 56 bits of the trace id are >= T.
    let threshold = 3u64 << 54;
    let mut expected = Vec::new();
    let mut spans = Vec::new();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..400u32 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let mut trace = [0u8; 16];
        trace[..8].copy_from_slice(&u64::from(i + 1).to_be_bytes());
        trace[8..].copy_from_slice(&state.to_be_bytes());
        let randomness = state & ((1 << 56) - 1);
        if randomness >= threshold {
            expected.push(hex::encode(trace));
        }
        spans.push(span(trace, 1, false, "vendor=x"));
    }
    send(&gateway, spans).await;
    let stats = gateway.shutdown().await.unwrap();

    let got = exported(dir.path());
    let mut kept: Vec<_> = got.keys().cloned().collect();
    kept.sort();
    expected.sort();
    assert_eq!(kept, expected);
    assert!(
        (60..140).contains(&kept.len()),
        "{} of 400 kept at 25 %",
        kept.len()
    );
    for states in got.values() {
        assert_eq!(states, &["ot=th:c,vendor=x".to_owned()]);
    }
    assert_eq!(stats.traces_released + stats.traces_sampled_out, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_rule_keeps_a_trace_as_soon_as_a_matching_span_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let sampling =
        "sampling:\n  trigger_rules:\n    - name: errors\n      type: status_code\n      \
                    status_code:\n        status_codes: [ERROR]\n";
    let gateway = Gateway::start(&config(dir.path(), sampling)).await.unwrap();

    let failed = [0x33; 16];
    let fine = [0x44; 16];
    send(
        &gateway,
        vec![span(failed, 1, false, ""), span(fine, 2, false, "")],
    )
    .await;
    send(&gateway, vec![span(failed, 3, true, "")]).await;
    let stats = gateway.shutdown().await.unwrap();

    let got = exported(dir.path());
    assert_eq!(got.get(&hex::encode(failed)).map(Vec::len), Some(2));
    assert!(!got.contains_key(&hex::encode(fine)));
    assert_eq!(stats.triggers, 1);
    assert_eq!(stats.traces_buffered, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_mode_decides_sooner_after_the_root_with_decision_wait_after_root_received() {
    let dir = tempfile::tempdir().unwrap();
    let sampling = "sampling:\n  mode: tail\n  sweep_interval: 50ms\n  tail_sampling:\n    \
                    decision_wait: 30s\n    decision_wait_after_root_received: 200ms\n    \
                    policies:\n      - name: all\n        type: always_sample\n";
    let gateway = Gateway::start(&config(dir.path(), sampling)).await.unwrap();

    let rooted = [0x51; 16];
    let rootless = [0x52; 16];
    let child = Span {
        parent_span_id: vec![9; 8],
        ..span(rootless, 2, false, "")
    };
    send(&gateway, vec![span(rooted, 1, false, ""), child]).await;

    let rooted_hex = hex::encode(rooted);
    let mut released = false;
    for _ in 0..200 {
        if exported(dir.path()).contains_key(&rooted_hex) {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        released,
        "the trace whose root arrived was not decided after 200 ms"
    );
    assert!(
        !exported(dir.path()).contains_key(&hex::encode(rootless)),
        "a trace without its root must wait the whole decision_wait"
    );
    let stats = gateway.shutdown().await.unwrap();
    assert_eq!(stats.traces_released, 1);
    assert_eq!(stats.traces_buffered, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_mode_decides_traces_buffered_before_a_restart_and_deletes_the_dropped_ones() {
    let dir = tempfile::tempdir().unwrap();
    let sampling = "sampling:\n  mode: tail\n  sweep_interval: 100ms\n  tail_sampling:\n    \
                    decision_wait: 2s\n    policies:\n      - name: errors\n        \
                    type: status_code\n        status_code:\n          status_codes: [ERROR]\n";
    let (failed, fine, fresh) = ([0x31; 16], [0x32; 16], [0x33; 16]);

    // Buffered, undecided, when the gateway stops: after the restart they are read back.
    let gateway = Gateway::start(&config(dir.path(), sampling)).await.unwrap();
    send(
        &gateway,
        vec![span(failed, 1, true, ""), span(fine, 2, false, "")],
    )
    .await;
    gateway.shutdown().await.unwrap();

    let gateway = Gateway::start(&config(dir.path(), sampling)).await.unwrap();
    assert_eq!(gateway.stats().traces_buffered, 2);
    // Spans after the restart: one more for a recovered trace, and a trace decided from memory.
    send(
        &gateway,
        vec![span(failed, 3, false, ""), span(fresh, 4, false, "")],
    )
    .await;
    for _ in 0..60 {
        if gateway.stats().traces_buffered == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = gateway.shutdown().await.unwrap();
    assert_eq!((stats.traces_released, stats.traces_sampled_out), (1, 2));

    let out = exported(dir.path());
    assert_eq!(
        out[&hex::encode(failed)].len(),
        2,
        "the kept trace whole: {out:?}"
    );
    assert!(!out.contains_key(&hex::encode(fine)) && !out.contains_key(&hex::encode(fresh)));
    // Nothing of the decided traces is left on disk, read back or not.
    let store = wbpf_storage::SpanStore::open(
        &dir.path().join("rocksdb"),
        &wbpf_storage::StoreOptions::default(),
    )
    .unwrap();
    assert!(store.buffered_traces().unwrap().is_empty());
    for trace in [failed, fine, fresh] {
        let stored = store.read_trace(wbpf_storage::TraceId(trace)).unwrap();
        assert!(stored.is_empty(), "{} still stored", hex::encode(trace));
    }
}
