//! The node probe's section: where to send triggers and which detectors to run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Where a workload publishes which trace a thread is serving.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextConfig {
    /// Binary or shared library exporting the context function.
    pub binary: PathBuf,
    /// `fn(trace_id_hi: u64, trace_id_lo: u64, span_id: u64)`, called on span entry.
    #[serde(default = "default_context_symbol")]
    pub symbol: String,
}

fn default_context_symbol() -> String {
    "wbpf_trace_context".to_owned()
}

/// Function-latency outliers: a uprobe/uretprobe pair timing one symbol in the kernel.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "FunctionLatencyFields")]
pub struct FunctionLatencyConfig {
    /// Detector instance name, reported on trigger spans; defaults to the symbol.
    pub name: Option<String>,
    /// Binary or shared library holding the symbol.
    pub binary: PathBuf,
    pub symbol: String,
    /// When a call is slow enough to trigger.
    pub threshold: LatencyThreshold,
    /// Only this process; all processes mapping the binary when absent.
    pub pid: Option<u32>,
}

/// A fixed latency limit, or one recomputed from the observed latency distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LatencyThreshold {
    /// `threshold: 20ms`: a call taking longer triggers.
    Fixed(Duration),
    /// `percentile: 99.9`: a call slower than that percentile of all timed calls triggers,
    /// once at least `min_samples` calls were timed.
    Percentile { percentile: f64, min_samples: u64 },
}

/// Default `min_samples` of an adaptive function-latency detector.
pub const DEFAULT_MIN_SAMPLES: u64 = 1000;

/// The YAML keys of `function_latency`; exactly one of `threshold` and `percentile`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FunctionLatencyFields {
    #[serde(default)]
    name: Option<String>,
    binary: PathBuf,
    symbol: String,
    #[serde(default, deserialize_with = "optional_duration")]
    threshold: Option<Duration>,
    #[serde(default)]
    percentile: Option<f64>,
    #[serde(default)]
    min_samples: Option<u64>,
    #[serde(default)]
    pid: Option<u32>,
}

impl TryFrom<FunctionLatencyFields> for FunctionLatencyConfig {
    type Error = String;

    fn try_from(fields: FunctionLatencyFields) -> Result<Self, String> {
        let threshold = match (fields.threshold, fields.percentile, fields.min_samples) {
            (Some(threshold), None, None) => LatencyThreshold::Fixed(threshold),
            (None, Some(percentile), min_samples) => {
                if !(percentile > 0.0 && percentile < 100.0) {
                    return Err(format!(
                        "percentile {percentile} must be above 0 and below 100"
                    ));
                }
                LatencyThreshold::Percentile {
                    percentile,
                    min_samples: min_samples.unwrap_or(DEFAULT_MIN_SAMPLES),
                }
            }
            (Some(_), None, Some(_)) => {
                return Err("min_samples only applies with percentile".to_owned())
            }
            (Some(_), Some(_), _) => {
                return Err("set either threshold or percentile, not both".to_owned())
            }
            (None, None, _) => return Err("set threshold or percentile".to_owned()),
        };
        Ok(FunctionLatencyConfig {
            name: fields.name,
            binary: fields.binary,
            symbol: fields.symbol,
            threshold,
            pid: fields.pid,
        })
    }
}

/// Slow syscalls of chosen processes, timed between `sys_enter` and `sys_exit`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyscallLatencyConfig {
    /// Detector instance name, reported on trigger spans; defaults to `syscall_latency`.
    #[serde(default)]
    pub name: Option<String>,
    /// A syscall taking longer than this triggers.
    #[serde(with = "crate::duration")]
    pub threshold: Duration,
    /// Processes (thread group ids) to watch.
    #[serde(default)]
    pub pids: Vec<u32>,
    /// Command names (`comm`, at most 15 bytes) to watch.
    #[serde(default)]
    pub comms: Vec<String>,
    /// Cgroups (v2) to watch, by the path of their directory, such as
    /// `/sys/fs/cgroup/system.slice/nginx.service`: the processes directly in each, not those
    /// in its child cgroups. At least one of `pids`, `comms` and `cgroups` must be set.
    #[serde(default)]
    pub cgroups: Vec<PathBuf>,
    /// How to hook the syscalls; `auto` picks what the kernel offers.
    #[serde(default)]
    pub hook: SyscallHook,
}

/// The kernel hook a `syscall_latency` detector attaches to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyscallHook {
    /// Raw tracepoints where the kernel has them, else the `raw_syscalls` tracepoints.
    #[default]
    Auto,
    /// `raw_tracepoint/sys_enter` and `sys_exit`: cheaper, no tracefs needed.
    RawTracepoint,
    /// `tracepoint/raw_syscalls/sys_enter` and `sys_exit`: needs tracefs.
    Tracepoint,
}

/// Reclaim stalls, page-migration storms and failures, and OOM kills, machine-wide.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryPressureConfig {
    /// Detector instance name, reported on trigger spans; defaults to `memory_pressure`.
    #[serde(default)]
    pub name: Option<String>,
    /// A direct or cgroup reclaim stall longer than this triggers.
    #[serde(default = "default_reclaim_stall", with = "crate::duration")]
    pub reclaim_stall: Duration,
    /// Page-migration limits per migration reason; no migration triggers when absent.
    #[serde(default)]
    pub migration: Option<MigrationConfig>,
    /// Report the victims of the OOM killer.
    #[serde(default = "default_true")]
    pub oom_kill: bool,
}

fn default_reclaim_stall() -> Duration {
    Duration::from_millis(10)
}

fn default_true() -> bool {
    true
}

/// Page migrations counted per reason (compaction, demotion, numa_misplaced, ...) over a
/// window; crossing a limit triggers once per window.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrationConfig {
    #[serde(default = "default_migration_window", with = "crate::duration")]
    pub window: Duration,
    /// More pages migrated (succeeded or failed) than this in a window is a storm.
    #[serde(default)]
    pub max_pages: Option<u64>,
    /// More pages failing to migrate than this in a window triggers (0: any failure).
    #[serde(default)]
    pub max_failures: Option<u64>,
}

fn default_migration_window() -> Duration {
    Duration::from_secs(1)
}

/// The lives of memory-pool objects, seen through uprobes on the pool library's hooks, each
/// taking the object id as its first argument: accesses after release (stale references),
/// double releases and, with `leak_age`, leaked objects.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolObjectsConfig {
    /// Detector instance name, reported on trigger spans; defaults to `pool_objects`.
    #[serde(default)]
    pub name: Option<String>,
    /// Binary or shared library exporting the hooks.
    pub binary: PathBuf,
    /// `fn(object_id: u64)`, called once an object is allocated.
    #[serde(default = "default_alloc_symbol")]
    pub alloc_symbol: String,
    /// `fn(object_id: u64)`, called on every release, before the library checks the id.
    #[serde(default = "default_release_symbol")]
    pub release_symbol: String,
    /// `fn(object_id: u64, ...)`, called on every access through an id, stale or not.
    #[serde(default = "default_access_symbol")]
    pub access_symbol: String,
    /// An object alive this long without an access is a leak; no leak triggers when absent.
    #[serde(default, deserialize_with = "optional_duration")]
    pub leak_age: Option<Duration>,
    /// `false`: only objects never accessed since their allocation can leak (a cold but used
    /// object never triggers). `true`: any object idle for `leak_age` is a leak.
    #[serde(default)]
    pub leak_idle: bool,
}

fn default_alloc_symbol() -> String {
    "wbpf_pool_alloc".to_owned()
}

fn default_release_symbol() -> String {
    "wbpf_pool_release".to_owned()
}

fn default_access_symbol() -> String {
    "wbpf_pool_access".to_owned()
}

/// User page faults inside memory-pool mappings: a fault storm within one traced request, or
/// a burst of faults in one process over a window.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolFaultsConfig {
    /// Detector instance name, reported on trigger spans; defaults to `pool_faults`.
    #[serde(default)]
    pub name: Option<String>,
    /// Path prefixes of pool mappings as `/proc/<pid>/maps` names them, such as
    /// `/dev/shm/wbpf-pool-` or `/dev/dax`.
    pub paths: Vec<String>,
    /// More pool faults than this within one traced request is a fault storm; no storm
    /// triggers when absent.
    #[serde(default)]
    pub max_faults: Option<u64>,
    /// Per-process fault bursts; no burst triggers when absent.
    #[serde(default)]
    pub burst: Option<FaultBurstConfig>,
    /// How often `/proc` is scanned for processes that map a pool.
    #[serde(default = "default_rescan", with = "crate::duration")]
    pub rescan: Duration,
}

fn default_rescan() -> Duration {
    Duration::from_secs(1)
}

/// Pool faults counted per process over a window; crossing the limit triggers once per
/// window.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultBurstConfig {
    #[serde(default = "default_burst_window", with = "crate::duration")]
    pub window: Duration,
    /// More pool faults than this in one window is a burst.
    pub max_faults: u64,
}

fn default_burst_window() -> Duration {
    Duration::from_secs(1)
}

/// One detector, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DetectorConfig {
    FunctionLatency(FunctionLatencyConfig),
    SyscallLatency(SyscallLatencyConfig),
    MemoryPressure(MemoryPressureConfig),
    PoolObjects(PoolObjectsConfig),
    PoolFaults(PoolFaultsConfig),
}

/// Everything the node probe reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// OTLP/gRPC endpoint of the gateway that receives trigger spans, with its credentials
    /// and TLS settings.
    #[serde(default, deserialize_with = "crate::gateway_client::deserialize")]
    pub gateway: crate::GatewayClientConfig,
    /// Where workloads publish their trace context; triggers carry no trace id without it.
    #[serde(default)]
    pub context: Option<ContextConfig>,
    #[serde(default)]
    pub detectors: Vec<DetectorConfig>,
    /// The probe's admin HTTP port (`GET /metrics`, `GET /v1/detectors`, `POST /v1/reload`);
    /// loopback by default, `null` turns it off.
    #[serde(default = "default_admin")]
    pub admin: Option<SocketAddr>,
    /// Refuse to start while holding Linux capabilities the configured detectors do not need
    /// (such as running as full root); read at start only.
    #[serde(default)]
    pub strict_privileges: bool,
}

fn default_admin() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 9465)))
}

fn optional_duration<'de, D>(deserializer: D) -> Result<Option<Duration>, D::Error>
where
    D: Deserializer<'de>,
{
    crate::duration::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<DetectorConfig, String> {
        serde_saphyr::from_str(yaml).map_err(|error| error.to_string())
    }

    #[test]
    fn function_latency_takes_a_threshold_or_a_percentile() {
        let fixed = "type: function_latency\nbinary: /a\nsymbol: f\nthreshold: 20ms\n";
        let Ok(DetectorConfig::FunctionLatency(fixed)) = parse(fixed) else {
            panic!("fixed threshold parses");
        };
        assert_eq!(
            fixed.threshold,
            LatencyThreshold::Fixed(Duration::from_millis(20))
        );

        let adaptive = "type: function_latency\nbinary: /a\nsymbol: f\npercentile: 99.9\n";
        let Ok(DetectorConfig::FunctionLatency(adaptive)) = parse(adaptive) else {
            panic!("percentile parses");
        };
        assert_eq!(
            adaptive.threshold,
            LatencyThreshold::Percentile {
                percentile: 99.9,
                min_samples: DEFAULT_MIN_SAMPLES
            }
        );
    }

    #[test]
    fn function_latency_rejects_both_neither_and_out_of_range_percentiles() {
        let cases = [
            ("threshold: 1ms\npercentile: 99.0\n", "not both"),
            ("min_samples: 5\n", "set threshold or percentile"),
            ("percentile: 100.0\n", "below 100"),
            (
                "threshold: 1ms\nmin_samples: 5\n",
                "only applies with percentile",
            ),
            ("threshold: 1ms\nthreshhold: 2ms\n", "threshhold"),
        ];
        for (keys, expected) in cases {
            let yaml = format!("type: function_latency\nbinary: /a\nsymbol: f\n{keys}");
            let message = parse(&yaml).expect_err(keys);
            assert!(message.contains(expected), "{keys}: {message}");
        }
    }

    #[test]
    fn syscall_and_memory_pressure_detectors_parse_with_defaults() {
        let yaml = "type: syscall_latency\nthreshold: 50ms\ncomms: [postgres]\n";
        let Ok(DetectorConfig::SyscallLatency(syscall)) = parse(yaml) else {
            panic!("syscall_latency parses");
        };
        assert_eq!(syscall.threshold, Duration::from_millis(50));
        assert_eq!(syscall.comms, ["postgres"]);
        assert!(syscall.pids.is_empty());
        assert!(syscall.cgroups.is_empty());

        let yaml = "type: syscall_latency\nthreshold: 50ms\ncgroups: [/sys/fs/cgroup/db]\n";
        let Ok(DetectorConfig::SyscallLatency(syscall)) = parse(yaml) else {
            panic!("syscall_latency with cgroups parses");
        };
        assert_eq!(syscall.cgroups, [PathBuf::from("/sys/fs/cgroup/db")]);

        let yaml = "type: memory_pressure\nmigration:\n  max_failures: 0\n";
        let Ok(DetectorConfig::MemoryPressure(memory)) = parse(yaml) else {
            panic!("memory_pressure parses");
        };
        assert_eq!(memory.reclaim_stall, Duration::from_millis(10));
        assert!(memory.oom_kill);
        let migration = memory.migration.expect("set");
        assert_eq!(migration.window, Duration::from_secs(1));
        assert_eq!(
            (migration.max_pages, migration.max_failures),
            (None, Some(0))
        );
    }

    #[test]
    fn pool_detectors_parse_with_defaults() {
        let yaml = "type: pool_objects\nbinary: /srv/app\nleak_age: 30s\n";
        let Ok(DetectorConfig::PoolObjects(objects)) = parse(yaml) else {
            panic!("pool_objects parses");
        };
        assert_eq!(objects.alloc_symbol, "wbpf_pool_alloc");
        assert_eq!(objects.release_symbol, "wbpf_pool_release");
        assert_eq!(objects.access_symbol, "wbpf_pool_access");
        assert_eq!(objects.leak_age, Some(Duration::from_secs(30)));
        assert!(!objects.leak_idle);

        let yaml = "type: pool_faults\npaths: [/dev/dax]\nburst:\n  max_faults: 500\n";
        let Ok(DetectorConfig::PoolFaults(faults)) = parse(yaml) else {
            panic!("pool_faults parses");
        };
        assert_eq!(faults.paths, ["/dev/dax"]);
        assert_eq!(faults.max_faults, None);
        assert_eq!(faults.rescan, Duration::from_secs(1));
        let burst = faults.burst.expect("set");
        assert_eq!(
            (burst.window, burst.max_faults),
            (Duration::from_secs(1), 500)
        );

        let typo = "type: pool_faults\npaths: [/dev/dax]\nmax_fault: 5\n";
        let message = parse(typo).expect_err("unknown key");
        assert!(message.contains("max_fault"), "{message}");
    }

    #[test]
    fn strict_privileges_is_off_unless_asked_for_and_typos_name_the_key() {
        let config = crate::parse_str("probe:\n  detectors: []\n", "p.yaml").expect("parses");
        assert!(!config.probe.expect("probe section").strict_privileges);

        let strict = "probe:\n  strict_privileges: true\n";
        let config = crate::parse_str(strict, "p.yaml").expect("parses");
        assert!(config.probe.expect("probe section").strict_privileges);

        let typo = "probe:\n  strict_privilege: true\n";
        let message = crate::parse_str(typo, "p.yaml")
            .expect_err("unknown key")
            .to_string();
        assert!(message.starts_with("p.yaml:2:"), "{message}");
        assert!(message.contains("strict_privilege"), "{message}");
    }
}
