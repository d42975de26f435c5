//! Where things live in the pool file, and how a slot's state word is encoded.
//!
//! The file starts with a header of 64-bit words, followed by one state word per slot, followed
//! (page-aligned) by the fixed-size slots themselves:
//!
//! ```text
//! 0   magic      "WBPFPOOL" once initialised ("WBPFINIT" while a process initialises it)
//! 8   version    LAYOUT_VERSION
//! 16  slot size  bytes per slot
//! 24  slot count
//! 32  data start offset of slot 0
//! 40  cursor     where the next allocation starts looking (round robin)
//! 64  state[i]   one word per slot, see `SlotState`
//! ```

use std::fmt;

/// The magic word of an initialised pool.
pub(crate) const POOL_MAGIC: u64 = u64::from_be_bytes(*b"WBPFPOOL");
/// The magic word while the creating process writes the header.
pub(crate) const INIT_MAGIC: u64 = u64::from_be_bytes(*b"WBPFINIT");
/// Bumped whenever the layout below changes.
pub(crate) const LAYOUT_VERSION: u64 = 1;

pub(crate) const HDR_MAGIC: u64 = 0;
pub(crate) const HDR_VERSION: u64 = 8;
pub(crate) const HDR_SLOT_SIZE: u64 = 16;
pub(crate) const HDR_SLOT_COUNT: u64 = 24;
pub(crate) const HDR_DATA_START: u64 = 32;
pub(crate) const HDR_CURSOR: u64 = 40;
const STATE_TABLE: u64 = 64;

/// Bytes per slot: one page, so a stall or fault on an object maps to exactly one page.
pub const SLOT_SIZE: u64 = 4096;

/// How the slots of a pool of a given size are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) slot_count: u64,
    pub(crate) data_start: u64,
}

impl Geometry {
    /// The largest layout that fits `size` bytes, or `None` if not even one slot fits.
    pub(crate) fn for_size(size: u64) -> Option<Self> {
        let mut slot_count = size.checked_sub(STATE_TABLE)? / (SLOT_SIZE + 8);
        while slot_count > 0 {
            let data_start = (STATE_TABLE + slot_count * 8).next_multiple_of(SLOT_SIZE);
            if data_start + slot_count * SLOT_SIZE <= size {
                return Some(Self {
                    slot_count,
                    data_start,
                });
            }
            slot_count -= 1;
        }
        None
    }

    /// File offset of the state word of `slot` (`slot < slot_count`).
    pub(crate) fn state_offset(&self, slot: u64) -> u64 {
        STATE_TABLE + slot * 8
    }

    /// File offset of the first byte of `slot` (`slot < slot_count`).
    pub(crate) fn slot_offset(&self, slot: u64) -> u64 {
        self.data_start + slot * SLOT_SIZE
    }
}

/// A slot's state word: generation (high 32 bits), allocated flag (bit 31), length (bits 0-30).
///
/// The generation is bumped on every allocation, so an id kept after its object was released
/// no longer matches the slot: that is how a read after release is detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotState(pub(crate) u64);

const ALLOCATED: u64 = 1 << 31;
const LEN_MASK: u64 = ALLOCATED - 1;

impl SlotState {
    pub(crate) fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }

    pub(crate) fn is_allocated(self) -> bool {
        self.0 & ALLOCATED != 0
    }

    pub(crate) fn len(self) -> u64 {
        self.0 & LEN_MASK
    }

    /// A freshly allocated, empty slot of the given generation.
    pub(crate) fn allocated(generation: u32) -> Self {
        Self((u64::from(generation) << 32) | ALLOCATED)
    }

    pub(crate) fn with_len(self, len: u64) -> Self {
        Self((self.0 & !LEN_MASK) | (len & LEN_MASK))
    }

    /// The same slot, free; the generation is kept so the next allocation can bump it.
    pub(crate) fn released(self) -> Self {
        Self(self.0 & !(ALLOCATED | LEN_MASK))
    }
}

/// Identifies one object: its slot and the generation the slot had when it was allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjectId(u64);

impl ObjectId {
    pub(crate) fn new(slot: u64, generation: u32) -> Self {
        Self((u64::from(generation) << 32) | (slot & u64::from(u32::MAX)))
    }

    /// The slot index.
    pub fn slot(self) -> u64 {
        self.0 & u64::from(u32::MAX)
    }

    /// The slot's generation at allocation time.
    pub fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The raw 64-bit value (generation << 32 | slot), as recorded in span attributes.
    pub fn raw(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.slot(), self.generation())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_fits_the_file() {
        for size in [64 << 20, 1 << 20, 3 * SLOT_SIZE, 10_000] {
            let geometry = Geometry::for_size(size).expect("at least one slot fits");
            let end = geometry.slot_offset(geometry.slot_count);
            assert!(end <= size, "size {size}: slots end at {end}");
            assert!(geometry.state_offset(geometry.slot_count) <= geometry.data_start);
            assert_eq!(geometry.data_start % SLOT_SIZE, 0);
        }
        assert_eq!(Geometry::for_size(SLOT_SIZE), None);
    }

    #[test]
    fn default_pool_has_about_sixteen_thousand_slots() {
        let geometry = Geometry::for_size(64 << 20).expect("fits");
        assert_eq!(geometry.data_start, 32 * SLOT_SIZE);
        assert_eq!(geometry.slot_count, 16384 - 32);
    }

    #[test]
    fn state_word_round_trips() {
        let state = SlotState::allocated(7).with_len(300);
        assert!(state.is_allocated());
        assert_eq!((state.generation(), state.len()), (7, 300));
        let free = state.released();
        assert!(!free.is_allocated());
        assert_eq!((free.generation(), free.len()), (7, 0));
    }

    #[test]
    fn object_id_packs_slot_and_generation() {
        let id = ObjectId::new(12, 3);
        assert_eq!((id.slot(), id.generation()), (12, 3));
        assert_eq!(id.to_string(), "12.3");
    }
}
