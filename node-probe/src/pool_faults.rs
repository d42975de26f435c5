//! The pool-fault detector: user page faults inside memory-pool mappings
//! (`bpf/pool_faults.bpf.c`, tracepoint `exceptions:page_fault_user`).
//!
//! The kernel program only knows the address ranges userspace gives it: `pool_maps` scans
//! `/proc/<pid>/maps` for mappings whose path starts with a configured prefix (the demo's
//! `/dev/shm/wbpf-pool-*` files, a `/dev/dax*` device) and keeps the kernel's table current.
//! A classic tracepoint, so tracefs must be mounted.

use std::time::Duration;

use aya::maps::{Array, HashMap as BpfHashMap};
use aya::programs::TracePoint;
use aya::{include_bytes_aligned, Ebpf};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;
use wbpf_config::{ContextConfig, PoolFaultsConfig};

use crate::detector::{invalid, Detector, Spec, POOL_FAULTS};
use crate::loader::{self, Group};
use crate::pool_maps::{self, KernelRanges, RangeScan};
use crate::ProbeError;

const OBJECT_NAME: &str = "pool_faults.bpf.o";
static OBJECT: &[u8] = include_bytes_aligned!(concat!(env!("OUT_DIR"), "/pool_faults.bpf.o"));

const PROGRAM: &str = "page_fault_user";
pub(crate) const CATEGORY: &str = "exceptions";
pub(crate) const TRACEPOINT: &str = "page_fault_user";
const MAP_CONFIG: &str = "fault_config";
const MAP_RANGES: &str = "pool_ranges";
const MIN_RESCAN: Duration = Duration::from_millis(10);

/// Which mappings are pool memory, and how many faults are too many.
#[derive(Debug, Clone)]
pub struct PoolFaults {
    pub paths: Vec<String>,
    /// Faults per traced request.
    pub max_faults: Option<u64>,
    /// Faults per process per window.
    pub burst: Option<Burst>,
    pub rescan: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Burst {
    pub window: Duration,
    pub max_faults: u64,
}

/// Mirrors `struct fault_config` in `bpf/pool_faults.bpf.c`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct KernelConfig {
    max_request_faults: u64,
    window_ns: u64,
    max_window_faults: u64,
    detector: u32,
    reserved: u32,
}

// SAFETY: `repr(C)`, only integers, no padding (3 u64 then 2 u32): every bit pattern is valid.
unsafe impl aya::Pod for KernelConfig {}

impl PoolFaults {
    /// Validates one configured detector; returns its instance name and spec.
    pub fn resolve(config: &PoolFaultsConfig) -> Result<(String, Self), ProbeError> {
        let name = config
            .name
            .clone()
            .unwrap_or_else(|| POOL_FAULTS.to_owned());
        if config.paths.is_empty() {
            return Err(invalid(
                &name,
                "paths must name at least one pool path prefix",
            ));
        }
        if let Some(path) = config.paths.iter().find(|path| !path.starts_with('/')) {
            return Err(invalid(
                &name,
                format!("path prefix {path:?} is not absolute"),
            ));
        }
        if config.max_faults.is_none() && config.burst.is_none() {
            return Err(invalid(&name, "set max_faults, burst or both"));
        }
        if config
            .burst
            .as_ref()
            .is_some_and(|burst| burst.window.is_zero())
        {
            return Err(invalid(&name, "burst.window must be greater than zero"));
        }
        if config.rescan < MIN_RESCAN {
            return Err(invalid(&name, "rescan must be at least 10ms"));
        }

        let spec = PoolFaults {
            paths: config.paths.clone(),
            max_faults: config.max_faults,
            burst: config.burst.as_ref().map(|burst| Burst {
                window: burst.window,
                max_faults: burst.max_faults,
            }),
            rescan: config.rescan,
        };
        Ok((name, spec))
    }

    fn kernel_config(&self, detector: u32) -> KernelConfig {
        let window = self
            .burst
            .map_or(Duration::from_secs(1), |burst| burst.window);
        KernelConfig {
            max_request_faults: self.max_faults.unwrap_or(u64::MAX),
            window_ns: u64::try_from(window.as_nanos()).unwrap_or(u64::MAX),
            max_window_faults: self.burst.map_or(u64::MAX, |burst| burst.max_faults),
            detector,
            reserved: 0,
        }
    }
}

fn find<'a>(detectors: &[&'a Detector]) -> Option<(&'a Detector, &'a PoolFaults)> {
    detectors.iter().find_map(|detector| match &detector.spec {
        Spec::PoolFaults(spec) => Some((*detector, spec)),
        _ => None,
    })
}

/// Loads the object, writes the settings and attaches the tracepoint. The pool ranges are
/// written by the scan [`start_range_scan`] starts.
pub fn load(detectors: &[&Detector], context: Option<&ContextConfig>) -> Result<Group, ProbeError> {
    let Some((detector, spec)) = find(detectors) else {
        return Err(ProbeError::NoDetectors);
    };
    loader::tracepoint_dir(CATEGORY, TRACEPOINT)?;

    let mut ebpf = loader::load_object(OBJECT_NAME, OBJECT, &[])?;
    write_config(&mut ebpf, spec.kernel_config(detector.index))?;
    loader::attach_context(&mut ebpf, context)?;
    let program: &mut TracePoint = loader::program(&mut ebpf, PROGRAM)?;
    program
        .load()
        .map_err(|source| loader::load_error(PROGRAM, source))?;
    program
        .attach(CATEGORY, TRACEPOINT)
        .map_err(loader::tracepoint_error(
            PROGRAM,
            format!("tracepoint {CATEGORY}:{TRACEPOINT}"),
        ))?;

    info!(
        detector = %detector.name,
        paths = ?spec.paths,
        max_faults = spec.max_faults,
        burst = ?spec.burst,
        "attached pool-fault detector"
    );
    Group::new(POOL_FAULTS, ebpf, vec![detector.index], Vec::new())
}

fn write_config(ebpf: &mut Ebpf, config: KernelConfig) -> Result<(), ProbeError> {
    let map = loader::map_mut(ebpf, MAP_CONFIG)?;
    let mut map: Array<_, KernelConfig> =
        Array::try_from(map).map_err(loader::map_error(MAP_CONFIG))?;
    map.set(0, config, 0).map_err(loader::map_error(MAP_CONFIG))
}

/// Starts the task that keeps the kernel's pool ranges current. The first scan runs before
/// this returns, so pools mapped by then are watched from the start.
pub async fn start_range_scan(
    group: &mut Group,
    detectors: &[Detector],
    stop: watch::Receiver<bool>,
) -> Result<Option<JoinHandle<()>>, ProbeError> {
    let running = group.running_detectors(detectors);
    let Some((_, spec)) = find(&running) else {
        return Ok(None);
    };

    let ranges: BpfHashMap<_, u32, KernelRanges> =
        BpfHashMap::try_from(loader::take_map(&mut group.ebpf, MAP_RANGES)?)
            .map_err(loader::map_error(MAP_RANGES))?;
    let scan = RangeScan::new(ranges, spec.paths.clone());
    Ok(Some(pool_maps::spawn(scan, spec.rescan, stop).await?))
}

#[cfg(test)]
mod tests {
    use wbpf_config::FaultBurstConfig;

    use super::*;

    fn config(max_faults: Option<u64>, burst: Option<FaultBurstConfig>) -> PoolFaultsConfig {
        PoolFaultsConfig {
            name: None,
            paths: vec!["/dev/shm/wbpf-pool-".to_owned()],
            max_faults,
            burst,
            rescan: Duration::from_secs(1),
        }
    }

    #[test]
    fn unset_limits_reach_the_kernel_as_never() {
        let (name, spec) = PoolFaults::resolve(&config(Some(64), None)).expect("valid");
        assert_eq!(name, "pool_faults");
        let kernel = spec.kernel_config(4);
        assert_eq!(kernel.max_request_faults, 64);
        assert_eq!(kernel.max_window_faults, u64::MAX);
        assert_eq!(kernel.detector, 4);
        assert_eq!(std::mem::size_of::<KernelConfig>(), 32);

        let burst = FaultBurstConfig {
            window: Duration::from_millis(250),
            max_faults: 1000,
        };
        let (_, spec) = PoolFaults::resolve(&config(None, Some(burst))).expect("valid");
        let kernel = spec.kernel_config(0);
        assert_eq!(kernel.max_request_faults, u64::MAX);
        assert_eq!(
            (kernel.window_ns, kernel.max_window_faults),
            (250_000_000, 1000)
        );
    }

    #[test]
    fn a_detector_needs_absolute_paths_and_a_limit() {
        assert!(PoolFaults::resolve(&config(None, None)).is_err());
        let mut relative = config(Some(1), None);
        relative.paths = vec!["shm/pool".to_owned()];
        assert!(PoolFaults::resolve(&relative).is_err());
        let mut none = config(Some(1), None);
        none.paths.clear();
        assert!(PoolFaults::resolve(&none).is_err());
        let zero_window = FaultBurstConfig {
            window: Duration::ZERO,
            max_faults: 1,
        };
        assert!(PoolFaults::resolve(&config(None, Some(zero_window))).is_err());
    }
}
