//! The span store on a real RocksDB directory.

use wbpf_storage::{Decision, SpanStore, StoreOptions, TraceId, WriteSet};

fn open(dir: &tempfile::TempDir) -> SpanStore {
    SpanStore::open(dir.path(), &StoreOptions::default()).expect("open store")
}

const A: TraceId = TraceId([1; 16]);
const B: TraceId = TraceId([2; 16]);

/// Stores `a1` of trace A and `b1` of B (first seen at 10 and 11), then `a2` of A; returns
/// the sequence numbers of A's two groups.
fn store_two_traces(store: &SpanStore) -> [u64; 2] {
    let mut set = WriteSet::new();
    set.put_spans(A, b"a1".to_vec());
    set.put_spans(B, b"b1".to_vec());
    set.new_trace(A, 10);
    set.new_trace(B, 11);
    let first = store.commit(set).unwrap();
    let mut set = WriteSet::new();
    set.put_spans(A, b"a2".to_vec());
    let second = store.commit(set).unwrap();
    assert_eq!((first.len(), second.len()), (2, 1));
    [first[0], second[0]]
}

#[test]
fn one_prefix_scan_reads_a_whole_trace_in_arrival_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store_two_traces(&store);

    assert_eq!(
        store.read_trace(A).unwrap(),
        vec![b"a1".to_vec(), b"a2".to_vec()]
    );
    assert_eq!(store.read_trace(B).unwrap(), vec![b"b1".to_vec()]);
}

#[test]
fn sequence_numbers_from_commit_remove_a_trace_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let seqs = store_two_traces(&store);
    assert_eq!(store.read_spans(A).unwrap().seqs, seqs);

    let mut set = WriteSet::new();
    set.remove_trace(A, 10, seqs.to_vec());
    store.commit(set).unwrap();

    assert!(store.read_trace(A).unwrap().is_empty());
    assert_eq!(store.read_trace(B).unwrap(), vec![b"b1".to_vec()]);
    assert_eq!(store.buffered_traces().unwrap(), vec![(11, B)]);
}

#[test]
fn trace_ids_ending_in_ff_do_not_leak_into_neighbours() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut low = [0u8; 16];
    low[15] = 0xff;
    let mut high = [0u8; 16];
    high[14] = 1;

    let mut set = WriteSet::new();
    set.put_spans(TraceId(low), b"low".to_vec());
    set.put_spans(TraceId(high), b"high".to_vec());
    store.commit(set).unwrap();

    assert_eq!(
        store.read_trace(TraceId(low)).unwrap(),
        vec![b"low".to_vec()]
    );
    store.delete_trace(TraceId(low), 0).unwrap();
    assert!(store.read_trace(TraceId(low)).unwrap().is_empty());
    assert_eq!(
        store.read_trace(TraceId(high)).unwrap(),
        vec![b"high".to_vec()]
    );
}

#[test]
fn expired_lists_oldest_first_and_delete_removes_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut set = WriteSet::new();
    for (i, ms) in [(3u8, 300u64), (1, 100), (2, 200)] {
        set.new_trace(TraceId([i; 16]), ms);
        set.put_spans(TraceId([i; 16]), vec![i]);
    }
    store.commit(set).unwrap();

    let old = store.expired(0, 250, 10).unwrap();
    assert_eq!(old, vec![(100, TraceId([1; 16])), (200, TraceId([2; 16]))]);

    store.delete_trace(TraceId([1; 16]), 100).unwrap();
    assert_eq!(
        store.expired(0, 250, 10).unwrap(),
        vec![(200, TraceId([2; 16]))]
    );
    assert!(store.read_trace(TraceId([1; 16])).unwrap().is_empty());
}

#[test]
fn spans_and_decisions_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let trace = TraceId([7; 16]);
    {
        let store = open(&dir);
        let mut set = WriteSet::new();
        set.put_spans(trace, b"span".to_vec());
        set.new_trace(trace, 42);
        set.decide(trace, Decision::Keep { decided_at_ms: 50 });
        store.commit(set).unwrap();
    }

    let store = open(&dir);
    assert_eq!(store.read_trace(trace).unwrap(), vec![b"span".to_vec()]);
    assert_eq!(store.buffered_traces().unwrap(), vec![(42, trace)]);
    assert_eq!(
        store.decision(trace).unwrap(),
        Some(Decision::Keep { decided_at_ms: 50 })
    );
    assert_eq!(store.prune_decisions(60).unwrap(), 1);
    assert_eq!(store.decision(trace).unwrap(), None);
}

#[test]
fn a_directory_in_use_or_that_cannot_be_made_is_named_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let _first = open(&dir);
    let Err(err) = SpanStore::open(dir.path(), &StoreOptions::default()) else {
        panic!("a second store opened a directory in use");
    };
    let message = err.to_string();
    assert!(message.contains("is in use"), "{message}: {err:?}");
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );

    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let Err(err) = SpanStore::open(&file, &StoreOptions::default()) else {
        panic!("a file was opened as a store");
    };
    let reason = std::error::Error::source(&err).map(ToString::to_string);
    assert!(
        err.to_string()
            .starts_with("cannot create the storage directory"),
        "{err}"
    );
    assert!(reason.is_some_and(|r| r.contains("exists")), "{err:?}");
}
