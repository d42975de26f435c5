//! Adaptive function-latency thresholds: a percentile of the latency histogram the kernel
//! keeps per detector, recomputed periodically and written where the kernel compares.
//!
//! Buckets (mirroring `hist_bucket` in `bpf/function_latency.bpf.c`): 0..3 hold exactly 0..3
//! ns; above, each power of two is split in four equal parts, so a bucket is at most a quarter
//! of an octave (≤ 25 %) wide. The percentile is interpolated linearly inside its bucket.
//!
//! The histogram counts every call since the detector was attached, so the threshold settles
//! and then follows a changed workload only slowly. Decaying the counts (halving them each
//! interval, or diffing snapshots over a sliding window) would make it track drift.

use std::time::Duration;

use aya::maps::{Array, MapData, PerCpuArray};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

/// Must equal `WBPF_HIST_BUCKETS` in `bpf/wbpf.h`.
pub const BUCKETS: usize = 256;
const RECOMPUTE_INTERVAL: Duration = Duration::from_secs(1);

/// One detector whose threshold follows a percentile.
#[derive(Debug, Clone)]
pub struct Adaptive {
    pub index: u32,
    pub name: String,
    pub percentile: f64,
    pub min_samples: u64,
}

/// The half-open range `[low, high)` of nanoseconds bucket `bucket` counts.
pub fn bucket_bounds(bucket: usize) -> (u64, u64) {
    if bucket < 4 {
        return (bucket as u64, bucket as u64 + 1);
    }
    let msb = bucket / 4 + 1;
    let quarter = (bucket % 4) as u64;
    let low = (4 + quarter) << (msb - 2);
    // The top bucket's end is 2^64, which saturates.
    let high = u64::try_from(u128::from(5 + quarter) << (msb - 2)).unwrap_or(u64::MAX);
    (low, high)
}

/// The latency below which `percentile` % of the counted calls fall, or `None` with fewer than
/// `min_samples` calls.
pub fn threshold_at(histogram: &[u64], percentile: f64, min_samples: u64) -> Option<u64> {
    let total: u64 = histogram.iter().sum();
    if total == 0 || total < min_samples {
        return None;
    }
    let rank = (percentile / 100.0 * total as f64).ceil().max(1.0);

    let mut below = 0u64;
    for (bucket, &count) in histogram.iter().enumerate() {
        if count == 0 {
            continue;
        }
        if (below + count) as f64 >= rank {
            let (low, high) = bucket_bounds(bucket);
            let fraction = ((rank - below as f64) / count as f64).clamp(0.0, 1.0);
            return Some(low + ((high - low) as f64 * fraction) as u64);
        }
        below += count;
    }
    histogram
        .iter()
        .rposition(|&count| count > 0)
        .map(|bucket| bucket_bounds(bucket).1)
}

/// Spawns the task that recomputes every adaptive detector's threshold once a second until
/// `stop` changes or its sender is dropped.
pub fn spawn(
    histogram: PerCpuArray<MapData, u64>,
    thresholds: Array<MapData, u64>,
    detectors: Vec<Adaptive>,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(run(histogram, thresholds, detectors, stop))
}

async fn run(
    histogram: PerCpuArray<MapData, u64>,
    mut thresholds: Array<MapData, u64>,
    detectors: Vec<Adaptive>,
    mut stop: watch::Receiver<bool>,
) {
    let mut current: Vec<Option<u64>> = vec![None; detectors.len()];
    let mut tick = tokio::time::interval(RECOMPUTE_INTERVAL);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {}
        }
        for (detector, current) in detectors.iter().zip(current.iter_mut()) {
            let Some(counts) = read(&histogram, detector.index) else {
                continue;
            };
            let threshold = threshold_at(&counts, detector.percentile, detector.min_samples);
            if threshold == *current {
                continue;
            }
            if let Err(error) = thresholds.set(detector.index, threshold.unwrap_or(u64::MAX), 0) {
                warn!(detector = %detector.name, %error, "writing the adaptive threshold failed");
                continue;
            }
            if current.is_none() {
                info!(
                    detector = %detector.name,
                    threshold_ns = threshold,
                    samples = counts.iter().sum::<u64>(),
                    "adaptive threshold armed"
                );
            } else {
                debug!(detector = %detector.name, threshold_ns = threshold, "adaptive threshold");
            }
            *current = threshold;
        }
    }
}

/// Sums one detector's buckets over all CPUs; `None` (logged) if the map cannot be read.
fn read(histogram: &PerCpuArray<MapData, u64>, detector: u32) -> Option<Vec<u64>> {
    let first = detector as usize * BUCKETS;
    (first..first + BUCKETS)
        .map(|key| {
            let key = u32::try_from(key).expect("below MAX_DETECTORS * BUCKETS");
            histogram.get(&key, 0).map(|values| values.iter().sum())
        })
        .collect::<Result<Vec<u64>, _>>()
        .map_err(|error| warn!(detector, %error, "reading the latency histogram failed"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's bucket function, transcribed.
    fn bucket_of(value: u64) -> usize {
        if value < 4 {
            return value as usize;
        }
        let msb = 63 - value.leading_zeros() as usize;
        4 * (msb - 1) + ((value >> (msb - 2)) & 3) as usize
    }

    #[test]
    fn every_value_falls_inside_its_buckets_bounds() {
        for value in (0..5000).chain([1 << 20, 6_000_000, u64::MAX / 3, u64::MAX]) {
            let bucket = bucket_of(value);
            assert!(bucket < BUCKETS);
            let (low, high) = bucket_bounds(bucket);
            assert!(
                low <= value && (value < high || high == u64::MAX),
                "{value}: {low}..{high}"
            );
        }
    }

    #[test]
    fn the_percentile_interpolates_inside_its_bucket() {
        let mut histogram = vec![0u64; BUCKETS];
        // 990 fast calls near 1 µs, 10 slow ones near 6 ms.
        histogram[bucket_of(1_000)] = 990;
        histogram[bucket_of(6_000_000)] = 10;

        let p99 = threshold_at(&histogram, 99.0, 1000).expect("enough samples");
        let (_, fast_high) = bucket_bounds(bucket_of(1_000));
        assert_eq!(
            p99, fast_high,
            "p99 ends the fast bucket: all slow calls are above"
        );

        let (slow_low, slow_high) = bucket_bounds(bucket_of(6_000_000));
        let p995 = threshold_at(&histogram, 99.5, 1000).expect("enough samples");
        assert!(
            slow_low < p995 && p995 < slow_high,
            "{p995} inside {slow_low}..{slow_high}"
        );
    }

    #[test]
    fn too_few_samples_give_no_threshold() {
        let mut histogram = vec![0u64; BUCKETS];
        histogram[20] = 999;
        assert_eq!(threshold_at(&histogram, 99.9, 1000), None);
        assert_eq!(threshold_at(&vec![0; BUCKETS], 50.0, 0), None);
    }
}
