//! `probabilistic`: keeps a share of traces chosen by hashing the trace id, with the Collector's
//! exact arithmetic so that both keep the same traces.
//!
//! The Collector hashes the salt followed by the 16 trace-id bytes with 64-bit FNV-1a and keeps
//! the trace if the hash is at most `threshold = (2^64 - 1) * percentage / 100`. That product is
//! computed with Go's `big.Float`: the ratio is a float64, the product is rounded to a 64-bit
//! mantissa (nearest, ties to even), then truncated to an integer. [`threshold_for_percentage`]
//! reproduces those roundings with integer arithmetic.

use wbpf_config::ProbabilisticConfig;

use super::{Decision, Policy};
use crate::TraceData;

/// The salt the Collector uses when `hash_salt` is empty.
const DEFAULT_HASH_SALT: &str = "default-hash-seed";

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

#[derive(Debug)]
pub struct Probabilistic {
    salt: String,
    threshold: u64,
}

impl Probabilistic {
    pub fn new(config: &ProbabilisticConfig) -> Self {
        let salt = if config.hash_salt.is_empty() {
            DEFAULT_HASH_SALT
        } else {
            &config.hash_salt
        };
        Self {
            salt: salt.to_owned(),
            threshold: threshold_for_percentage(config.sampling_percentage),
        }
    }
}

impl Policy for Probabilistic {
    fn evaluate(&self, trace: &TraceData, _now_ms: u64) -> Decision {
        if hash_trace_id(&self.salt, &trace.trace_id) <= self.threshold {
            Decision::Sampled
        } else {
            Decision::NotSampled
        }
    }
}

/// 64-bit FNV-1a over `salt` then `trace_id`.
pub fn hash_trace_id(salt: &str, trace_id: &[u8]) -> u64 {
    salt.as_bytes()
        .iter()
        .chain(trace_id)
        .fold(FNV_OFFSET_BASIS, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(FNV_PRIME)
        })
}

/// The Collector's threshold for `percentage`: `(2^64 - 1) * (percentage / 100)` rounded to a
/// 64-bit mantissa, truncated, and clamped to `0..=u64::MAX`.
pub fn threshold_for_percentage(percentage: f64) -> u64 {
    let ratio = percentage / 100.0;
    if ratio.is_nan() || ratio <= 0.0 {
        return 0;
    }
    if ratio >= 1.0 {
        return u64::MAX;
    }

    // ratio = mantissa * 2^-shift exactly, with mantissa < 2^53 and shift > 0 (as ratio < 1).
    let bits = ratio.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    let (mantissa, shift) = if exponent == 0 {
        (fraction, 1074)
    } else {
        (fraction | (1 << 52), 1075 - exponent)
    };

    // The exact product has at most 117 bits; round it to 64 significant bits, ties to even.
    let product = u128::from(u64::MAX) * u128::from(mantissa);
    let excess = (128 - product.leading_zeros()).saturating_sub(64);
    let rounded = round_shift(product, excess) << excess;

    // Truncate the rounded product times 2^-shift to an integer.
    let shift = u32::try_from(shift).unwrap_or(u32::MAX);
    let whole = rounded.checked_shr(shift).unwrap_or(0);
    u64::try_from(whole).unwrap_or(u64::MAX)
}

/// `value >> bits`, rounded to nearest with ties to even.
fn round_shift(value: u128, bits: u32) -> u128 {
    if bits == 0 {
        return value;
    }
    let kept = value >> bits;
    let rest = value & ((1u128 << bits) - 1);
    let half = 1u128 << (bits - 1);
    if rest > half || (rest == half && kept & 1 == 1) {
        kept + 1
    } else {
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        // Published FNV-1a 64 test vectors: "" and "a".
        assert_eq!(hash_trace_id("", b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash_trace_id("a", b""), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash_trace_id("fo", b"obar"), hash_trace_id("foobar", b""));
    }

    #[test]
    fn rounding_to_64_bits_carries_into_a_new_bit() {
        // A product just under a power of two rounds up to it: 2^64 - 1 stays as is, as the
        // Collector's big.Float keeps 64 bits; the clamp handles ratios of 1 and above.
        assert_eq!(round_shift(0b1011, 1), 0b110);
        assert_eq!(round_shift(0b1001, 1), 0b100);
        assert_eq!(round_shift(0b1010, 1), 0b101);
        assert_eq!(threshold_for_percentage(100.0), u64::MAX);
        assert_eq!(threshold_for_percentage(-1.0), 0);
        assert_eq!(threshold_for_percentage(f64::NAN), 0);
    }
}
