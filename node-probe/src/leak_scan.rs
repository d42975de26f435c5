//! Finds leaked pool objects by scanning the kernel's table of live objects.
//!
//! A leak is an absence (no release, no access), so no probe fires for it: every scan interval this
//! task walks `live_objects` and reports each object past the leak age, once, in the trace that
//! allocated it (the trigger is dated at the allocation, by the allocating thread). The walk is
//! bounded by the map's size; each entry costs two syscalls (next key, lookup), so a full table of
//! 32768 objects takes a few tens of milliseconds of one core per scan. Objects the kernel deletes
//! mid-walk may make it restart from the start (hash map iteration), which the bound also caps.

use std::collections::HashSet;
use std::time::Duration;

use aya::maps::{HashMap, MapData, MapError};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, error, trace, warn};

use crate::clock;
use crate::events::{comm_string, Event, Kind, TraceContext, COMM_LEN, FLAG_HAS_CONTEXT};
use crate::handler::EventHandler;
use crate::pool_objects::Leak;

/// Must equal `WBPF_MAX_POOL_OBJECTS` in `bpf/wbpf.h`.
const MAX_OBJECTS: usize = 32768;

/// Mirrors `struct wbpf_pool_object` in `bpf/wbpf.h`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolObject {
    pub alloc_ns: u64,
    pub last_access_ns: u64,
    pub accesses: u64,
    pub trace_id_hi: u64,
    pub trace_id_lo: u64,
    pub span_id: u64,
    pub pid: u32,
    pub tid: u32,
    pub flags: u32,
    pub reserved: u32,
    pub comm: [u8; COMM_LEN],
}

// SAFETY: `repr(C)`, only integers and a byte array, no padding (6 u64, 4 u32, 16 bytes = 80):
// every bit pattern is valid.
unsafe impl aya::Pod for PoolObject {}

impl PoolObject {
    /// Nanoseconds since the last access, or since the allocation if there was none.
    fn idle_ns(&self, now_ns: u64) -> u64 {
        now_ns.saturating_sub(self.alloc_ns.max(self.last_access_ns))
    }

    fn is_leak(&self, leak: Leak, now_ns: u64) -> bool {
        let age_ns = u64::try_from(leak.age.as_nanos()).unwrap_or(u64::MAX);
        let alive_ns = now_ns.saturating_sub(self.alloc_ns);
        if alive_ns < age_ns {
            return false;
        }
        if leak.idle {
            self.idle_ns(now_ns) >= age_ns
        } else {
            self.accesses == 0
        }
    }

    /// The trigger event for this object as a leak seen at `now_ns`.
    fn leak_event(&self, object_id: u64, detector: u32, leak: Leak, now_ns: u64) -> Event {
        let trace = (self.flags & u32::from(FLAG_HAS_CONTEXT) != 0)
            .then(|| TraceContext::from_words(self.trace_id_hi, self.trace_id_lo, self.span_id));
        let signed = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        Event {
            kind: Kind::PoolLeak,
            // The leak's moment is the allocation, by the allocating thread: that is what the
            // gateway matches a trigger without trace context against.
            ktime_ns: self.alloc_ns,
            duration_ns: 0,
            threshold_ns: u64::try_from(leak.age.as_nanos()).unwrap_or(u64::MAX),
            trace,
            pid: self.pid,
            tid: self.tid,
            detector,
            comm: comm_string(&self.comm),
            evidence: [
                object_id as i64,
                signed(now_ns.saturating_sub(self.alloc_ns)),
                signed(self.idle_ns(now_ns)),
                signed(self.accesses),
            ],
        }
    }
}

/// The scanner's state, moved to a blocking thread for each scan.
pub struct LeakScan {
    objects: HashMap<MapData, u64, PoolObject>,
    detector: u32,
    leak: Leak,
    handler: EventHandler,
    /// Objects already reported and still alive at the last complete scan.
    reported: HashSet<u64>,
    read_errors: u64,
}

impl LeakScan {
    pub fn new(
        objects: HashMap<MapData, u64, PoolObject>,
        detector: u32,
        leak: Leak,
        handler: EventHandler,
    ) -> LeakScan {
        LeakScan {
            objects,
            detector,
            leak,
            handler,
            reported: HashSet::new(),
            read_errors: 0,
        }
    }

    /// One walk over the live objects; reports new leaks.
    fn scan(&mut self) {
        let now_ns = match clock::monotonic_ns() {
            Ok(now) => now,
            Err(err) => {
                warn!(error = %err, "no clock; leak scan skipped");
                return;
            }
        };

        let mut alive = HashSet::with_capacity(self.reported.len());
        let mut visited = 0;
        let mut complete = true;
        let mut found = Vec::new();
        for entry in self.objects.iter() {
            visited += 1;
            if visited > MAX_OBJECTS {
                complete = false;
                break;
            }
            let (id, object) = match entry {
                Ok(entry) => entry,
                // Released between the key and the lookup.
                Err(MapError::KeyNotFound) => continue,
                Err(err) => {
                    self.read_errors += 1;
                    if self.read_errors == 1 {
                        warn!(error = %err, "reading live pool objects failed");
                    }
                    complete = false;
                    break;
                }
            };
            if !object.is_leak(self.leak, now_ns) {
                continue;
            }
            alive.insert(id);
            if !self.reported.contains(&id) {
                found.push(object.leak_event(id, self.detector, self.leak, now_ns));
            }
        }

        for event in &found {
            self.handler.emit(event);
        }
        if complete {
            self.reported = alive;
        } else {
            self.reported.extend(alive);
        }
        if found.is_empty() {
            trace!(visited, "leak scan");
        } else {
            debug!(visited, leaks = found.len(), "leak scan");
        }
    }
}

/// Spawns the task scanning every `interval` until `stop` changes or its sender is dropped.
pub fn spawn(scan: LeakScan, interval: Duration, stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(run(scan, interval, stop))
}

async fn run(scan: LeakScan, interval: Duration, mut stop: watch::Receiver<bool>) {
    let mut scan = Some(scan);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {}
        }
        let Some(mut current) = scan.take() else {
            break;
        };
        let scanned = tokio::task::spawn_blocking(move || {
            current.scan();
            current
        })
        .await;
        match scanned {
            Ok(back) => scan = Some(back),
            Err(err) => {
                error!(error = %err, "leak scan failed; no more leak triggers");
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    fn object(alloc_ns: u64, last_access_ns: u64, accesses: u64) -> PoolObject {
        PoolObject {
            alloc_ns,
            last_access_ns,
            accesses,
            trace_id_hi: 0x0102_0304_0506_0708,
            trace_id_lo: 0x090a_0b0c_0d0e_0f10,
            span_id: 0x1112_1314_1516_1718,
            pid: 7,
            tid: 8,
            flags: 1,
            reserved: 0,
            comm: *b"frontend\0\0\0\0\0\0\0\0",
        }
    }

    fn leak(idle: bool) -> Leak {
        Leak {
            age: Duration::from_secs(10),
            idle,
        }
    }

    #[test]
    fn the_layout_matches_the_kernel_struct() {
        assert_eq!(std::mem::size_of::<PoolObject>(), 80);
    }

    #[test]
    fn unused_objects_leak_after_the_age_and_used_ones_only_when_idle_counts() {
        let now = 100 * SECOND;
        let never_used = object(now - 11 * SECOND, 0, 0);
        let young = object(now - 9 * SECOND, 0, 0);
        let used_long_ago = object(now - 60 * SECOND, now - 30 * SECOND, 3);
        let used_recently = object(now - 60 * SECOND, now - SECOND, 3);

        assert!(never_used.is_leak(leak(false), now));
        assert!(!young.is_leak(leak(false), now));
        assert!(!used_long_ago.is_leak(leak(false), now));
        assert!(used_long_ago.is_leak(leak(true), now));
        assert!(!used_recently.is_leak(leak(true), now));
    }

    #[test]
    fn a_leak_is_reported_in_the_allocating_trace_with_its_ages() {
        let now = 100 * SECOND;
        let event =
            object(now - 60 * SECOND, now - 30 * SECOND, 3).leak_event(42, 5, leak(true), now);

        assert_eq!(event.kind, Kind::PoolLeak);
        assert_eq!(event.ktime_ns, now - 60 * SECOND, "dated at the allocation");
        assert_eq!((event.pid, event.tid, event.detector), (7, 8, 5));
        assert_eq!(event.comm, "frontend");
        assert_eq!(event.threshold_ns, 10 * SECOND);
        assert_eq!(
            event.evidence,
            [42, 60 * SECOND as i64, 30 * SECOND as i64, 3]
        );
        let trace = event.trace.expect("allocated inside a trace");
        assert_eq!(trace.trace_id[0], 1);
        assert_eq!(trace.span_id[7], 0x18);

        let mut no_context = object(0, 0, 0);
        no_context.flags = 0;
        assert_eq!(no_context.leak_event(1, 0, leak(false), now).trace, None);
    }
}
