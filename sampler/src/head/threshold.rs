//! OpenTelemetry sampling thresholds: 56-bit numbers compared with a trace's randomness.
//!
//! A trace carries 56 bits of randomness `R` (the low 56 bits of a W3C level 2 trace id, or an
//! explicit `rv`). Sampling with probability `p` keeps it iff `R >= T` with
//! `T = 2^56 - round(p * 2^56)`. Because every sampler compares the same `R`, a trace kept at
//! `p` is kept at every `p' > p`: decisions are consistent across services and stages.

/// `2^56`: the number of distinct randomness values.
pub const MAX_ADJUSTED_COUNT: u64 = 1 << 56;

/// Hex digits of a full-precision threshold or randomness value.
const HEX_DIGITS: usize = 14;

/// A rejection threshold in `0..=2^56`; a trace is kept iff its randomness is at least this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Threshold(u64);

impl Threshold {
    /// Keeps everything (`th:0`).
    pub const ALWAYS: Threshold = Threshold(0);
    /// Keeps nothing; cannot be written as `th`.
    pub const NEVER: Threshold = Threshold(MAX_ADJUSTED_COUNT);

    /// The threshold for keeping a share `probability` of traces (clamped to `0..=1`).
    pub fn from_probability(probability: f64) -> Threshold {
        if probability.is_nan() || probability <= 0.0 {
            return Threshold::NEVER;
        }
        if probability >= 1.0 {
            return Threshold::ALWAYS;
        }
        // Multiplying by a power of two is exact; only the rounding to an integer is not.
        let kept = (probability * MAX_ADJUSTED_COUNT as f64).round() as u64;
        Threshold(MAX_ADJUSTED_COUNT - kept.min(MAX_ADJUSTED_COUNT))
    }

    /// Parses a `th` value: 1 to 14 lowercase hex digits, the missing ones trailing zeros.
    pub fn from_th(th: &str) -> Option<Threshold> {
        let digits_ok = th
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if th.is_empty() || th.len() > HEX_DIGITS || !digits_ok {
            return None;
        }
        let value = u64::from_str_radix(th, 16).ok()?;
        let scale = u32::try_from(4 * (HEX_DIGITS - th.len())).ok()?;
        Some(Threshold(value << scale))
    }

    /// The `th` value: 14 hex digits with trailing zeros removed (`0` for keep-all); `None` for
    /// [`Threshold::NEVER`], which has no encoding.
    pub fn to_th(self) -> Option<String> {
        if self.0 >= MAX_ADJUSTED_COUNT {
            return None;
        }
        if self.0 == 0 {
            return Some("0".to_owned());
        }
        let hex = format!("{:014x}", self.0);
        Some(hex.trim_end_matches('0').to_owned())
    }

    /// The raw value in `0..=2^56`.
    pub fn value(self) -> u64 {
        self.0
    }

    /// Whether a trace with this `randomness` is kept.
    pub fn keeps(self, randomness: u64) -> bool {
        randomness >= self.0
    }

    /// The share of traces this threshold keeps.
    pub fn probability(self) -> f64 {
        (MAX_ADJUSTED_COUNT - self.0) as f64 / MAX_ADJUSTED_COUNT as f64
    }
}

/// Parses an `rv` value: exactly 14 lowercase hex digits.
pub fn parse_rv(rv: &str) -> Option<u64> {
    let digits_ok = rv
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (rv.len() == HEX_DIGITS && digits_ok).then(|| u64::from_str_radix(rv, 16).ok())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_encode_as_the_spec_examples() {
        // Full 14-digit precision; trailing zeros are dropped, so powers of two stay short.
        let cases = [
            (1.0, "0"),
            (0.5, "8"),
            (0.25, "c"),
            (0.1, "e6666666666666"),
            (0.01, "fd70a3d70a3d71"),
        ];
        for (probability, th) in cases {
            let threshold = Threshold::from_probability(probability);
            assert_eq!(threshold.to_th().as_deref(), Some(th), "p={probability}");
            assert_eq!(Threshold::from_th(th), Some(threshold), "th={th}");
        }
        assert_eq!(Threshold::from_probability(0.0).to_th(), None);
        assert_eq!(Threshold::from_th("fd70a3d70a3d70a"), None, "15 digits");
        assert_eq!(Threshold::from_th("C"), None, "uppercase");
        assert_eq!(Threshold::from_th("c"), Some(Threshold(0xc << 52)));
    }

    #[test]
    fn rv_needs_exactly_14_hex_digits() {
        assert_eq!(parse_rv("0123456789abcd"), Some(0x0001_2345_6789_abcd));
        assert_eq!(parse_rv("0123456789abc"), None);
        assert_eq!(parse_rv("0123456789abcG"), None);
    }
}
