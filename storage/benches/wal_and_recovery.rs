//! What durability costs and how fast the buffer comes back: commit throughput with the
//! write-ahead log on and off, and the start-up work of a gateway on a directory holding a
//! million buffered spans (open, list buffered traces, look up their decisions, size them).
//!
//! `cargo bench --workspace --bench wal_and_recovery` (release build). Prints one line per
//! figure; `WBPF_BENCH_SPANS` sets the span count (default 1,000,000).

use std::time::{Duration, Instant};

use wbpf_storage::{SpanStore, StoreOptions, TraceId, WriteSet};

/// Spans per trace and bytes per span: the shape of the demo's traces.
const SPANS_PER_TRACE: usize = 5;
const SPAN_BYTES: usize = 400;
/// Span groups per commit, as the buffer's group commit folds them under load.
const GROUP: usize = 256;

fn main() {
    let spans: usize = std::env::var("WBPF_BENCH_SPANS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);

    let with_wal = fill(spans, false);
    let without_wal = fill(spans, true);
    println!(
        "commit, WAL on:  {:>9.0} spans/s ({spans} spans of {SPAN_BYTES} B, {GROUP} per batch)",
        rate(spans, with_wal.1)
    );
    println!(
        "commit, WAL off: {:>9.0} spans/s",
        rate(spans, without_wal.1)
    );
    println!(
        "WAL on / off throughput: {:.2}",
        rate(spans, with_wal.1) / rate(spans, without_wal.1)
    );
    drop(without_wal);

    let dir = with_wal.0;
    let started = Instant::now();
    let store = SpanStore::open(dir.path(), &StoreOptions::default()).expect("reopen");
    let traces = store.buffered_traces().expect("list buffered traces");
    let mut decided = 0;
    for (_, trace) in &traces {
        decided += usize::from(store.decision(*trace).expect("decision").is_some());
    }
    let bytes = store.estimated_span_bytes().expect("size estimate");
    println!(
        "recovery of {spans} spans ({} traces, {decided} decided, ~{} MiB): {:.2} s",
        traces.len(),
        bytes / (1024 * 1024),
        started.elapsed().as_secs_f64()
    );
}

/// Writes `spans` spans in group commits; returns the directory and the time taken.
fn fill(spans: usize, disable_wal: bool) -> (tempfile::TempDir, Duration) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let options = StoreOptions {
        disable_wal,
        ..StoreOptions::default()
    };
    let store = SpanStore::open(dir.path(), &options).expect("open");
    let blob = vec![0x5au8; SPAN_BYTES];
    let started = Instant::now();
    let mut set = WriteSet::new();
    for n in 0..spans {
        let trace_no = (n / SPANS_PER_TRACE) as u64;
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&trace_no.to_be_bytes());
        id[8..].copy_from_slice(&trace_no.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
        let trace = TraceId(id);
        if n % SPANS_PER_TRACE == 0 {
            set.new_trace(trace, 1_700_000_000_000 + trace_no);
        }
        set.put_spans(trace, blob.clone());
        if (n + 1) % GROUP == 0 {
            store.commit(std::mem::take(&mut set)).expect("commit");
        }
    }
    store.commit(set).expect("commit");
    let elapsed = started.elapsed();
    drop(store);
    (dir, elapsed)
}

fn rate(spans: usize, elapsed: Duration) -> f64 {
    spans as f64 / elapsed.as_secs_f64()
}
