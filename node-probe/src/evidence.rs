//! The attributes that carry each kind of event's evidence on its trigger span.
//!
//! Keys under `wbpf.` are this project's; they are a contract with whoever reads triggers
//! (the gateway's trigger rules, dashboards): change them together.

use opentelemetry::KeyValue;
use wbpf_config::LatencyThreshold;

use crate::detector::{Detector, Spec};
use crate::events::{Event, Kind};

/// Evidence attributes for `event`, reported by `detector`.
pub fn attributes(detector: &Detector, event: &Event) -> Vec<KeyValue> {
    let [first, second, third, fourth] = event.evidence;
    let mut attributes = Vec::with_capacity(8);
    if event.kind.has_duration() {
        attributes.push(KeyValue::new(
            "wbpf.duration_ns",
            saturating_i64(event.duration_ns),
        ));
        attributes.push(KeyValue::new(
            "wbpf.threshold_ns",
            saturating_i64(event.threshold_ns),
        ));
    }

    match event.kind {
        Kind::FunctionLatency => {
            if let Spec::FunctionLatency(spec) = &detector.spec {
                attributes.push(KeyValue::new("code.function.name", spec.symbol.clone()));
                attributes.push(KeyValue::new(
                    "wbpf.binary",
                    spec.binary.display().to_string(),
                ));
                if let LatencyThreshold::Percentile { percentile, .. } = spec.threshold {
                    attributes.push(KeyValue::new("wbpf.percentile", percentile));
                }
            }
        }
        Kind::SyscallLatency => {
            attributes.push(KeyValue::new("wbpf.syscall.nr", first));
            attributes.push(KeyValue::new("wbpf.syscall.ret", second));
        }
        Kind::ReclaimStall => {
            attributes.push(KeyValue::new("wbpf.memory.event", "reclaim_stall"));
            let scope = if third == 0 { "direct" } else { "memcg" };
            attributes.push(KeyValue::new("wbpf.reclaim.scope", scope));
            attributes.push(KeyValue::new("wbpf.reclaim.nr_reclaimed", first));
            attributes.push(KeyValue::new("wbpf.reclaim.order", second));
        }
        Kind::MigrationStorm | Kind::MigrationFailures => {
            let name = if event.kind == Kind::MigrationStorm {
                "migration_storm"
            } else {
                "migration_failures"
            };
            attributes.push(KeyValue::new("wbpf.memory.event", name));
            attributes.push(KeyValue::new("wbpf.migrate.reason", migrate_reason(first)));
            attributes.push(KeyValue::new("wbpf.migrate.reason_code", first));
            attributes.push(KeyValue::new("wbpf.migrate.pages", second));
            attributes.push(KeyValue::new("wbpf.migrate.failed", third));
            attributes.push(KeyValue::new(
                "wbpf.migrate.limit",
                saturating_i64(event.threshold_ns),
            ));
            attributes.push(KeyValue::new(
                "wbpf.migrate.window_ns",
                saturating_i64(event.duration_ns),
            ));
        }
        Kind::OomKill => {
            attributes.push(KeyValue::new("wbpf.memory.event", "oom_kill"));
            attributes.push(KeyValue::new("wbpf.oom.total_vm_kb", first));
            attributes.push(KeyValue::new("wbpf.oom.anon_rss_kb", second));
            attributes.push(KeyValue::new("wbpf.oom.file_rss_kb", third));
            attributes.push(KeyValue::new("wbpf.oom.score_adj", fourth));
        }
        Kind::PoolStaleAccess | Kind::PoolDoubleRelease => {
            let name = if event.kind == Kind::PoolStaleAccess {
                "stale_access"
            } else {
                "double_release"
            };
            attributes.push(KeyValue::new("wbpf.pool.event", name));
            attributes.push(KeyValue::new("wbpf.pool.object_id", first));
            attributes.push(KeyValue::new("wbpf.pool.object_age_ns", second));
            attributes.push(KeyValue::new("wbpf.pool.released_ago_ns", third));
            attributes.push(KeyValue::new("wbpf.pool.released_by_pid", fourth));
        }
        Kind::PoolLeak => {
            attributes.push(KeyValue::new("wbpf.pool.event", "leak"));
            attributes.push(KeyValue::new("wbpf.pool.object_id", first));
            attributes.push(KeyValue::new("wbpf.pool.object_age_ns", second));
            attributes.push(KeyValue::new("wbpf.pool.idle_ns", third));
            attributes.push(KeyValue::new("wbpf.pool.accesses", fourth));
            attributes.push(KeyValue::new(
                "wbpf.pool.leak_age_ns",
                saturating_i64(event.threshold_ns),
            ));
        }
        Kind::PoolFaultStorm | Kind::PoolFaultBurst => {
            let (name, scope) = if event.kind == Kind::PoolFaultStorm {
                ("fault_storm", "request")
            } else {
                ("fault_burst", "process")
            };
            attributes.push(KeyValue::new("wbpf.pool.event", name));
            attributes.push(KeyValue::new("wbpf.pool.fault.scope", scope));
            attributes.push(KeyValue::new("wbpf.pool.fault.count", first));
            attributes.push(KeyValue::new("wbpf.pool.fault.address", second));
            attributes.push(KeyValue::new("wbpf.pool.offset", third));
            attributes.push(KeyValue::new(
                "wbpf.pool.fault.limit",
                saturating_i64(event.threshold_ns),
            ));
            attributes.push(KeyValue::new(
                "wbpf.pool.fault.window_ns",
                saturating_i64(event.duration_ns),
            ));
        }
    }
    attributes
}

/// `enum migrate_reason` as numbered by Linux 6.x (`MR_COMPACTION` = 0 ... `MR_DAMON` = 9).
/// The numbering is the kernel's and may move; `wbpf.migrate.reason_code` keeps the raw value.
fn migrate_reason(code: i64) -> &'static str {
    match code {
        0 => "compaction",
        1 => "memory_failure",
        2 => "memory_hotplug",
        3 => "syscall_or_cpuset",
        4 => "mempolicy_mbind",
        5 => "numa_misplaced",
        6 => "contig_range",
        7 => "longterm_pin",
        8 => "demotion",
        9 => "damon",
        _ => "unknown",
    }
}

pub fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
