//! The syscall-latency detector: slow syscalls of chosen processes.
//!
//! `sys_enter` and `sys_exit` (`bpf/syscall_latency.bpf.c`) are raw tracepoints, which need
//! no tracefs; on a kernel without raw tracepoints (or with `hook: tracepoint`) the same code
//! runs as the `raw_syscalls` tracepoints instead. The processes to watch are written into
//! three hash maps, by thread group id, by cgroup v2 id and by command name, each naming the
//! detector that watches them; when several detectors name the same key, the first configured
//! one wins. All detectors of this type share one object, so they start or fail together.
//!
//! A cgroup is named by its directory; its id is the directory's inode number, which is what
//! `bpf_get_current_cgroup_id` returns for the threads directly in it. The id is read when the
//! detector is resolved (at start and on reload): a cgroup created later, or deleted and
//! created again, is watched from the next reload on.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::ffi::CString;
use std::mem::MaybeUninit;
use std::num::NonZeroU32;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
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
const MAP_CGROUPS: &str = "watched_cgroups";
const GLOBAL_FILTER_COMMS: &str = "filter_comms";
const GLOBAL_FILTER_CGROUPS: &str = "filter_cgroups";

/// Must equal `WBPF_MAX_FILTER_PIDS`, `WBPF_MAX_FILTER_COMMS`, `WBPF_MAX_FILTER_CGROUPS` and
/// `WBPF_COMM_LEN`.
const MAX_PIDS: usize = 1024;
const MAX_COMMS: usize = 64;
const MAX_CGROUPS: usize = 64;
const COMM_LEN: usize = 16;

/// Which processes to time, and how slow a syscall may be.
#[derive(Debug, Clone)]
pub struct SyscallLatency {
    pub threshold: Duration,
    pub pids: Vec<NonZeroU32>,
    /// Command names, at most 15 bytes each (the kernel's comm keeps 15 and a NUL).
    pub comms: Vec<String>,
    pub cgroups: Vec<Cgroup>,
    pub hook: SyscallHook,
}

/// A watched cgroup v2 and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    pub path: PathBuf,
    pub id: u64,
}

impl SyscallLatency {
    /// Validates one configured detector; returns its instance name and spec.
    pub fn resolve(config: &SyscallLatencyConfig) -> Result<(String, Self), ProbeError> {
        let name = config
            .name
            .clone()
            .unwrap_or_else(|| SYSCALL_LATENCY.to_owned());
        if config.pids.is_empty() && config.comms.is_empty() && config.cgroups.is_empty() {
            return Err(invalid(
                &name,
                "set pids, comms or cgroups: timing every process's syscalls would flood the \
                 gateway",
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
        if pids.len() > MAX_PIDS
            || config.comms.len() > MAX_COMMS
            || config.cgroups.len() > MAX_CGROUPS
        {
            return Err(invalid(
                &name,
                format!("at most {MAX_PIDS} pids, {MAX_COMMS} comms and {MAX_CGROUPS} cgroups"),
            ));
        }
        let cgroups = config
            .cgroups
            .iter()
            .map(|path| {
                let id = cgroup_id(path).map_err(|reason| invalid(&name, reason))?;
                Ok(Cgroup {
                    path: path.clone(),
                    id,
                })
            })
            .collect::<Result<Vec<_>, ProbeError>>()?;

        let spec = SyscallLatency {
            threshold: config.threshold,
            pids,
            comms: config.comms.clone(),
            cgroups,
            hook: config.hook,
        };
        Ok((name, spec))
    }

    fn threshold_ns(&self) -> u64 {
        u64::try_from(self.threshold.as_nanos()).unwrap_or(u64::MAX)
    }
}

/// The id of the cgroup v2 whose directory is `path`: the directory's inode number. A path
/// in a cgroup v1 hierarchy is refused, since its inode numbers are not cgroup v2 ids.
fn cgroup_id(path: &Path) -> Result<u64, String> {
    let shown = path.display();
    if !path.is_absolute() {
        return Err(format!(
            "cgroup {shown}: give the absolute path of its directory"
        ));
    }
    let c_path =
        CString::new(path.as_os_str().as_bytes()).map_err(|_| format!("cgroup {shown}: NUL"))?;
    let mut fs = MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: `c_path` is NUL-terminated and outlives the call; `fs` is a buffer of the type
    // statfs(2) fills.
    if unsafe { libc::statfs(c_path.as_ptr(), fs.as_mut_ptr()) } != 0 {
        let error = std::io::Error::last_os_error();
        return Err(format!("cgroup {shown}: {error}"));
    }
    // SAFETY: statfs returned 0, so it filled the buffer (and it was zeroed before).
    let fs = unsafe { fs.assume_init() };
    #[allow(clippy::unnecessary_cast)] // the field and constant types differ between libcs
    if fs.f_type as u64 != libc::CGROUP2_SUPER_MAGIC as u64 {
        return Err(format!(
            "cgroup {shown} is not in a cgroup v2 file system (mounted as `cgroup2`, often at \
             /sys/fs/cgroup or /sys/fs/cgroup/unified)"
        ));
    }
    let metadata = std::fs::metadata(path).map_err(|error| format!("cgroup {shown}: {error}"))?;
    if !metadata.is_dir() {
        return Err(format!("cgroup {shown} is not a directory"));
    }
    Ok(metadata.ino())
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
    let filters = filters(&specs);
    if filters.pids.len() > MAX_PIDS
        || filters.comms.len() > MAX_COMMS
        || filters.cgroups.len() > MAX_CGROUPS
    {
        return Err(ProbeError::InvalidDetector {
            detector: SYSCALL_LATENCY.to_owned(),
            reason: format!(
                "all detectors together watch at most {MAX_PIDS} pids, {MAX_COMMS} comms, \
                 {MAX_CGROUPS} cgroups"
            ),
        });
    }

    let filter_comms = u32::from(!filters.comms.is_empty());
    let filter_cgroups = u32::from(!filters.cgroups.is_empty());
    let globals = [
        (GLOBAL_FILTER_COMMS, &filter_comms),
        (GLOBAL_FILTER_CGROUPS, &filter_cgroups),
    ];
    let mut ebpf = loader::load_object(OBJECT_NAME, OBJECT, &globals)?;
    let thresholds = specs
        .iter()
        .map(|(detector, spec)| (detector.index, spec.threshold_ns()));
    loader::write_thresholds(&mut ebpf, thresholds)?;
    write_filters(&mut ebpf, &filters)?;
    loader::attach_context(&mut ebpf, context)?;
    let hook = chosen_hook(&specs)?;
    attach(&mut ebpf, hook)?;

    for (detector, spec) in &specs {
        info!(
            detector = %detector.name,
            threshold_ns = spec.threshold_ns(),
            pids = spec.pids.len(),
            comms = ?spec.comms,
            cgroups = ?spec.cgroups.iter().map(|c| &c.path).collect::<Vec<_>>(),
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

/// Which detector watches each pid, comm and cgroup id.
#[derive(Debug, Default, PartialEq, Eq)]
struct Filters {
    pids: HashMap<u32, u32>,
    comms: HashMap<String, u32>,
    cgroups: HashMap<u64, u32>,
}

/// The filters of all detectors: the first configured one naming a key watches it.
fn filters(specs: &[(&Detector, &SyscallLatency)]) -> Filters {
    let mut pids = HashMap::new();
    let mut comms = HashMap::new();
    let mut cgroups = HashMap::new();
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
        for cgroup in &spec.cgroups {
            if let Entry::Vacant(slot) = cgroups.entry(cgroup.id) {
                slot.insert(detector.index);
            } else {
                let (detector, path) = (&detector.name, cgroup.path.display());
                warn!(%detector, cgroup = %path, "cgroup watched by an earlier detector");
            }
        }
    }
    Filters {
        pids,
        comms,
        cgroups,
    }
}

fn write_filters(ebpf: &mut Ebpf, filters: &Filters) -> Result<(), ProbeError> {
    let map = loader::map_mut(ebpf, MAP_PIDS)?;
    let mut map: BpfHashMap<_, u32, u32> =
        BpfHashMap::try_from(map).map_err(loader::map_error(MAP_PIDS))?;
    for (pid, detector) in &filters.pids {
        map.insert(pid, detector, 0)
            .map_err(loader::map_error(MAP_PIDS))?;
    }

    let map = loader::map_mut(ebpf, MAP_COMMS)?;
    let mut map: BpfHashMap<_, [u8; COMM_LEN], u32> =
        BpfHashMap::try_from(map).map_err(loader::map_error(MAP_COMMS))?;
    for (comm, detector) in &filters.comms {
        map.insert(comm_key(comm), detector, 0)
            .map_err(loader::map_error(MAP_COMMS))?;
    }

    let map = loader::map_mut(ebpf, MAP_CGROUPS)?;
    let mut map: BpfHashMap<_, u64, u32> =
        BpfHashMap::try_from(map).map_err(loader::map_error(MAP_CGROUPS))?;
    for (cgroup, detector) in &filters.cgroups {
        map.insert(cgroup, detector, 0)
            .map_err(loader::map_error(MAP_CGROUPS))?;
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
            cgroups: Vec::new(),
            hook: SyscallHook::Auto,
        }
    }

    fn with_cgroup(path: &Path) -> SyscallLatencyConfig {
        SyscallLatencyConfig {
            cgroups: vec![path.to_owned()],
            ..config(vec![], &[])
        }
    }

    #[test]
    fn a_cgroup_filter_needs_an_absolute_cgroup_v2_directory() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cases = [
            (PathBuf::from("relative/cgroup"), "absolute path"),
            (dir.path().join("missing"), "No such file"),
            (dir.path().to_owned(), "not in a cgroup v2 file system"),
        ];
        for (path, expected) in cases {
            let Err(ProbeError::InvalidDetector { reason, .. }) =
                SyscallLatency::resolve(&with_cgroup(&path))
            else {
                panic!("{} was accepted", path.display());
            };
            assert!(reason.contains(expected), "{}: {reason}", path.display());
            assert!(reason.contains(&path.display().to_string()), "{reason}");
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

    fn cgroup(path: &str, id: u64) -> Cgroup {
        Cgroup {
            path: path.into(),
            id,
        }
    }

    #[test]
    fn the_first_detector_naming_a_process_watches_it() {
        let mut spec = SyscallLatency::resolve(&config(vec![7], &["db"]))
            .expect("ok")
            .1;
        spec.cgroups = vec![cgroup("/cg/db", 70)];
        let first = Detector {
            index: 0,
            name: "a".to_owned(),
            spec: Spec::SyscallLatency(spec),
        };
        let mut spec = SyscallLatency::resolve(&config(vec![7, 8], &["db", "web"]))
            .expect("ok")
            .1;
        spec.cgroups = vec![cgroup("/cg/db", 70), cgroup("/cg/web", 80)];
        let second = Detector {
            index: 1,
            name: "b".to_owned(),
            spec: Spec::SyscallLatency(spec),
        };
        let specs: Vec<_> = [&first, &second]
            .into_iter()
            .map(|detector| match &detector.spec {
                Spec::SyscallLatency(spec) => (detector, spec),
                _ => unreachable!("built above"),
            })
            .collect();

        let filters = filters(&specs);
        assert_eq!(filters.pids, HashMap::from([(7, 0), (8, 1)]));
        assert_eq!(
            filters.comms,
            HashMap::from([("db".to_owned(), 0), ("web".to_owned(), 1)])
        );
        assert_eq!(filters.cgroups, HashMap::from([(70, 0), (80, 1)]));
        assert_eq!(&comm_key("db")[..3], b"db\0");
    }
}
