//! The emulated memory pool: one file-backed `MAP_SHARED` mapping that every service process
//! maps, with a small slot-based object store on it.
//!
//! This stands in for a CXL shared-memory pool (GISMO-style objects passed between hosts): the
//! processes are the "hosts", `/dev/shm` is the memory. Objects live in fixed-size slots; a
//! per-slot state word (see `layout`) holds allocation, generation and length and is only ever
//! changed with atomic compare-and-swap, so allocation works across processes without locks.
//!
//! Every allocation, release and access goes through an exported hook (`hooks`, `access`) the
//! node probe follows objects with; `refault` provokes page-fault storms on the pool.

mod access;
mod hooks;
mod layout;
mod refault;

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use memmap2::{MmapOptions, MmapRaw};
use tracing::info;

pub use access::wbpf_pool_access;
pub use hooks::{wbpf_pool_alloc, wbpf_pool_release};
use layout::{Geometry, SlotState};
pub use layout::{ObjectId, SLOT_SIZE};

use crate::error::DemoError;

/// Size of a pool file this crate creates.
pub const DEFAULT_POOL_BYTES: u64 = 64 << 20;

/// How long a process waits for another one to finish writing a new pool's header.
const INIT_WAIT: Duration = Duration::from_secs(5);

/// Where one access landed in the pool, for span attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// Offset of the object's first byte in the pool file.
    pub offset: u64,
    /// Bytes copied.
    pub len: u64,
}

/// A mapped pool. Cheap to share between threads (`Arc<Pool>`).
#[derive(Debug)]
pub struct Pool {
    map: MmapRaw,
    path: PathBuf,
    geometry: Geometry,
}

impl Pool {
    /// Maps the pool at `path`, creating it with [`DEFAULT_POOL_BYTES`] if it does not exist.
    pub fn open(path: &Path) -> Result<Self, DemoError> {
        Self::open_with_size(path, DEFAULT_POOL_BYTES)
    }

    /// Maps the pool at `path`, creating it with `size` bytes if it does not exist or is
    /// empty. An existing pool keeps its own size.
    pub fn open_with_size(path: &Path, size: u64) -> Result<Self, DemoError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(DemoError::pool_io("open", path))?;
        let mut len = file
            .metadata()
            .map_err(DemoError::pool_io("stat", path))?
            .len();
        if len == 0 {
            // Processes racing here all set the same size, so the race is harmless.
            file.set_len(size)
                .map_err(DemoError::pool_io("resize", path))?;
            len = size;
        }

        let layout_error = |reason: String| DemoError::PoolLayout {
            path: path.to_path_buf(),
            reason,
        };
        let geometry = Geometry::for_size(len)
            .ok_or_else(|| layout_error(format!("{len} bytes cannot hold a single slot")))?;
        let map_len = usize::try_from(len)
            .map_err(|_| layout_error(format!("{len} bytes do not fit the address space")))?;
        let map = MmapOptions::new()
            .len(map_len)
            .map_raw(&file)
            .map_err(DemoError::pool_io("map", path))?;

        let pool = Self {
            map,
            path: path.to_path_buf(),
            geometry,
        };
        pool.initialise_or_check()?;
        Ok(pool)
    }

    /// Deletes the pool file at `path` if there is one, so the next [`Pool::open`] starts
    /// empty. Refuses to delete a file that is not a pool. Returns whether a file was deleted.
    pub fn remove_file(path: &Path) -> Result<bool, DemoError> {
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(error) => return Err(DemoError::pool_io("open", path)(error)),
        };
        let mut magic = [0u8; 8];
        let is_pool = match file.read_exact(&mut magic) {
            Ok(()) => [layout::POOL_MAGIC, layout::INIT_MAGIC].contains(&u64::from_ne_bytes(magic)),
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => true,
            Err(error) => return Err(DemoError::pool_io("read", path)(error)),
        };
        if !is_pool {
            return Err(DemoError::PoolLayout {
                path: path.to_path_buf(),
                reason: "not a wBPF pool; refusing to delete it".to_owned(),
            });
        }
        std::fs::remove_file(path).map_err(DemoError::pool_io("delete", path))?;
        Ok(true)
    }

    /// The pool file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many objects the pool can hold at once.
    pub fn slot_count(&self) -> u64 {
        self.geometry.slot_count
    }

    /// How many slots are allocated right now, by all processes.
    pub fn allocated(&self) -> u64 {
        (0..self.geometry.slot_count)
            .filter(|&slot| self.state(slot).is_allocated())
            .count() as u64
    }

    /// Allocates an empty object.
    pub fn allocate(&self) -> Result<ObjectId, DemoError> {
        let count = self.geometry.slot_count;
        let start = self
            .word(layout::HDR_CURSOR)
            .fetch_add(1, Ordering::Relaxed)
            % count;
        for step in 0..count {
            let slot = (start + step) % count;
            let current = self.state(slot);
            if current.is_allocated() {
                continue;
            }
            let next = SlotState::allocated(current.generation().wrapping_add(1));
            let word = self.word(self.geometry.state_offset(slot));
            if word
                .compare_exchange(current.0, next.0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                let id = ObjectId::new(slot, next.generation());
                wbpf_pool_alloc(id.raw());
                return Ok(id);
            }
        }
        Err(DemoError::PoolFull { slots: count })
    }

    /// Frees an object; its id (and every copy of it) becomes stale. Releasing a stale id
    /// fails and changes nothing.
    pub fn release(&self, id: ObjectId) -> Result<(), DemoError> {
        wbpf_pool_release(id.raw());
        self.update_state(id, SlotState::released)
    }

    /// Replaces the object's contents with `data`, after an emulated stall of `stall`.
    pub fn write(&self, id: ObjectId, data: &[u8], stall: Duration) -> Result<Access, DemoError> {
        if data.len() as u64 > SLOT_SIZE {
            return Err(DemoError::ObjectTooLarge {
                len: data.len(),
                max: SLOT_SIZE as usize,
            });
        }
        let slot = self.live_slot(id)?;
        let access = Access {
            offset: self.geometry.slot_offset(slot),
            len: data.len() as u64,
        };

        access::stage(data);
        // SAFETY: the slot is inside the mapping (`Geometry::for_size` fitted every slot into
        // the mapped length and `live_slot` checked the index) and `len <= SLOT_SIZE`; `self`
        // keeps the mapping alive for the call; all pool bytes are only accessed atomically.
        let copied = unsafe {
            wbpf_pool_access(
                id.raw(),
                self.base(),
                access.offset,
                access.len,
                1,
                nanos(stall),
            )
        };
        debug_assert_eq!(copied, access.len, "the staging buffer was just filled");

        self.update_state(id, |state| state.with_len(access.len))?;
        Ok(access)
    }

    /// Copies the object's contents out, after an emulated stall of `stall`.
    ///
    /// Like a reader of shared memory that holds a plain reference, the read is optimistic:
    /// the slot is copied first (whatever it holds now) and the id is checked afterwards. A
    /// stale id therefore really touches the pool, as a use after release does, and fails
    /// with [`DemoError::StaleObject`] once the garbage is discarded.
    pub fn read(&self, id: ObjectId, stall: Duration) -> Result<(Vec<u8>, Access), DemoError> {
        let slot = id.slot();
        if slot >= self.geometry.slot_count {
            return Err(DemoError::StaleObject { id });
        }
        let access = Access {
            offset: self.geometry.slot_offset(slot),
            len: self.state(slot).len(),
        };

        // SAFETY: as in `write` (the index was checked above); the length comes from the
        // state word, which never exceeds SLOT_SIZE because `write` refuses larger objects.
        let copied = unsafe {
            wbpf_pool_access(
                id.raw(),
                self.base(),
                access.offset,
                access.len,
                0,
                nanos(stall),
            )
        };
        debug_assert_eq!(copied, access.len, "reads always fill the staging buffer");
        let data = access::take_staged();

        // Released before or while it was copied: the bytes are garbage.
        self.live_slot(id)?;
        Ok((data, access))
    }

    fn initialise_or_check(&self) -> Result<(), DemoError> {
        let magic = self.word(layout::HDR_MAGIC);
        let claimed =
            magic.compare_exchange(0, layout::INIT_MAGIC, Ordering::AcqRel, Ordering::Acquire);
        if claimed.is_ok() {
            let geometry = self.geometry;
            self.word(layout::HDR_VERSION)
                .store(layout::LAYOUT_VERSION, Ordering::Relaxed);
            self.word(layout::HDR_SLOT_SIZE)
                .store(SLOT_SIZE, Ordering::Relaxed);
            self.word(layout::HDR_SLOT_COUNT)
                .store(geometry.slot_count, Ordering::Relaxed);
            self.word(layout::HDR_DATA_START)
                .store(geometry.data_start, Ordering::Relaxed);
            magic.store(layout::POOL_MAGIC, Ordering::Release);
            info!(path = %self.path.display(), slots = geometry.slot_count, "created pool");
            return Ok(());
        }

        let started = Instant::now();
        while magic.load(Ordering::Acquire) == layout::INIT_MAGIC {
            if started.elapsed() > INIT_WAIT {
                return Err(self.layout_error(
                    "its header was never finished (did its creator crash?); delete the file"
                        .to_owned(),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.check_header()
    }

    fn check_header(&self) -> Result<(), DemoError> {
        let read = |offset| self.word(offset).load(Ordering::Acquire);
        let found = read(layout::HDR_MAGIC);
        if found != layout::POOL_MAGIC {
            return Err(self.layout_error(format!("bad magic {found:#018x}")));
        }
        let expected = [
            ("version", layout::HDR_VERSION, layout::LAYOUT_VERSION),
            ("slot size", layout::HDR_SLOT_SIZE, SLOT_SIZE),
            (
                "slot count",
                layout::HDR_SLOT_COUNT,
                self.geometry.slot_count,
            ),
            (
                "data start",
                layout::HDR_DATA_START,
                self.geometry.data_start,
            ),
        ];
        for (field, offset, want) in expected {
            let found = read(offset);
            if found != want {
                return Err(self.layout_error(format!("{field} is {found}, expected {want}")));
            }
        }
        Ok(())
    }

    /// The slot of `id` if the object is still allocated with the same generation.
    fn live_slot(&self, id: ObjectId) -> Result<u64, DemoError> {
        let slot = id.slot();
        if slot >= self.geometry.slot_count {
            return Err(DemoError::StaleObject { id });
        }
        let state = self.state(slot);
        if !state.is_allocated() || state.generation() != id.generation() {
            return Err(DemoError::StaleObject { id });
        }
        Ok(slot)
    }

    /// Applies `change` to the state of the live object `id`, atomically.
    fn update_state(
        &self,
        id: ObjectId,
        change: impl Fn(SlotState) -> SlotState,
    ) -> Result<(), DemoError> {
        let slot = self.live_slot(id)?;
        let word = self.word(self.geometry.state_offset(slot));
        let mut current = SlotState(word.load(Ordering::Acquire));
        loop {
            if !current.is_allocated() || current.generation() != id.generation() {
                return Err(DemoError::StaleObject { id });
            }
            let next = change(current);
            match word.compare_exchange(current.0, next.0, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(()),
                Err(actual) => current = SlotState(actual),
            }
        }
    }

    fn state(&self, slot: u64) -> SlotState {
        SlotState(
            self.word(self.geometry.state_offset(slot))
                .load(Ordering::Acquire),
        )
    }

    /// The header or state word at file offset `offset`.
    fn word(&self, offset: u64) -> &AtomicU64 {
        let end = offset
            .checked_add(8)
            .and_then(|end| usize::try_from(end).ok());
        assert!(
            offset.is_multiple_of(8) && end.is_some_and(|end| end <= self.map.len()),
            "pool word offset {offset} outside the header"
        );
        // SAFETY: the mapping is page-aligned and `offset` is a multiple of 8, so the pointer
        // is aligned for u64; the assert keeps it in bounds; the returned reference borrows
        // `self`, which owns the mapping; every process touches header and state words only
        // through atomics.
        unsafe { AtomicU64::from_ptr(self.base().add(offset as usize).cast::<u64>()) }
    }

    fn base(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }

    fn layout_error(&self, reason: String) -> DemoError {
        DemoError::PoolLayout {
            path: self.path.clone(),
            reason,
        }
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
