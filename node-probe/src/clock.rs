//! Converts the kernel's `bpf_ktime_get_ns` (CLOCK_MONOTONIC) timestamps to wall-clock time.
//!
//! The offset between the two clocks is measured once, when the probe starts. NTP slewing or a
//! wall-clock step afterwards is not followed, so span times drift by as much as the wall clock
//! is adjusted during the probe's life; re-measuring periodically would bound that.

use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::ProbeError;

/// Maps monotonic nanoseconds to `SystemTime`.
#[derive(Debug, Clone, Copy)]
pub struct KtimeClock {
    /// Wall-clock time at monotonic zero, as nanoseconds since the Unix epoch.
    epoch_offset_ns: i128,
}

impl KtimeClock {
    /// Measures the offset, bracketing the wall-clock read between two monotonic reads.
    pub fn measure() -> Result<KtimeClock, ProbeError> {
        let before = monotonic_ns()?;
        let wall = SystemTime::now();
        let after = monotonic_ns()?;

        let wall_ns = match wall.duration_since(UNIX_EPOCH) {
            Ok(since) => since.as_nanos() as i128,
            Err(before_epoch) => -(before_epoch.duration().as_nanos() as i128),
        };
        let monotonic = (before as i128 + after as i128) / 2;
        Ok(KtimeClock {
            epoch_offset_ns: wall_ns - monotonic,
        })
    }

    /// A clock with a known offset, for tests.
    #[cfg(test)]
    pub fn with_offset(epoch_offset_ns: i128) -> KtimeClock {
        KtimeClock { epoch_offset_ns }
    }

    pub fn to_system_time(self, ktime_ns: u64) -> SystemTime {
        let wall_ns = self.epoch_offset_ns + ktime_ns as i128;
        match u64::try_from(wall_ns) {
            Ok(ns) => UNIX_EPOCH + Duration::from_nanos(ns),
            // Only reachable with a wall clock set before 1970; clamp rather than panic.
            Err(_) => UNIX_EPOCH,
        }
    }
}

/// CLOCK_MONOTONIC now, in the nanoseconds `bpf_ktime_get_ns` counts.
pub fn monotonic_ns() -> Result<u64, ProbeError> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    if rc != 0 {
        return Err(ProbeError::Clock {
            source: io::Error::last_os_error(),
        });
    }
    Ok(now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ktime_maps_to_offset_plus_ktime() {
        let clock = KtimeClock::with_offset(1_700_000_000_000_000_000);
        let at = clock.to_system_time(2_500_000_000);
        let expected = UNIX_EPOCH + Duration::from_nanos(1_700_000_002_500_000_000);
        assert_eq!(at, expected);
    }

    #[test]
    fn a_fresh_measurement_puts_now_within_a_second_of_the_wall_clock() {
        let clock = KtimeClock::measure().expect("CLOCK_MONOTONIC is always readable");
        let mapped = clock.to_system_time(monotonic_ns().expect("readable"));
        let skew = match mapped.duration_since(SystemTime::now()) {
            Ok(ahead) => ahead,
            Err(behind) => behind.duration(),
        };
        assert!(skew < Duration::from_secs(1), "skew {skew:?}");
    }
}
