//! The probe's detector table: configuration resolved into what the loader attaches and what
//! the trigger builder reports.
//!
//! A detector's position in the table is its index in the kernel: the uprobe attach cookie and
//! the key of its threshold in the `thresholds` map.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use wbpf_config::{DetectorConfig, FunctionLatencyConfig, ProbeConfig};

use crate::ProbeError;

/// Must equal `WBPF_MAX_DETECTORS` in `bpf/wbpf.h`.
pub const MAX_DETECTORS: usize = 64;

/// Value of the `wbpf.detector` attribute for function-latency triggers.
pub const FUNCTION_LATENCY: &str = "function_latency";

/// One function-latency detector instance.
#[derive(Debug, Clone)]
pub struct Detector {
    pub index: u32,
    /// Instance name: the configured name, else the symbol.
    pub name: String,
    pub binary: PathBuf,
    pub symbol: String,
    pub threshold: Duration,
    /// Only this process when set.
    pub pid: Option<NonZeroU32>,
}

impl Detector {
    /// Threshold in nanoseconds as the kernel compares it; saturates at `u64::MAX`.
    pub fn threshold_ns(&self) -> u64 {
        u64::try_from(self.threshold.as_nanos()).unwrap_or(u64::MAX)
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

    config
        .detectors
        .iter()
        .enumerate()
        .map(|(index, detector)| match detector {
            DetectorConfig::FunctionLatency(latency) => function_latency(index, latency),
        })
        .collect()
}

fn function_latency(index: usize, config: &FunctionLatencyConfig) -> Result<Detector, ProbeError> {
    let name = config.name.clone().unwrap_or_else(|| config.symbol.clone());
    let invalid = |reason| ProbeError::InvalidDetector {
        detector: name.clone(),
        reason,
    };

    if config.symbol.is_empty() {
        return Err(invalid("symbol is empty"));
    }
    if config.binary.as_os_str().is_empty() {
        return Err(invalid("binary is empty"));
    }
    let pid = match config.pid {
        None => None,
        Some(pid) => Some(NonZeroU32::new(pid).ok_or_else(|| invalid("pid 0 is not a process"))?),
    };

    Ok(Detector {
        index: u32::try_from(index).expect("index is below MAX_DETECTORS"),
        name,
        binary: config.binary.clone(),
        symbol: config.symbol.clone(),
        threshold: config.threshold,
        pid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latency(name: Option<&str>, symbol: &str, pid: Option<u32>) -> DetectorConfig {
        DetectorConfig::FunctionLatency(FunctionLatencyConfig {
            name: name.map(str::to_owned),
            binary: PathBuf::from("/usr/bin/true"),
            symbol: symbol.to_owned(),
            threshold: Duration::from_millis(20),
            pid,
        })
    }

    fn config(detectors: Vec<DetectorConfig>) -> ProbeConfig {
        ProbeConfig {
            gateway: "http://127.0.0.1:4317".to_owned(),
            context: None,
            detectors,
        }
    }

    #[test]
    fn detectors_are_numbered_in_order_and_named_after_their_symbol_by_default() {
        let table = resolve(&config(vec![
            latency(None, "handle", None),
            latency(Some("slow-io"), "read_block", Some(7)),
        ]))
        .expect("valid");

        assert_eq!(table[0].index, 0);
        assert_eq!(table[0].name, "handle");
        assert_eq!(table[1].index, 1);
        assert_eq!(table[1].name, "slow-io");
        assert_eq!(table[1].pid.map(NonZeroU32::get), Some(7));
        assert_eq!(table[1].threshold_ns(), 20_000_000);
    }

    #[test]
    fn empty_tables_pid_zero_and_too_many_detectors_are_rejected() {
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
    }
}
