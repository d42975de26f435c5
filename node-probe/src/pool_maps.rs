//! Where memory pools are mapped: found in `/proc/<pid>/maps`, written to the pool-fault
//! object's `pool_ranges` map (thread group id → up to eight address ranges).
//!
//! Every rescan reads the maps of every process on the machine, adds or rewrites the entries
//! of processes whose pool mappings changed and deletes those of processes that no longer map
//! a pool (or exited). A process that maps a pool and faults on it before the next rescan is
//! not watched for those faults. Reading all maps costs roughly a millisecond per hundred
//! processes; inotify on the pool files cannot replace it (mmap is not a file event).

use std::collections::HashMap;
use std::time::Duration;

use aya::maps::{HashMap as BpfHashMap, MapData};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, error, warn};

use crate::ProbeError;

/// Must equal `WBPF_MAX_POOL_RANGES` and `WBPF_MAX_POOL_PROCS` in `bpf/wbpf.h`.
const MAX_RANGES: usize = 8;
const MAX_PROCS: usize = 1024;

/// One pool mapping of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u64,
    pub end: u64,
    /// The pool (file) offset mapped at `start`.
    pub file_offset: u64,
}

/// Mirrors `struct wbpf_pool_ranges` in `bpf/wbpf.h`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct KernelRanges {
    count: u32,
    reserved: u32,
    ranges: [[u64; 3]; MAX_RANGES],
}

// SAFETY: `repr(C)`, only integers, no padding (2 u32 then 24 u64): every bit pattern is valid.
unsafe impl aya::Pod for KernelRanges {}

impl KernelRanges {
    fn new(ranges: &[Range]) -> KernelRanges {
        let mut kernel = KernelRanges {
            count: 0,
            reserved: 0,
            ranges: [[0; 3]; MAX_RANGES],
        };
        for (slot, range) in kernel.ranges.iter_mut().zip(ranges) {
            *slot = [range.start, range.end, range.file_offset];
            kernel.count += 1;
        }
        kernel
    }
}

/// The pool mapping described by one line of `/proc/<pid>/maps`, if its path starts with one
/// of `prefixes`. A line reads `start-end perms offset dev inode [path]`, hex numbers.
pub fn parse_line(line: &str, prefixes: &[String]) -> Option<Range> {
    let mut rest = line;
    let mut field = || {
        let trimmed = rest.trim_start();
        let end = trimmed.find(' ').unwrap_or(trimmed.len());
        let (field, tail) = trimmed.split_at(end);
        rest = tail;
        field
    };
    let addresses = field();
    let _perms = field();
    let offset = field();
    let _device = field();
    let _inode = field();
    let path = rest.trim();
    if !prefixes
        .iter()
        .any(|prefix| path.starts_with(prefix.as_str()))
    {
        return None;
    }

    let (start, end) = addresses.split_once('-')?;
    Some(Range {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        file_offset: u64::from_str_radix(offset, 16).ok()?,
    })
}

/// Every process's pool mappings, by thread group id.
fn find_mappings(prefixes: &[String]) -> HashMap<u32, Vec<Range>> {
    let mut found = HashMap::new();
    let Ok(proc_dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in proc_dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse().ok())
        else {
            continue;
        };
        // Exited since the listing, or a kernel thread: nothing to watch.
        let Ok(maps) = std::fs::read_to_string(entry.path().join("maps")) else {
            continue;
        };
        let ranges: Vec<Range> = maps
            .lines()
            .filter_map(|line| parse_line(line, prefixes))
            .collect();
        if !ranges.is_empty() {
            found.insert(pid, ranges);
        }
    }
    found
}

/// The scan's state, moved to a blocking thread for each rescan.
pub struct RangeScan {
    ranges: BpfHashMap<MapData, u32, KernelRanges>,
    prefixes: Vec<String>,
    /// What the kernel map holds.
    written: HashMap<u32, Vec<Range>>,
    /// Warnings given once: too many ranges in a process, too many processes, map errors.
    warned: bool,
}

impl RangeScan {
    pub fn new(ranges: BpfHashMap<MapData, u32, KernelRanges>, prefixes: Vec<String>) -> Self {
        RangeScan {
            ranges,
            prefixes,
            written: HashMap::new(),
            warned: false,
        }
    }

    fn rescan(&mut self) {
        let found = find_mappings(&self.prefixes);

        let gone: Vec<u32> = self
            .written
            .keys()
            .filter(|pid| !found.contains_key(pid))
            .copied()
            .collect();
        for pid in gone {
            // Ignored error: an entry that is already absent is what we want.
            let _ = self.ranges.remove(&pid);
            self.written.remove(&pid);
            debug!(pid, "process no longer maps a pool");
        }

        for (pid, ranges) in found {
            if self.written.get(&pid) == Some(&ranges) {
                continue;
            }
            if ranges.len() > MAX_RANGES || self.written.len() >= MAX_PROCS {
                self.warn_once(
                    pid,
                    "pool mappings beyond the kernel table's bounds not watched",
                );
            }
            if self.written.len() >= MAX_PROCS && !self.written.contains_key(&pid) {
                continue;
            }
            match self.ranges.insert(pid, KernelRanges::new(&ranges), 0) {
                Ok(()) => {
                    debug!(
                        pid,
                        ranges = ranges.len(),
                        "watching pool faults of process"
                    );
                    self.written.insert(pid, ranges);
                }
                Err(err) => self.warn_once(pid, &format!("writing pool ranges failed: {err}")),
            }
        }
    }

    fn warn_once(&mut self, pid: u32, message: &str) {
        if !self.warned {
            self.warned = true;
            warn!(pid, "{message}");
        }
    }
}

/// Runs one scan now, then spawns the task rescanning every `interval` until `stop` changes
/// or its sender is dropped.
pub async fn spawn(
    scan: RangeScan,
    interval: Duration,
    stop: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, ProbeError> {
    let scan = rescan(scan).await.map_err(|source| ProbeError::Task {
        task: "pool range scan",
        source,
    })?;
    Ok(tokio::spawn(run(scan, interval, stop)))
}

async fn rescan(mut scan: RangeScan) -> Result<RangeScan, tokio::task::JoinError> {
    tokio::task::spawn_blocking(move || {
        scan.rescan();
        scan
    })
    .await
}

async fn run(scan: RangeScan, interval: Duration, mut stop: watch::Receiver<bool>) {
    let mut scan = Some(scan);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {}
        }
        let Some(current) = scan.take() else {
            break;
        };
        match rescan(current).await {
            Ok(back) => scan = Some(back),
            Err(err) => {
                error!(error = %err, "pool range scan failed; new pool mappings are not watched");
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixes() -> Vec<String> {
        vec!["/dev/shm/wbpf-pool-".to_owned(), "/dev/dax".to_owned()]
    }

    #[test]
    fn pool_lines_parse_and_others_are_skipped() {
        let pool = "7f1c2a000000-7f1c2e000000 rw-s 00001000 00:1a 4242      \
                    /dev/shm/wbpf-pool-77 (deleted)";
        assert_eq!(
            parse_line(pool, &prefixes()),
            Some(Range {
                start: 0x7f1c_2a00_0000,
                end: 0x7f1c_2e00_0000,
                file_offset: 0x1000,
            })
        );
        let dax = "7f0000000000-7f0040000000 rw-s 00000000 00:06 12 /dev/dax0.0";
        assert!(parse_line(dax, &prefixes()).is_some());

        let libc = "7f1c2e000000-7f1c2e028000 r--p 00000000 08:01 131 /usr/lib/libc.so.6";
        let anonymous = "7ffd1c000000-7ffd1c021000 rw-p 00000000 00:00 0";
        assert_eq!(parse_line(libc, &prefixes()), None);
        assert_eq!(parse_line(anonymous, &prefixes()), None);
        assert_eq!(parse_line("", &prefixes()), None);
    }

    #[test]
    fn kernel_ranges_hold_at_most_eight_mappings() {
        let range = Range {
            start: 0x1000,
            end: 0x2000,
            file_offset: 0,
        };
        let kernel = KernelRanges::new(&[range; 10]);
        assert_eq!(kernel.count, 8);
        assert_eq!(kernel.ranges[7], [0x1000, 0x2000, 0]);
        assert_eq!(std::mem::size_of::<KernelRanges>(), 8 + 24 * 8);
    }

    #[test]
    fn this_process_maps_no_pool() {
        let found = find_mappings(&["/dev/shm/wbpf-pool-no-such-".to_owned()]);
        assert!(!found.contains_key(&std::process::id()));
    }
}
