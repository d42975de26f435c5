//! Runs the three services against a local OTLP/HTTP sink and checks what arrives.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use common::OtlpSink;
use wbpf_demo::{read_ground_truth, spawn, WorkloadOptions, WorkloadStats, SPANS_PER_REQUEST};

const STALL: Duration = Duration::from_millis(20);

/// Asks the frontend's own listener for one search with a fault, as an external client would.
fn search_through_listener(addr: std::net::SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to the frontend");
    stream.write_all(b"REQ 77 1 -\n").expect("send");
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .expect("answer");
    answer
}

/// 100 requests/s for `duration`, 5 % of them stalled, exporting to `sink`.
fn options(dir: &Path, sink: &OtlpSink, duration: Duration) -> WorkloadOptions {
    WorkloadOptions {
        workload_bin: env!("CARGO_BIN_EXE_wbpf-workload").into(),
        pool_path: dir.join("pool"),
        otlp_http_endpoint: sink.endpoint(),
        rate: 100,
        duration,
        fault_rate: 0.05,
        stall: STALL,
        pool_faults: Default::default(),
        ground_truth: dir.join("truth.jsonl"),
        stats: dir.join("stats.json"),
        base_port: wbpf_demo::free_triple().expect("free ports"),
        log_filter: None,
        seed: 42,
        publish_context: true,
        tracing: true,
    }
}

/// Runs the three services to the end of their load, with one extra request sent through
/// the frontend's listener; returns the frontend's figures.
fn run_with_one_listener_request(opts: &WorkloadOptions) -> WorkloadStats {
    let mut workload = spawn(opts).expect("start the workload");
    assert_eq!(workload.pids().len(), 3);
    let answer = search_through_listener(workload.frontend_addr());
    assert!(
        answer.starts_with("OK "),
        "frontend listener answered {answer:?}"
    );
    let stats = workload.wait_frontend().expect("frontend finishes");
    workload.stop().expect("index and store stop cleanly");
    stats
}

#[test]
fn three_services_export_complete_traces_and_record_faults() {
    let sink = OtlpSink::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = options(dir.path(), &sink, Duration::from_secs(3));

    let stats = run_with_one_listener_request(&opts);

    // 300 planned requests plus the one sent to the listener.
    assert_eq!(stats.requests, 301, "{stats:?}");
    assert_eq!(stats.errors, 0, "{stats:?}");
    assert_eq!(stats.spans_per_request, SPANS_PER_REQUEST);
    assert!((4..=40).contains(&stats.injected), "{stats:?}");

    let truth = read_ground_truth(&opts.ground_truth).expect("ground truth");
    assert_eq!(truth.len() as u64, stats.injected);
    assert!(truth.iter().all(|entry| entry.fault == "far_memory_stall"
        && entry.service == "store"
        && entry.spans == SPANS_PER_REQUEST
        && entry.trace_id.len() == 32));

    let traces = sink.traces();
    assert!(sink.posts() > 0);
    assert_eq!(
        sink.spans().len() as u64,
        stats.requests * u64::from(SPANS_PER_REQUEST)
    );
    assert_eq!(traces.len() as u64, stats.requests);
    for (trace_id, spans) in &traces {
        let mut per_service = BTreeMap::new();
        for span in spans {
            *per_service.entry(span.service.as_str()).or_insert(0) += 1;
        }
        let expected = BTreeMap::from([("frontend", 3), ("index", 3), ("store", 3)]);
        assert_eq!(per_service, expected, "trace {trace_id}");
    }

    let injected: HashSet<&str> = truth.iter().map(|entry| entry.trace_id.as_str()).collect();
    for (trace_id, spans) in &traces {
        let store_read = spans
            .iter()
            .find(|span| span.service == "store" && span.name == "pool.read")
            .expect("every trace has a store read");
        if injected.contains(trace_id.as_str()) {
            assert!(
                store_read.duration >= STALL,
                "injected trace {trace_id} did not stall"
            );
        } else {
            assert!(
                store_read.duration < STALL,
                "trace {trace_id} stalled without a fault"
            );
        }
    }
}

#[test]
fn without_tracing_the_services_answer_and_export_nothing() {
    let sink = OtlpSink::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = WorkloadOptions {
        tracing: false,
        ..options(dir.path(), &sink, Duration::from_secs(2))
    };

    let stats = run_with_one_listener_request(&opts);

    assert_eq!(stats.requests, 201, "{stats:?}");
    assert_eq!(stats.errors, 0, "{stats:?}");
    // Trace ids are still made: the ground truth names the stalled requests.
    let truth = read_ground_truth(&opts.ground_truth).expect("ground truth");
    assert!(!truth.is_empty(), "{stats:?}");
    assert!(truth
        .iter()
        .all(|entry| entry.trace_id.len() == 32 && entry.trace_id.chars().any(|c| c != '0')));
    assert_eq!(sink.posts(), 0, "spans were exported with tracing off");
}
