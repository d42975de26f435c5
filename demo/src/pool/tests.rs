use std::time::{Duration, Instant};

use super::*;

const SMALL_POOL: u64 = 1 << 20;

fn temp_pool() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pool");
    (dir, path)
}

#[test]
fn creates_a_file_of_the_requested_size() {
    let (_dir, path) = temp_pool();
    let pool = Pool::open_with_size(&path, SMALL_POOL).expect("open");
    assert_eq!(std::fs::metadata(&path).expect("stat").len(), SMALL_POOL);
    assert_eq!(
        pool.slot_count(),
        Geometry::for_size(SMALL_POOL).expect("fits").slot_count
    );
    assert_eq!(pool.allocated(), 0);
}

#[test]
fn allocate_write_read_release() {
    let (_dir, path) = temp_pool();
    let pool = Pool::open_with_size(&path, SMALL_POOL).expect("open");

    let id = pool.allocate().expect("allocate");
    let written = pool
        .write(id, b"hello pool", Duration::ZERO)
        .expect("write");
    assert_eq!(written.len, 10);
    assert_eq!(written.offset % SLOT_SIZE, 0);

    let (data, read) = pool.read(id, Duration::ZERO).expect("read");
    assert_eq!(data, b"hello pool");
    assert_eq!(read, written);
    assert_eq!(pool.allocated(), 1);

    pool.release(id).expect("release");
    assert_eq!(pool.allocated(), 0);
}

#[test]
fn ids_go_stale_after_release_even_if_the_slot_is_reused() {
    let (_dir, path) = temp_pool();
    let pool = Pool::open_with_size(&path, 2 * SLOT_SIZE).expect("open");
    assert_eq!(pool.slot_count(), 1);

    let old = pool.allocate().expect("allocate");
    pool.release(old).expect("release");
    let new = pool.allocate().expect("allocate again");
    assert_eq!(new.slot(), old.slot());
    assert_ne!(new.generation(), old.generation());

    assert!(matches!(
        pool.read(old, Duration::ZERO),
        Err(DemoError::StaleObject { .. })
    ));
    assert!(matches!(
        pool.release(old),
        Err(DemoError::StaleObject { .. })
    ));
    assert!(matches!(
        pool.allocate(),
        Err(DemoError::PoolFull { slots: 1 })
    ));
    pool.write(new, b"still mine", Duration::ZERO)
        .expect("write the live object");
}

#[test]
fn refuses_objects_larger_than_a_slot() {
    let (_dir, path) = temp_pool();
    let pool = Pool::open_with_size(&path, SMALL_POOL).expect("open");
    let id = pool.allocate().expect("allocate");
    let big = vec![7u8; SLOT_SIZE as usize + 1];
    assert!(matches!(
        pool.write(id, &big, Duration::ZERO),
        Err(DemoError::ObjectTooLarge { .. })
    ));
    let full = vec![7u8; SLOT_SIZE as usize];
    pool.write(id, &full, Duration::ZERO)
        .expect("a full slot fits");
    assert_eq!(pool.read(id, Duration::ZERO).expect("read").0, full);
}

#[test]
fn two_mappings_of_one_file_see_each_others_writes() {
    let (_dir, path) = temp_pool();
    let first = Pool::open_with_size(&path, SMALL_POOL).expect("open first");
    let second = Pool::open(&path).expect("open second, keeping the existing size");
    assert_eq!(second.slot_count(), first.slot_count());

    let id = first.allocate().expect("allocate");
    first
        .write(id, b"written by the first", Duration::ZERO)
        .expect("write");
    let (data, _) = second
        .read(id, Duration::ZERO)
        .expect("read through the second");
    assert_eq!(data, b"written by the first");

    second
        .write(id, b"and the second", Duration::ZERO)
        .expect("write back");
    assert_eq!(
        first.read(id, Duration::ZERO).expect("read").0,
        b"and the second"
    );

    let other = second.allocate().expect("allocate from the second");
    assert_ne!(other.slot(), id.slot());
    assert_eq!(first.allocated(), 2);
    first.release(other).expect("release through the first");
    assert_eq!(second.allocated(), 1);
}

#[test]
fn stall_delays_the_access() {
    let (_dir, path) = temp_pool();
    let pool = Pool::open_with_size(&path, SMALL_POOL).expect("open");
    let id = pool.allocate().expect("allocate");
    let started = Instant::now();
    pool.write(id, b"slow", Duration::from_millis(20))
        .expect("write");
    assert!(started.elapsed() >= Duration::from_millis(20));
}

#[test]
fn rejects_a_file_that_is_not_a_pool() {
    let (_dir, path) = temp_pool();
    std::fs::write(&path, vec![0xAB; SMALL_POOL as usize]).expect("write junk");
    let error = Pool::open(&path).expect_err("junk is not a pool");
    assert!(error.to_string().contains("bad magic"), "{error}");
}

#[test]
fn concurrent_allocations_hand_out_distinct_slots() {
    let (_dir, path) = temp_pool();
    let pool = Pool::open_with_size(&path, SMALL_POOL).expect("open");
    let ids: Vec<ObjectId> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| (0..20).map(|_| pool.allocate()).collect::<Vec<_>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("worker"))
            .map(|id| id.expect("allocate"))
            .collect()
    });
    let mut slots: Vec<u64> = ids.iter().map(|id| id.slot()).collect();
    slots.sort_unstable();
    slots.dedup();
    assert_eq!(slots.len(), 80);
    assert_eq!(pool.allocated(), 80);
}

#[test]
fn remove_file_deletes_pools_only() {
    let (dir, path) = temp_pool();
    assert!(!Pool::remove_file(&path).expect("nothing to delete"));
    drop(Pool::open_with_size(&path, SMALL_POOL).expect("open"));
    assert!(Pool::remove_file(&path).expect("delete the pool"));
    assert!(!path.exists());

    let other = dir.path().join("precious");
    std::fs::write(&other, b"not a pool at all").expect("write");
    assert!(Pool::remove_file(&other).is_err());
    assert!(other.exists());
}
