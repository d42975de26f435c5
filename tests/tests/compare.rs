//! `sampling.compare` and lateral triggers over real OTLP/gRPC and a real RocksDB directory.

use std::collections::BTreeSet;
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::{status, Span, Status};
use wbpf_gateway::{CompareSnapshot, Gateway, ModeFigures};
use wbpf_tests::{
    attribute, exported_by_trace, gateway_config_retaining, metric, scrape, send_spans,
};

/// Trace `i`: byte 0 is `i`; byte 9 (the top byte of the 56-bit randomness) decides head
/// sampling at 50 %: kept iff it is at least 0x80.
fn trace_id(i: u8, head_keeps: bool) -> [u8; 16] {
    let mut trace = [0x5a; 16];
    trace[0] = i;
    trace[9] = if head_keeps { 0xff } else { 0x00 };
    trace
}

fn span(trace: [u8; 16], id: u8) -> Span {
    wbpf_tests::test_span(trace, id)
}

fn figures<'a>(snapshot: &'a CompareSnapshot, mode: &str) -> &'a ModeFigures {
    snapshot
        .modes
        .iter()
        .find(|m| m.mode == mode)
        .expect("every compared mode is reported")
}

async fn wait_for(gateway: &Gateway, done: impl Fn(&CompareSnapshot) -> bool) -> CompareSnapshot {
    for _ in 0..100 {
        let snapshot = gateway.compare().expect("compare is configured");
        if done(&snapshot) {
            return snapshot;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("comparison did not settle: {:?}", gateway.compare());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_counts_what_each_mode_keeps_on_one_stream_while_one_exports() {
    let dir = tempfile::tempdir().unwrap();
    let sampling = "sampling:\n  mode: triggered\n  sweep_interval: 100ms\n  \
        compare: [head, tail, triggered]\n  head:\n    percentage: 50\n  \
        edge_cases:\n    attribute: test.edge_case\n  \
        tail_sampling:\n    decision_wait: 500ms\n    \
        policies:\n      - name: errors\n        type: status_code\n        \
        status_code:\n          status_codes: [ERROR]\n";
    let config = gateway_config_retaining(dir.path(), "1s", sampling);
    let gateway = Gateway::start(&config).await.unwrap();

    // Twelve traces of three spans. Head keeps the even ones, tail the ERROR ones (0-3),
    // triggered the ones with a trigger span (2-5) and trace 11, triggered from the admin API.
    let ids: Vec<[u8; 16]> = (0..12u8).map(|i| trace_id(i, i % 2 == 0)).collect();
    let mut spans = Vec::new();
    for (i, trace) in ids.iter().enumerate() {
        for id in 1..=3u8 {
            let mut span = span(*trace, id);
            if id == 3 && i < 4 {
                span.status = Some(Status {
                    code: status::StatusCode::Error as i32,
                    ..Default::default()
                });
            }
            if id == 3 && (2..6).contains(&i) {
                span.attributes
                    .push(attribute("wbpf.trigger", Value::BoolValue(true)));
            }
            if id == 2 && [1, 3, 5, 7].contains(&i) {
                span.attributes
                    .push(attribute("test.edge_case", Value::StringValue("x".into())));
            }
            spans.push(span);
        }
    }
    send_spans(gateway.grpc_addr(), spans).await;
    gateway.trigger(ids[11]).await.unwrap();

    let settled = |s: &CompareSnapshot| {
        s.modes.iter().all(|m| m.traces_decided == 12) && s.edge_cases_seen == 4
    };
    let snapshot = wait_for(&gateway, settled).await;
    assert_eq!(snapshot.traces_seen, 12);
    assert_eq!(snapshot.spans_seen, 36);
    assert_eq!(snapshot.events_dropped, 0);

    let head = figures(&snapshot, "head");
    assert_eq!(
        (head.traces_kept, head.spans_kept, head.edge_cases_captured),
        (6, 18, 0)
    );
    let tail = figures(&snapshot, "tail");
    assert_eq!(
        (tail.traces_kept, tail.spans_kept, tail.edge_cases_captured),
        (4, 12, 2)
    );
    let triggered = figures(&snapshot, "triggered");
    assert_eq!(
        (
            triggered.traces_kept,
            triggered.spans_kept,
            triggered.edge_cases_captured
        ),
        (5, 15, 2)
    );
    assert!(triggered.exporting && !head.exporting && !tail.exporting);
    let per_span = |m: &ModeFigures| m.bytes_kept / m.spans_kept;
    assert!(head.bytes_kept > tail.bytes_kept, "{snapshot:?}");
    assert!(
        per_span(head).abs_diff(per_span(triggered)) < 16,
        "{snapshot:?}"
    );

    // Late spans follow each mode's decision: trace 0 was kept by head and tail, trace 2 by all.
    send_spans(gateway.grpc_addr(), vec![span(ids[0], 4), span(ids[2], 4)]).await;
    let late = |s: &CompareSnapshot| figures(s, "head").spans_kept == 20;
    let snapshot = wait_for(&gateway, late).await;
    assert_eq!(figures(&snapshot, "tail").spans_kept, 14);
    assert_eq!(figures(&snapshot, "triggered").spans_kept, 16);

    let metrics = scrape(gateway.admin_addr().unwrap()).await;
    let series = r#"wbpf_gateway_compare_traces_kept_total{mode="tail",exporting="false"}"#;
    assert_eq!(metric(&metrics, series), Some(4.0), "{metrics}");
    let series =
        r#"wbpf_gateway_compare_edge_cases_captured_total{mode="triggered",exporting="true"}"#;
    assert_eq!(metric(&metrics, series), Some(2.0), "{metrics}");

    gateway.shutdown().await.unwrap();
    // Only the exporting mode's traces left the gateway.
    let exported: BTreeSet<String> = exported_by_trace(&dir.path().join("out.jsonl"))
        .into_keys()
        .collect();
    let expected: BTreeSet<String> = [2, 3, 4, 5, 11]
        .iter()
        .map(|i| hex::encode(ids[*i]))
        .collect();
    assert_eq!(exported, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lateral_trigger_keeps_traces_that_touched_the_same_resource_nearby_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let sampling = "sampling:\n  sweep_interval: 100ms\n  lateral:\n    \
        attributes: [wbpf.pool.region]\n    window: 100ms\n";
    let config = gateway_config_retaining(dir.path(), "1s", sampling);
    let gateway = Gateway::start(&config).await.unwrap();

    let at = |trace: u8, region: i64, offset_ms: u64, trigger: bool| {
        let mut span = span([trace; 16], trace);
        span.start_time_unix_nano += offset_ms * 1_000_000;
        span.end_time_unix_nano += offset_ms * 1_000_000;
        span.attributes
            .push(attribute("wbpf.pool.region", Value::IntValue(region)));
        if trigger {
            span.attributes
                .push(attribute("wbpf.trigger", Value::BoolValue(true)));
        }
        span
    };
    // Before the trigger: same region close by (kept), another region (not), same region
    // ten seconds later (not).
    send_spans(
        gateway.grpc_addr(),
        vec![
            at(1, 7, 50, false),
            at(2, 8, 0, false),
            at(3, 7, 10_000, false),
        ],
    )
    .await;
    send_spans(gateway.grpc_addr(), vec![at(9, 7, 0, true)]).await;
    // After the trigger: same region within the window (kept).
    send_spans(gateway.grpc_addr(), vec![at(4, 7, 80, false)]).await;

    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let stats = gateway.shutdown().await.unwrap();
    let exported: BTreeSet<String> = exported_by_trace(&dir.path().join("out.jsonl"))
        .into_keys()
        .collect();
    let expected: BTreeSet<String> = [1u8, 4, 9].iter().map(|i| hex::encode([*i; 16])).collect();
    assert_eq!(exported, expected);
    assert_eq!(stats.lateral_triggers, 2);
    assert_eq!(stats.triggers, 1);
    assert_eq!(stats.traces_expired, 2);
}
