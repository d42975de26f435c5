//! [`Decision`]: what was decided for a trace, as stored in the decisions column family.

use crate::StorageError;

/// A recorded sampling decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The trace was released; its late spans are forwarded at once.
    Keep { decided_at_ms: u64 },
    /// The trace was sampled out; its late spans are dropped.
    Drop { decided_at_ms: u64 },
}

impl Decision {
    /// When the decision was made, in ms since the epoch.
    pub fn decided_at_ms(self) -> u64 {
        match self {
            Decision::Keep { decided_at_ms } | Decision::Drop { decided_at_ms } => decided_at_ms,
        }
    }

    /// Whether the trace is kept.
    pub fn is_keep(self) -> bool {
        matches!(self, Decision::Keep { .. })
    }

    pub(crate) fn encode(self) -> [u8; 9] {
        let mut value = [0u8; 9];
        value[0] = if self.is_keep() { 1 } else { 2 };
        value[1..].copy_from_slice(&self.decided_at_ms().to_be_bytes());
        value
    }

    pub(crate) fn decode(value: &[u8]) -> Result<Self, StorageError> {
        match value {
            [kind @ (1 | 2), rest @ ..] if rest.len() == 8 => {
                let ms = u64::from_be_bytes(rest.try_into().expect("length checked above"));
                Ok(if *kind == 1 {
                    Decision::Keep { decided_at_ms: ms }
                } else {
                    Decision::Drop { decided_at_ms: ms }
                })
            }
            _ => Err(StorageError::Corrupt {
                what: "decision",
                detail: format!("unexpected value of {} bytes", value.len()),
            }),
        }
    }
}
