//! The function-latency detector: a uprobe/uretprobe pair timing one symbol.
//!
//! `fn_enter` and `fn_exit` (`bpf/function_latency.bpf.c`) are loaded once and attached once
//! per detector, each attachment carrying the detector's index as its BPF cookie
//! (`bpf_get_attach_cookie`, kernel 5.15+); the kernel looks the threshold up by that index
//! and counts every call in the detector's latency histogram. A detector whose symbol cannot
//! be attached is reported and the others keep running.

use std::num::NonZeroU32;
use std::path::PathBuf;

use aya::programs::uprobe::{UProbeAttachLocation, UProbeAttachPoint, UProbeScope};
use aya::programs::UProbe;
use aya::{include_bytes_aligned, Ebpf};
use tracing::info;
use wbpf_config::{ContextConfig, FunctionLatencyConfig, LatencyThreshold};

use crate::detector::{invalid, Detector, Spec};
use crate::loader::{self, Group};
use crate::ProbeError;

const OBJECT_NAME: &str = "function_latency.bpf.o";
static OBJECT: &[u8] = include_bytes_aligned!(concat!(env!("OUT_DIR"), "/function_latency.bpf.o"));

const PROG_ENTER: &str = "fn_enter";
const PROG_EXIT: &str = "fn_exit";

/// One timed symbol.
#[derive(Debug, Clone)]
pub struct FunctionLatency {
    pub binary: PathBuf,
    pub symbol: String,
    pub threshold: LatencyThreshold,
    /// Only this process when set.
    pub pid: Option<NonZeroU32>,
}

impl FunctionLatency {
    /// Validates one configured detector; returns its instance name and spec.
    pub fn resolve(config: &FunctionLatencyConfig) -> Result<(String, Self), ProbeError> {
        let name = config.name.clone().unwrap_or_else(|| config.symbol.clone());
        if config.symbol.is_empty() {
            return Err(invalid(&name, "symbol is empty"));
        }
        if config.binary.as_os_str().is_empty() {
            return Err(invalid(&name, "binary is empty"));
        }
        let pid = match config.pid {
            None => None,
            Some(pid) => {
                Some(NonZeroU32::new(pid).ok_or_else(|| invalid(&name, "pid 0 is not a process"))?)
            }
        };
        if let LatencyThreshold::Percentile { percentile, .. } = config.threshold {
            if !(percentile > 0.0 && percentile < 100.0) {
                return Err(invalid(&name, "percentile must be above 0 and below 100"));
            }
        }

        let spec = FunctionLatency {
            binary: config.binary.clone(),
            symbol: config.symbol.clone(),
            threshold: config.threshold,
            pid,
        };
        Ok((name, spec))
    }

    /// The threshold the kernel starts with: the fixed one, or never (u64 max) until an
    /// adaptive detector has seen enough calls.
    pub fn initial_threshold_ns(&self) -> u64 {
        match self.threshold {
            LatencyThreshold::Fixed(threshold) => {
                u64::try_from(threshold.as_nanos()).unwrap_or(u64::MAX)
            }
            LatencyThreshold::Percentile { .. } => u64::MAX,
        }
    }
}

/// Loads the object, writes the thresholds and attaches every function-latency detector.
pub fn load(detectors: &[&Detector], context: Option<&ContextConfig>) -> Result<Group, ProbeError> {
    let mut ebpf = loader::load_object(OBJECT_NAME, OBJECT, &[])?;
    let specs: Vec<(&Detector, &FunctionLatency)> = detectors
        .iter()
        .filter_map(|detector| match &detector.spec {
            Spec::FunctionLatency(spec) => Some((*detector, spec)),
            _ => None,
        })
        .collect();

    let thresholds = specs
        .iter()
        .map(|(detector, spec)| (detector.index, spec.initial_threshold_ns()));
    loader::write_thresholds(&mut ebpf, thresholds)?;
    loader::attach_context(&mut ebpf, context)?;
    for name in [PROG_ENTER, PROG_EXIT] {
        let program: &mut UProbe = loader::program(&mut ebpf, name)?;
        program
            .load()
            .map_err(|source| loader::load_error(name, source))?;
    }

    let mut running = Vec::new();
    let mut failures = Vec::new();
    for (detector, spec) in specs {
        match attach(&mut ebpf, detector, spec) {
            Ok(()) => running.push(detector.index),
            Err(error) => failures.extend(loader::fail_all(&[detector], error)),
        }
    }
    Group::new(crate::detector::FUNCTION_LATENCY, ebpf, running, failures)
}

/// Attaches both probes for one detector, or neither.
fn attach(ebpf: &mut Ebpf, detector: &Detector, spec: &FunctionLatency) -> Result<(), ProbeError> {
    let scope = spec
        .pid
        .map_or(UProbeScope::AllProcesses, UProbeScope::OneProcess);
    let point = || UProbeAttachPoint {
        location: UProbeAttachLocation::Symbol(&spec.symbol),
        cookie: Some(u64::from(detector.index)),
    };

    let enter: &mut UProbe = loader::program(ebpf, PROG_ENTER)?;
    let enter_link = enter
        .attach(point(), &spec.binary, scope)
        .map_err(loader::attach_error(PROG_ENTER, &spec.symbol, &spec.binary))?;
    let exit: &mut UProbe = loader::program(ebpf, PROG_EXIT)?;
    if let Err(source) = exit.attach(point(), &spec.binary, scope) {
        let enter: &mut UProbe = loader::program(ebpf, PROG_ENTER)?;
        // Best effort: a lingering entry probe only fills the LRU start map.
        let _ = enter.detach(enter_link);
        return Err(loader::attach_error(PROG_EXIT, &spec.symbol, &spec.binary)(
            source,
        ));
    }

    info!(
        detector = %detector.name,
        symbol = %spec.symbol,
        binary = %spec.binary.display(),
        threshold_ns = spec.initial_threshold_ns(),
        pid = spec.pid.map(|pid| pid.get()),
        "attached function-latency detector"
    );
    Ok(())
}
