//! Page-fault storms on the pool: this process's view of a range of pool pages is dropped and
//! touched again, so every page faults back in.
//!
//! On a far-memory pool each of those faults would map a page of CXL memory; here they are
//! minor faults on the shared file, which is what the probe's `pool_faults` detector counts.
//! `MADV_DONTNEED` on a shared file mapping only removes this process's page-table entries:
//! the bytes stay in the file, so other processes and objects are not disturbed.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{Pool, SLOT_SIZE};
use crate::error::DemoError;

impl Pool {
    /// Drops and touches again `pages` pages starting at slot `first_slot` (wrapping inside the
    /// pool's slots); returns how many pages were touched. Each touch is a write that changes
    /// nothing, so every page faults (reads would be served sixteen pages at a time by the
    /// kernel's fault-around).
    pub fn refault(&self, first_slot: u64, pages: u64) -> Result<u64, DemoError> {
        let count = self.geometry.slot_count;
        let pages = pages.min(count);
        let first = first_slot % count;
        let run = pages.min(count - first);
        self.refault_run(first, run)?;
        if run < pages {
            self.refault_run(0, pages - run)?;
        }
        Ok(pages)
    }

    /// `pages` consecutive slots from `first` (`first + pages <= slot_count`).
    fn refault_run(&self, first: u64, pages: u64) -> Result<(), DemoError> {
        let offset = self.geometry.slot_offset(first);
        let len = usize::try_from(pages * SLOT_SIZE).map_err(|_| self.too_large())?;
        let offset = usize::try_from(offset).map_err(|_| self.too_large())?;

        // SAFETY: slots are page-aligned (data starts on a page boundary and a slot is one
        // page), and `offset .. offset + len` lies inside the mapping `self` keeps alive.
        // DONTNEED on a shared file mapping loses no data.
        let advised =
            unsafe { libc::madvise(self.base().add(offset).cast(), len, libc::MADV_DONTNEED) };
        if advised != 0 {
            return Err(DemoError::pool_io("madvise", &self.path)(
                std::io::Error::last_os_error(),
            ));
        }
        for page in 0..pages {
            let at = offset + (page * SLOT_SIZE) as usize;
            // SAFETY: `at` is page-aligned, so 8-aligned, and inside the mapping (above); pool
            // bytes are only ever accessed atomically.
            let word = unsafe { AtomicU64::from_ptr(self.base().add(at).cast::<u64>()) };
            // A compare-and-swap is a write access whether or not it succeeds, and writes
            // back what it found. (An add of zero would be compiled to a plain load, and a
            // read fault maps sixteen pages at once.)
            let (expected, new) = (std::hint::black_box(0), std::hint::black_box(0));
            let _ = word.compare_exchange(expected, new, Ordering::Relaxed, Ordering::Relaxed);
        }
        Ok(())
    }

    fn too_large(&self) -> DemoError {
        self.layout_error("refault range does not fit the address space".to_owned())
    }
}
