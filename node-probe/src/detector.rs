//! The probe's detector table: configuration resolved into what the loaders attach and what
//! the trigger builder reports.
//!
//! A detector's position in the table is its index in the kernel: the uprobe attach cookie,
//! the key of its threshold in an object's `thresholds` map, the tag its events carry.

use wbpf_config::{DetectorConfig, ProbeConfig};

use crate::function_latency::FunctionLatency;
use crate::memory_pressure::MemoryPressure;
use crate::pool_faults::PoolFaults;
use crate::pool_objects::PoolObjects;
use crate::syscall_latency::SyscallLatency;
use crate::ProbeError;

/// Must equal `WBPF_MAX_DETECTORS` in `bpf/wbpf.h`.
pub const MAX_DETECTORS: usize = 64;

/// Values of the `wbpf.detector` attribute, one per detector type.
pub const FUNCTION_LATENCY: &str = "function_latency";
pub const SYSCALL_LATENCY: &str = "syscall_latency";
pub const MEMORY_PRESSURE: &str = "memory_pressure";
pub const POOL_OBJECTS: &str = "pool_objects";
pub const POOL_FAULTS: &str = "pool_faults";

/// Every detector type, in the order objects are loaded.
pub const TYPES: [&str; 5] = [
    FUNCTION_LATENCY,
    SYSCALL_LATENCY,
    MEMORY_PRESSURE,
    POOL_OBJECTS,
    POOL_FAULTS,
];

/// Detector types with one settings slot per probe (their hooks are machine-wide).
const ONE_PER_PROBE: [&str; 3] = [MEMORY_PRESSURE, POOL_OBJECTS, POOL_FAULTS];

/// One configured detector instance.
#[derive(Debug, Clone)]
pub struct Detector {
    pub index: u32,
    /// Instance name: the configured name, else a default of its type.
    pub name: String,
    pub spec: Spec,
}

/// What a detector watches, per type.
#[derive(Debug, Clone)]
pub enum Spec {
    FunctionLatency(FunctionLatency),
    SyscallLatency(SyscallLatency),
    MemoryPressure(MemoryPressure),
    PoolObjects(PoolObjects),
    PoolFaults(PoolFaults),
}

impl Detector {
    /// The `wbpf.detector` value of its triggers.
    pub fn type_name(&self) -> &'static str {
        match self.spec {
            Spec::FunctionLatency(_) => FUNCTION_LATENCY,
            Spec::SyscallLatency(_) => SYSCALL_LATENCY,
            Spec::MemoryPressure(_) => MEMORY_PRESSURE,
            Spec::PoolObjects(_) => POOL_OBJECTS,
            Spec::PoolFaults(_) => POOL_FAULTS,
        }
    }
}

/// Builds the `InvalidDetector` error for `detector`.
pub fn invalid(detector: &str, reason: impl Into<String>) -> ProbeError {
    ProbeError::InvalidDetector {
        detector: detector.to_owned(),
        reason: reason.into(),
    }
}

/// Validates the configured detectors and numbers them.
pub fn resolve(config: &ProbeConfig) -> Result<Vec<Detector>, ProbeError> {
    if config.detectors.is_empty() {
        return Err(ProbeError::NoDetectors);
    }
    if config.detectors.len() > MAX_DETECTORS {
        return Err(ProbeError::TooManyDetectors {
            count: config.detectors.len(),
            max: MAX_DETECTORS,
        });
    }

    let table = config
        .detectors
        .iter()
        .enumerate()
        .map(|(index, config)| {
            let index = u32::try_from(index).expect("index is below MAX_DETECTORS");
            let (name, spec) = match config {
                DetectorConfig::FunctionLatency(config) => {
                    let (name, spec) = FunctionLatency::resolve(config)?;
                    (name, Spec::FunctionLatency(spec))
                }
                DetectorConfig::SyscallLatency(config) => {
                    let (name, spec) = SyscallLatency::resolve(config)?;
                    (name, Spec::SyscallLatency(spec))
                }
                DetectorConfig::MemoryPressure(config) => {
                    let (name, spec) = MemoryPressure::resolve(config)?;
                    (name, Spec::MemoryPressure(spec))
                }
                DetectorConfig::PoolObjects(config) => {
                    let (name, spec) = PoolObjects::resolve(config)?;
                    (name, Spec::PoolObjects(spec))
                }
                DetectorConfig::PoolFaults(config) => {
                    let (name, spec) = PoolFaults::resolve(config)?;
                    (name, Spec::PoolFaults(spec))
                }
            };
            Ok(Detector { index, name, spec })
        })
        .collect::<Result<Vec<_>, ProbeError>>()?;

    for detector_type in ONE_PER_PROBE {
        let mut same = table
            .iter()
            .filter(|detector| detector.type_name() == detector_type);
        if let (Some(_), Some(second)) = (same.next(), same.next()) {
            return Err(invalid(
                &second.name,
                format!("only one {detector_type} detector per probe"),
            ));
        }
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::path::PathBuf;
    use std::time::Duration;

    use wbpf_config::{
        FunctionLatencyConfig, LatencyThreshold, MemoryPressureConfig, SyscallHook,
        SyscallLatencyConfig,
    };

    use super::*;

    fn latency(name: Option<&str>, symbol: &str, pid: Option<u32>) -> DetectorConfig {
        DetectorConfig::FunctionLatency(FunctionLatencyConfig {
            name: name.map(str::to_owned),
            binary: PathBuf::from("/usr/bin/true"),
            symbol: symbol.to_owned(),
            threshold: LatencyThreshold::Fixed(Duration::from_millis(20)),
            pid,
        })
    }

    fn pressure() -> DetectorConfig {
        DetectorConfig::MemoryPressure(MemoryPressureConfig {
            name: None,
            reclaim_stall: Duration::from_millis(5),
            migration: None,
            oom_kill: true,
        })
    }

    fn config(detectors: Vec<DetectorConfig>) -> ProbeConfig {
        ProbeConfig {
            gateway: "http://127.0.0.1:4317".into(),
            context: None,
            detectors,
            admin: None,
            strict_privileges: false,
        }
    }

    #[test]
    fn detectors_are_numbered_in_order_and_named_after_their_symbol_or_type() {
        let table = resolve(&config(vec![
            latency(None, "handle", None),
            latency(Some("slow-io"), "read_block", Some(7)),
            DetectorConfig::SyscallLatency(SyscallLatencyConfig {
                name: None,
                threshold: Duration::from_millis(50),
                pids: vec![],
                comms: vec!["postgres".to_owned()],
                cgroups: Vec::new(),
                hook: SyscallHook::Auto,
            }),
            pressure(),
        ]))
        .expect("valid");

        assert_eq!(table[0].index, 0);
        assert_eq!(table[0].name, "handle");
        assert_eq!(table[1].index, 1);
        assert_eq!(table[1].name, "slow-io");
        let Spec::FunctionLatency(slow_io) = &table[1].spec else {
            panic!("a function-latency detector");
        };
        assert_eq!(slow_io.pid.map(NonZeroU32::get), Some(7));
        assert_eq!(slow_io.initial_threshold_ns(), 20_000_000);
        assert_eq!(table[2].name, "syscall_latency");
        assert_eq!(table[2].type_name(), SYSCALL_LATENCY);
        assert_eq!(table[3].name, "memory_pressure");
        assert_eq!(table[3].type_name(), MEMORY_PRESSURE);
    }

    #[test]
    fn empty_tables_pid_zero_too_many_and_a_second_memory_detector_are_rejected() {
        assert!(matches!(
            resolve(&config(vec![])),
            Err(ProbeError::NoDetectors)
        ));

        let pid_zero = resolve(&config(vec![latency(None, "f", Some(0))]));
        assert!(matches!(pid_zero, Err(ProbeError::InvalidDetector { .. })));

        let many = (0..=MAX_DETECTORS)
            .map(|_| latency(None, "f", None))
            .collect();
        assert!(matches!(
            resolve(&config(many)),
            Err(ProbeError::TooManyDetectors { count: 65, max: 64 })
        ));

        let twice = resolve(&config(vec![pressure(), pressure()]));
        assert!(matches!(twice, Err(ProbeError::InvalidDetector { .. })));
    }
}
