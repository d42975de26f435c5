//! Key layouts of the column families.

use std::fmt;

use crate::StorageError;

/// A 16-byte W3C / OTLP trace id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(pub [u8; 16]);

impl TraceId {
    /// Reads a trace id from exactly 16 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// The smallest key after every key starting with this trace id.
    pub(crate) fn successor(self) -> Option<[u8; 16]> {
        let mut next = self.0;
        for byte in next.iter_mut().rev() {
            if *byte == u8::MAX {
                *byte = 0;
            } else {
                *byte += 1;
                return Some(next);
            }
        }
        None
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// `trace id ‖ sequence (big endian)`: spans of one trace are contiguous, in arrival order.
pub(crate) fn span_key(trace: TraceId, seq: u64) -> [u8; 24] {
    let mut key = [0u8; 24];
    key[..16].copy_from_slice(&trace.0);
    key[16..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// `first seen, ms since the epoch (big endian) ‖ trace id`: oldest traces sort first.
pub(crate) fn expiry_key(first_seen_ms: u64, trace: TraceId) -> [u8; 24] {
    let mut key = [0u8; 24];
    key[..8].copy_from_slice(&first_seen_ms.to_be_bytes());
    key[8..].copy_from_slice(&trace.0);
    key
}

/// Splits an expiry key back into its parts.
pub(crate) fn parse_expiry_key(key: &[u8]) -> Option<(u64, TraceId)> {
    if key.len() != 24 {
        return None;
    }
    let ms = u64::from_be_bytes(key[..8].try_into().ok()?);
    Some((ms, TraceId::from_slice(&key[8..])?))
}

/// `sequence (big endian)`: the export queue, in the order traces were released.
pub(crate) fn outbox_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// Reads an export queue key back.
pub(crate) fn parse_outbox_key(key: &[u8]) -> Result<u64, StorageError> {
    key.try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| StorageError::Corrupt {
            what: "export queue key",
            detail: format!("{} bytes", key.len()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_carries_over_trailing_ff_bytes() {
        let mut id = [0u8; 16];
        id[14] = 1;
        id[15] = 0xff;
        let next = TraceId(id).successor().unwrap();
        assert_eq!(next[14], 2);
        assert_eq!(next[15], 0);
        assert_eq!(TraceId([0xff; 16]).successor(), None);
    }

    #[test]
    fn expiry_keys_sort_by_time_then_trace() {
        let a = expiry_key(5, TraceId([9; 16]));
        let b = expiry_key(6, TraceId([1; 16]));
        assert!(a < b);
        assert_eq!(parse_expiry_key(&a), Some((5, TraceId([9; 16]))));
    }
}
