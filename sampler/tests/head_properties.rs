//! Head sampling keeps the configured share of random trace ids, consistently across rates.

use proptest::prelude::*;
use wbpf_sampler::head::{incoming_threshold, with_threshold};
use wbpf_sampler::{HeadSampler, Threshold};

/// `count` pseudo-random trace ids from `seed` (splitmix64).
fn trace_ids(seed: u64, count: usize) -> Vec<[u8; 16]> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    (0..count)
        .map(|_| {
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&next().to_be_bytes());
            id[8..].copy_from_slice(&next().to_be_bytes());
            id
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn keeps_the_configured_share(percentage in 0.5f64..99.5, seed in any::<u64>()) {
        const COUNT: usize = 20_000;
        let sampler = HeadSampler::new(percentage).unwrap();
        let kept = trace_ids(seed, COUNT).iter().filter(|id| sampler.decide(id, "").keep).count();
        let share = kept as f64 / COUNT as f64;
        // Five standard deviations of a binomial share at 20 000 draws is at most 0.018.
        let error = (share - percentage / 100.0).abs();
        prop_assert!(error < 0.018, "kept {} at {}%", share, percentage);
    }

    #[test]
    fn a_trace_kept_at_p_is_kept_at_every_higher_p(
        id in any::<[u8; 16]>(),
        low in 0.0f64..=100.0,
        high in 0.0f64..=100.0,
    ) {
        let (low, high) = if low <= high { (low, high) } else { (high, low) };
        let at_low = HeadSampler::new(low).unwrap().decide(&id, "").keep;
        let at_high = HeadSampler::new(high).unwrap().decide(&id, "").keep;
        prop_assert!(!at_low || at_high, "kept at {}% but not at {}%", low, high);
    }

    #[test]
    fn th_round_trips(value in 0u64..(1 << 56), tracestate in "(a=1,)?(ot=rv:0123456789abcd)?") {
        let threshold = Threshold::from_th(&format!("{value:014x}")).unwrap();
        prop_assert_eq!(threshold.value(), value);
        let written = with_threshold(&tracestate, threshold);
        prop_assert_eq!(incoming_threshold(&written), Some(threshold));
        prop_assert_eq!(written.contains("rv:0123456789abcd"), tracestate.contains("rv:"));
    }

    #[test]
    fn only_the_low_56_bits_decide(
        id in any::<[u8; 16]>(),
        high in any::<[u8; 9]>(),
        p in 0.0f64..=100.0,
    ) {
        let mut other = id;
        other[..9].copy_from_slice(&high);
        let sampler = HeadSampler::new(p).unwrap();
        prop_assert_eq!(sampler.decide(&id, "").keep, sampler.decide(&other, "").keep);
    }
}
