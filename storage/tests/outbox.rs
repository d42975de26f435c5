//! The export queue on a real RocksDB directory.

use wbpf_storage::{SpanStore, StoreOptions, TraceId, WriteSet};

fn open(dir: &tempfile::TempDir) -> SpanStore {
    SpanStore::open(dir.path(), &StoreOptions::default()).expect("open store")
}

fn queued(store: &SpanStore) -> Vec<Vec<u8>> {
    let entries = store.read_outbox(0, usize::MAX, usize::MAX).unwrap();
    entries.into_iter().map(|e| e.blob).collect()
}

#[test]
fn releasing_moves_spans_from_the_buffer_to_the_queue_in_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let trace = TraceId([3; 16]);
    let mut set = WriteSet::new();
    set.new_trace(trace, 10);
    set.put_spans(trace, b"s1".to_vec());
    set.put_spans(trace, b"s2".to_vec());
    store.commit(set).unwrap();

    let stored = store.read_spans(trace).unwrap();
    let mut set = WriteSet::new();
    for blob in stored.blobs {
        set.enqueue(blob);
    }
    set.remove_trace(trace, 10, stored.seqs);
    store.commit(set).unwrap();

    assert!(store.read_trace(trace).unwrap().is_empty());
    assert!(store.buffered_traces().unwrap().is_empty());
    assert_eq!(queued(&store), vec![b"s1".to_vec(), b"s2".to_vec()]);
}

#[test]
fn reads_stop_at_the_byte_budget_but_always_return_one_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut set = WriteSet::new();
    for blob in [vec![1u8; 10], vec![2; 10], vec![3; 10]] {
        set.enqueue(blob);
    }
    store.commit(set).unwrap();

    assert_eq!(store.read_outbox(0, usize::MAX, 25).unwrap().len(), 2);
    assert_eq!(store.read_outbox(0, usize::MAX, 5).unwrap().len(), 1);
    assert_eq!(store.read_outbox(0, 1, usize::MAX).unwrap().len(), 1);
}

#[test]
fn acknowledged_entries_leave_and_the_rest_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&dir);
        let mut set = WriteSet::new();
        set.enqueue(b"first".to_vec());
        set.enqueue(b"second".to_vec());
        store.commit(set).unwrap();
        let first = store.read_outbox(0, 1, usize::MAX).unwrap();
        store.ack_outbox(first.iter().map(|e| e.seq)).unwrap();
    }

    let store = open(&dir);
    assert_eq!(store.outbox_len().unwrap(), 1);
    let mut set = WriteSet::new();
    set.enqueue(b"third".to_vec());
    store.commit(set).unwrap();
    // Entries queued after a restart sort after those queued before it.
    assert_eq!(queued(&store), vec![b"second".to_vec(), b"third".to_vec()]);
}

#[test]
fn reading_from_a_sequence_number_skips_older_entries() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut set = WriteSet::new();
    set.enqueue(b"a".to_vec());
    set.enqueue(b"b".to_vec());
    store.commit(set).unwrap();

    let all = store.read_outbox(0, usize::MAX, usize::MAX).unwrap();
    let rest = store
        .read_outbox(all[0].seq + 1, usize::MAX, usize::MAX)
        .unwrap();
    assert_eq!(rest, all[1..].to_vec());
}
