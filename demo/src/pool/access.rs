//! The single function through which every pool read and write goes.
//!
//! `wbpf_pool_access` is an exported, never-inlined symbol so the node probe can attach a uprobe
//! to it and see every access (object id, address, length, direction, injected stall) of every
//! service. Its C signature is fixed by that probe (the object id first, as in every pool
//! hook), so it has no buffer argument: the bytes travel through a per-thread staging buffer
//! that the safe wrappers in `pool` fill before a write and drain after a read.
//!
//! The mapping is shared with other processes and other threads, which may touch the same bytes
//! at the same time. Every byte is therefore copied with relaxed atomic loads and stores (plain
//! moves on x86-64), which keeps such races defined; a reader may see a torn object, which the
//! demo services tolerate because they never interpret the payload.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::Duration;

thread_local! {
    static STAGING: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Puts `data` in this thread's staging buffer, for the next write access.
pub(crate) fn stage(data: &[u8]) {
    STAGING.with(|cell| {
        let mut staging = cell.borrow_mut();
        staging.clear();
        staging.extend_from_slice(data);
    });
}

/// Takes the bytes the last read access left in this thread's staging buffer.
pub(crate) fn take_staged() -> Vec<u8> {
    STAGING.with(|cell| std::mem::take(&mut *cell.borrow_mut()))
}

/// Copies `len` bytes of object `object_id` between the pool mapping at `base + offset` and the
/// calling thread's staging buffer: into the mapping when `write` is non-zero, out of it
/// otherwise. When `stall_ns` is non-zero, first sleeps that long to emulate a far-memory (CXL)
/// stall. The id is not used here; it is there for the probe.
///
/// Returns the number of bytes copied, or 0 if the staging buffer holds fewer than `len` bytes
/// for a write or is in use.
///
/// On x86-64 this is the 5-byte nop that makes a uprobe cheap ([`crate::probe_site`]) and a
/// jump to the copy: the arguments are still in their registers and the return address on
/// the stack, so the copy returns straight to the caller (or to a uretprobe's trampoline, which
/// then times the whole access).
///
/// # Safety
///
/// `base + offset .. base + offset + len` must lie inside one live mapping that stays mapped
/// for the duration of the call, and must only be accessed atomically by other threads and
/// processes while this call runs.
#[cfg(target_arch = "x86_64")]
#[no_mangle]
#[unsafe(naked)]
pub unsafe extern "C" fn wbpf_pool_access(
    object_id: u64,
    base: *mut u8,
    offset: u64,
    len: u64,
    write: u32,
    stall_ns: u64,
) -> u64 {
    core::arch::naked_asm!(crate::probe_site!(), "jmp {copy}", copy = sym copy)
}

/// See the x86-64 version.
///
/// # Safety
///
/// As there.
#[cfg(not(target_arch = "x86_64"))]
#[no_mangle]
#[inline(never)]
pub unsafe extern "C" fn wbpf_pool_access(
    object_id: u64,
    base: *mut u8,
    offset: u64,
    len: u64,
    write: u32,
    stall_ns: u64,
) -> u64 {
    // SAFETY: the caller upholds the contract `copy` shares with this function.
    unsafe { copy(object_id, base, offset, len, write, stall_ns) }
}

/// The work of [`wbpf_pool_access`], with its arguments and contract.
///
/// # Safety
///
/// As [`wbpf_pool_access`].
unsafe extern "C" fn copy(
    object_id: u64,
    base: *mut u8,
    offset: u64,
    len: u64,
    write: u32,
    stall_ns: u64,
) -> u64 {
    std::hint::black_box(object_id);
    if stall_ns > 0 {
        std::thread::sleep(Duration::from_nanos(stall_ns));
    }
    let (Ok(offset), Ok(len)) = (usize::try_from(offset), usize::try_from(len)) else {
        return 0;
    };
    // SAFETY: the caller guarantees `offset` is inside the mapping that starts at `base`.
    let start = unsafe { base.add(offset) };

    STAGING.with(|cell| {
        let Ok(mut staging) = cell.try_borrow_mut() else {
            return 0;
        };
        if write != 0 {
            let Some(source) = staging.get_mut(..len) else {
                return 0;
            };
            // SAFETY: the caller guarantees `start .. start + len` is mapped and only accessed
            // atomically; `source` holds exactly `len` bytes.
            unsafe { copy_atomic(start, source, Direction::Store) };
        } else {
            staging.clear();
            staging.resize(len, 0);
            // SAFETY: as above, with `staging` resized to exactly `len` bytes.
            unsafe { copy_atomic(start, &mut staging, Direction::Load) };
        }
        len as u64
    })
}

/// Which way [`copy_atomic`] moves the bytes.
#[derive(Debug, Clone, Copy)]
enum Direction {
    /// From the staging buffer into the mapping.
    Store,
    /// From the mapping into the staging buffer.
    Load,
}

/// Copies between `mapped` and `staging` with relaxed atomic accesses to the mapping, a word at
/// a time where aligned.
///
/// # Safety
///
/// `mapped .. mapped + staging.len()` must be valid for reads and writes and accessed only
/// atomically by others.
unsafe fn copy_atomic(mapped: *mut u8, staging: &mut [u8], direction: Direction) {
    let mut i = 0;
    while i < staging.len() {
        // SAFETY: `i < staging.len()`, so `mapped + i` is inside the range the caller vouched
        // for.
        let at = unsafe { mapped.add(i) };
        if at.addr().is_multiple_of(8) && staging.len() - i >= 8 {
            // SAFETY: `at` is 8-aligned and `at .. at + 8` is in range (checked just above).
            let word = unsafe { AtomicU64::from_ptr(at.cast::<u64>()) };
            let bytes = staging[i..]
                .first_chunk_mut::<8>()
                .expect("8 bytes are left (checked just above)");
            match direction {
                Direction::Store => word.store(u64::from_ne_bytes(*bytes), Ordering::Relaxed),
                Direction::Load => *bytes = word.load(Ordering::Relaxed).to_ne_bytes(),
            }
            i += 8;
        } else {
            // SAFETY: `at` is in range; bytes need no alignment.
            let byte = unsafe { AtomicU8::from_ptr(at) };
            match direction {
                Direction::Store => byte.store(staging[i], Ordering::Relaxed),
                Direction::Load => staging[i] = byte.load(Ordering::Relaxed),
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_unaligned_ranges_both_ways() {
        let mut memory = vec![0u64; 8];
        let base = memory.as_mut_ptr().cast::<u8>();
        let data: Vec<u8> = (1..=29).collect();

        stage(&data);
        // SAFETY: 3 + 29 <= 64 bytes of `memory`, which nothing else touches.
        let written = unsafe { wbpf_pool_access(1, base, 3, 29, 1, 0) };
        assert_eq!(written, 29);

        // SAFETY: as above.
        let read = unsafe { wbpf_pool_access(1, base, 3, 29, 0, 0) };
        assert_eq!(read, 29);
        assert_eq!(take_staged(), data);
    }

    #[test]
    fn write_without_enough_staged_bytes_copies_nothing() {
        let mut memory = [0u64; 2];
        stage(&[1, 2, 3]);
        // SAFETY: 16 bytes of `memory`, which nothing else touches.
        let written = unsafe { wbpf_pool_access(1, memory.as_mut_ptr().cast(), 0, 16, 1, 0) };
        assert_eq!(written, 0);
        assert_eq!(memory, [0, 0]);
    }
}
