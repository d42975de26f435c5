//! The syscall-latency detector: slow syscalls of chosen processes.
//!
//! `sys_enter` and `sys_exit` (`bpf/syscall_latency.bpf.c`) are raw tracepoints, which need
//! no tracefs; on a kernel without raw tracepoints (or with `hook: tracepoint`) the same code
//! runs as the `raw_syscalls` tracepoints instead. The processes to watch are written into two hash maps, by thread group id and
//! by command name, each naming the detector that watches them; when several detectors match
//! a process, the first configured one wins. All detectors of this type share one object, so
//! they start or fail together.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

use aya::maps::HashMap as BpfHashMap;
use aya::programs::{ProgramType, RawTracePoint, TracePoint};
use aya::{include_bytes_aligned, Ebpf};
use tracing::{info, warn};
use wbpf_config::{ContextConfig, SyscallHook, SyscallLatencyConfig};

use crate::detector::{invalid, Detector, Spec, SYSCALL_LATENCY};
use crate::loader::{self, Group};
use crate::ProbeError;

const OBJECT_NAME: &str = "syscall_latency.bpf.o";
static OBJECT: &[u8] = include_bytes_aligned!(concat!(env!("OUT_DIR"), "/syscall_latency.bpf.o"));

const PROG_ENTER: &str = "sys_enter";
const PROG_EXIT: &str = "sys_exit";
const PROG_ENTER_TP: &str = "sys_enter_tp";
const PROG_EXIT_TP: &str = "sys_exit_tp";
const TRACEPOINT_CATEGORY: &str = "raw_syscalls";
const MAP_PIDS: &str = "watched_pids";
const MAP_COMMS: &str = "watched_comms";
const GLOBAL_FILTER_COMMS: &str = "filter_comms";

/// Must equal `WBPF_MAX_FILTER_PIDS`, `WBPF_MAX_FILTER_COMMS` and `WBPF_COMM_LEN`.
const MAX_PIDS: usize = 1024;
const MAX_COMMS: usize = 64;
const COMM_LEN: usize = 16;

/// Which processes to time, and how slow a syscall may be.
#[derive(Debug, Clone)]
pub struct SyscallLatency {
    pub threshold: Duration,
    pub pids: Vec<NonZeroU32>,
    /// Command names, at most 15 bytes each (the kernel's comm keeps 15 and a NUL).
    pub comms: Vec<String>,
    pub hook: SyscallHook,
}

impl SyscallLatency {
    /// Validates one configured detector; returns its instance name and spec.
    pub fn resolve(config: &SyscallLatencyConfig) -> Result<(String, Self), ProbeError> {
        let name = config
            .name
            .clone()
            .unwrap_or_else(|| SYSCALL_LATENCY.to_owned());
        if config.pids.is_empty() && config.comms.is_empty() {
            return Err(invalid(
                &name,
                "set pids or comms: timing every process's syscalls would flood the gateway",
            ));
        }
        let pids = config
            .pids
            .iter()
            .map(|&pid| {
                NonZeroU32::new(pid).ok_or_else(|| invalid(&name, "pid 0 is not a process"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        for comm in &config.comms {
            if comm.is_empty() || comm.len() >= COMM_LEN || comm.contains('\0') {
                return Err(invalid(
                    &name,
                    format!("comm {comm:?} must be 1 to 15 bytes without NUL"),
                ));
            }
        }
        if pids.len() > MAX_PIDS || config.comms.len() > MAX_COMMS {
            return Err(invalid(
                &name,
                format!("at most {MAX_PIDS} pids and {MAX_COMMS} comms"),
            ));
        }

        let spec = SyscallLatency {
            threshold: config.threshold,
            pids,
            comms: config.comms.clone(),
            hook: config.hook,
        };
        Ok((name, spec))
    }

    fn threshold_ns(&self) -> u64 {
        u64::try_from(self.threshold.as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Loads the object, writes thresholds and filters, attaches both raw tracepoints.
pub fn load(detectors: &[&Detector], context: Option<&ContextConfig>) -> Result<Group, ProbeError> {
    let specs: Vec<(&Detector, &SyscallLatency)> = detectors
        .iter()
        .filter_map(|detector| match &detector.spec {
            Spec::SyscallLatency(spec) => Some((*detector, spec)),
            _ => None,
        })
        .collect();
    let (pids, comms) = filters(&specs);
    if pids.len() > MAX_PIDS || comms.len() > MAX_COMMS {
        return Err(ProbeError::InvalidDetector {
            detector: SYSCALL_LATENCY.to_owned(),
            reason: format!(
                "all detectors together watch at most {MAX_PIDS} pids, {MAX_COMMS} comms"
            ),
        });
    }

    let filter_comms = u32::from(!comms.is_empty());
    let mut ebpf =
        loader::load_object(OBJECT_NAME, OBJECT, &[(GLOBAL_FILTER_COMMS, &filter_comms)])?;
    let thresholds = specs
        .iter()
        .map(|(detector, spec)| (detector.index, spec.threshold_ns()));
    loader::write_thresholds(&mut ebpf, thresholds)?;
    write_filters(&mut ebpf, &pids, &comms)?;
    loader::attach_context(&mut ebpf, context)?;
    let hook = chosen_hook(&specs)?;
    attach(&mut ebpf, hook)?;

    for (detector, spec) in &specs {
        info!(
            detector = %detector.name,
            threshold_ns = spec.threshold_ns(),
            pids = spec.pids.len(),
            comms = ?spec.comms,
            hook = ?hook,
            "attached syscall-latency detector"
        );
    }
    let running = specs.iter().map(|(detector, _)| detector.index).collect();
    Group::new(SYSCALL_LATENCY, ebpf, running, Vec::new())
}

/// The hook the detectors asked for, `auto` resolved against this kernel: raw tracepoints
/// unless the kernel is known to lack them.
fn chosen_hook(specs: &[(&Detector, &SyscallLatency)]) -> Result<SyscallHook, ProbeError> {
    let mut asked = specs
        .iter()
        .map(|(_, spec)| spec.hook)
        .filter(|hook| *hook != SyscallHook::Auto);
    let hook = asked.next().unwrap_or(SyscallHook::Auto);
    if asked.any(|other| other != hook) {
        return Err(invalid(
            SYSCALL_LATENCY,
            "all syscall_latency detectors share one hook; set the same `hook` on each",
        ));
    }
    Ok(match hook {
        SyscallHook::Auto => match aya::sys::is_program_supported(ProgramType::RawTracePoint) {
            Ok(false) => SyscallHook::Tracepoint,
            Ok(true) | Err(_) => SyscallHook::RawTracepoint,
        },
        hook => hook,
    })
}

/// Loads and attaches the enter/exit pair of `hook` (never `Auto`).
fn attach(ebpf: &mut Ebpf, hook: SyscallHook) -> Result<(), ProbeError> {
    if hook == SyscallHook::Tracepoint {
        for (name, event) in [(PROG_ENTER_TP, PROG_ENTER), (PROG_EXIT_TP, PROG_EXIT)] {
            loader::tracepoint_dir(TRACEPOINT_CATEGORY, event)?;
            let program: &mut TracePoint = loader::program(ebpf, name)?;
            program
                .load()
                .map_err(|source| loader::load_error(name, source))?;
            program
                .attach(TRACEPOINT_CATEGORY, event)
                .map_err(loader::tracepoint_error(
                    name,
                    format!("tracepoint {TRACEPOINT_CATEGORY}:{event}"),
                ))?;
        }
        return Ok(());
    }
    for name in [PROG_ENTER, PROG_EXIT] {
        let program: &mut RawTracePoint = loader::program(ebpf, name)?;
        program
            .load()
            .map_err(|source| loader::load_error(name, source))?;
        program.attach(name).map_err(loader::tracepoint_error(
            name,
            format!("raw tracepoint {name}"),
        ))?;
    }
    Ok(())
}

/// Which detector watches each pid and comm: the first configured one that names it.
fn filters(specs: &[(&Detector, &SyscallLatency)]) -> (HashMap<u32, u32>, HashMap<String, u32>) {
    let mut pids = HashMap::new();
    let mut comms = HashMap::new();
    for (detector, spec) in specs {
        for pid in &spec.pids {
            if let Entry::Vacant(slot) = pids.entry(pid.get()) {
                slot.insert(detector.index);
            } else {
                let pid = pid.get();
                warn!(detector = %detector.name, pid, "pid watched by an earlier detector");
            }
        }
        for comm in &spec.comms {
            if let Entry::Vacant(slot) = comms.entry(comm.clone()) {
                slot.insert(detector.index);
            } else {
                let detector = &detector.name;
                warn!(%detector, %comm, "comm watched by an earlier detector");
            }
        }
    }
    (pids, comms)
}

fn write_filters(
    ebpf: &mut Ebpf,
    pids: &HashMap<u32, u32>,
    comms: &HashMap<String, u32>,
) -> Result<(), ProbeError> {
    let map = loader::map_mut(ebpf, MAP_PIDS)?;
    let mut map: BpfHashMap<_, u32, u32> =
        BpfHashMap::try_from(map).map_err(loader::map_error(MAP_PIDS))?;
    for (pid, detector) in pids {
        map.insert(pid, detector, 0)
            .map_err(loader::map_error(MAP_PIDS))?;
    }

    let map = loader::map_mut(ebpf, MAP_COMMS)?;
    let mut map: BpfHashMap<_, [u8; COMM_LEN], u32> =
        BpfHashMap::try_from(map).map_err(loader::map_error(MAP_COMMS))?;
    for (comm, detector) in comms {
        map.insert(comm_key(comm), detector, 0)
            .map_err(loader::map_error(MAP_COMMS))?;
    }
    Ok(())
}

/// The NUL-padded form `bpf_get_current_comm` writes.
fn comm_key(comm: &str) -> [u8; COMM_LEN] {
    let mut key = [0; COMM_LEN];
    let len = comm.len().min(COMM_LEN - 1);
    key[..len].copy_from_slice(&comm.as_bytes()[..len]);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pids: Vec<u32>, comms: &[&str]) -> SyscallLatencyConfig {
        SyscallLatencyConfig {
            name: None,
            threshold: Duration::from_millis(10),
            pids,
            comms: comms.iter().map(|comm| comm.to_string()).collect(),
            hook: SyscallHook::Auto,
        }
    }

    #[test]
    fn a_detector_needs_a_filter_and_valid_pids_and_comms() {
        assert!(SyscallLatency::resolve(&config(vec![7], &[])).is_ok());
        assert!(SyscallLatency::resolve(&config(vec![], &["nginx"])).is_ok());
        for bad in [
            config(vec![], &[]),
            config(vec![0], &[]),
            config(vec![], &[""]),
            config(vec![], &["sixteen-bytes-xx"]),
        ] {
            assert!(
                matches!(
                    SyscallLatency::resolve(&bad),
                    Err(ProbeError::InvalidDetector { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_first_detector_naming_a_process_watches_it() {
        let first = Detector {
            index: 0,
            name: "a".to_owned(),
            spec: Spec::SyscallLatency(
                SyscallLatency::resolve(&config(vec![7], &["db"]))
                    .expect("ok")
                    .1,
            ),
        };
        let second = Detector {
            index: 1,
            name: "b".to_owned(),
            spec: Spec::SyscallLatency(
                SyscallLatency::resolve(&config(vec![7, 8], &["db", "web"]))
                    .expect("ok")
                    .1,
            ),
        };
        let specs: Vec<_> = [&first, &second]
            .into_iter()
            .map(|detector| match &detector.spec {
                Spec::SyscallLatency(spec) => (detector, spec),
                _ => unreachable!("built above"),
            })
            .collect();

        let (pids, comms) = filters(&specs);
        assert_eq!(pids, HashMap::from([(7, 0), (8, 1)]));
        assert_eq!(
            comms,
            HashMap::from([("db".to_owned(), 0), ("web".to_owned(), 1)])
        );
        assert_eq!(&comm_key("db")[..3], b"db\0");
    }
}
