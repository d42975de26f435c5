//! The pool-object detector: stale references, double releases and leaks of memory-pool
//! objects, seen through uprobes on the pool library's hooks (`bpf/pool_objects.bpf.c`).
//!
//! The kernel reports stale accesses and double releases as they happen. Leaks are the
//! absence of an event, so userspace finds them by scanning the kernel's table of live
//! objects (`leak_scan`). The three uprobes attach to every process mapping the library.

use std::path::PathBuf;
use std::time::Duration;

use aya::maps::HashMap as BpfHashMap;
use aya::programs::uprobe::{UProbeAttachLocation, UProbeScope};
use aya::programs::UProbe;
use aya::{include_bytes_aligned, Ebpf};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;
use wbpf_config::{ContextConfig, PoolObjectsConfig};

use crate::detector::{invalid, Detector, Spec, POOL_OBJECTS};
use crate::handler::EventHandler;
use crate::leak_scan::{self, LeakScan, PoolObject};
use crate::loader::{self, Group};
use crate::ProbeError;

const OBJECT_NAME: &str = "pool_objects.bpf.o";
static OBJECT: &[u8] = include_bytes_aligned!(concat!(env!("OUT_DIR"), "/pool_objects.bpf.o"));

const PROG_ALLOC: &str = "pool_alloc";
const PROG_RELEASE: &str = "pool_release";
const PROG_ACCESS: &str = "pool_access";
const GLOBAL_DETECTOR: &str = "detector";
const MAP_LIVE: &str = "live_objects";

/// Scans for leaks run at a quarter of the leak age, within these bounds.
const MIN_SCAN_INTERVAL: Duration = Duration::from_millis(100);
const MAX_SCAN_INTERVAL: Duration = Duration::from_secs(5);

/// The hooked library and what counts as a leak.
#[derive(Debug, Clone)]
pub struct PoolObjects {
    pub binary: PathBuf,
    pub alloc_symbol: String,
    pub release_symbol: String,
    pub access_symbol: String,
    pub leak: Option<Leak>,
}

/// An object alive for `age` is a leak when it was never accessed (or, with `idle`, not
/// accessed for `age`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leak {
    pub age: Duration,
    pub idle: bool,
}

impl Leak {
    /// How often the live objects are scanned.
    pub fn scan_interval(&self) -> Duration {
        (self.age / 4).clamp(MIN_SCAN_INTERVAL, MAX_SCAN_INTERVAL)
    }
}

impl PoolObjects {
    /// Validates one configured detector; returns its instance name and spec.
    pub fn resolve(config: &PoolObjectsConfig) -> Result<(String, Self), ProbeError> {
        let name = config
            .name
            .clone()
            .unwrap_or_else(|| POOL_OBJECTS.to_owned());
        if config.binary.as_os_str().is_empty() {
            return Err(invalid(&name, "binary is empty"));
        }
        let symbols = [
            &config.alloc_symbol,
            &config.release_symbol,
            &config.access_symbol,
        ];
        if symbols.iter().any(|symbol| symbol.is_empty()) {
            return Err(invalid(&name, "hook symbols must not be empty"));
        }
        if config.leak_age.is_some_and(|age| age.is_zero()) {
            return Err(invalid(&name, "leak_age must be greater than zero"));
        }

        let spec = PoolObjects {
            binary: config.binary.clone(),
            alloc_symbol: config.alloc_symbol.clone(),
            release_symbol: config.release_symbol.clone(),
            access_symbol: config.access_symbol.clone(),
            leak: config.leak_age.map(|age| Leak {
                age,
                idle: config.leak_idle,
            }),
        };
        Ok((name, spec))
    }

    fn hooks(&self) -> [(&'static str, &str); 3] {
        [
            (PROG_ALLOC, &self.alloc_symbol),
            (PROG_RELEASE, &self.release_symbol),
            (PROG_ACCESS, &self.access_symbol),
        ]
    }
}

/// The one pool-object detector of the table, if it is among `detectors`.
fn find<'a>(detectors: &[&'a Detector]) -> Option<(&'a Detector, &'a PoolObjects)> {
    detectors.iter().find_map(|detector| match &detector.spec {
        Spec::PoolObjects(spec) => Some((*detector, spec)),
        _ => None,
    })
}

/// Loads the object and attaches the three hooks (all or none: a partial set would report
/// every object released by an unseen hook as leaked).
pub fn load(detectors: &[&Detector], context: Option<&ContextConfig>) -> Result<Group, ProbeError> {
    let Some((detector, spec)) = find(detectors) else {
        return Err(ProbeError::NoDetectors);
    };

    let mut ebpf = loader::load_object(OBJECT_NAME, OBJECT, &[(GLOBAL_DETECTOR, &detector.index)])?;
    loader::attach_context(&mut ebpf, context)?;
    for (program, symbol) in spec.hooks() {
        attach(&mut ebpf, program, symbol, spec)?;
    }

    info!(
        detector = %detector.name,
        binary = %spec.binary.display(),
        leak_age_ns = spec.leak.map(|leak| leak.age.as_nanos() as u64),
        leak_idle = spec.leak.map(|leak| leak.idle),
        "attached pool-object detector"
    );
    Group::new(POOL_OBJECTS, ebpf, vec![detector.index], Vec::new())
}

fn attach(
    ebpf: &mut Ebpf,
    program: &'static str,
    symbol: &str,
    spec: &PoolObjects,
) -> Result<(), ProbeError> {
    let uprobe: &mut UProbe = loader::program(ebpf, program)?;
    uprobe
        .load()
        .map_err(|source| loader::load_error(program, source))?;
    uprobe
        .attach(
            UProbeAttachLocation::Symbol(symbol),
            &spec.binary,
            UProbeScope::AllProcesses,
        )
        .map_err(loader::attach_error(program, symbol, &spec.binary))?;
    Ok(())
}

/// Starts the leak scan when the group's detector looks for leaks.
pub fn start_leak_scan(
    group: &mut Group,
    detectors: &[Detector],
    handler: EventHandler,
    stop: watch::Receiver<bool>,
) -> Result<Option<JoinHandle<()>>, ProbeError> {
    let running = group.running_detectors(detectors);
    let Some((detector, spec)) = find(&running) else {
        return Ok(None);
    };
    let Some(leak) = spec.leak else {
        return Ok(None);
    };

    let objects: BpfHashMap<_, u64, PoolObject> =
        BpfHashMap::try_from(loader::take_map(&mut group.ebpf, MAP_LIVE)?)
            .map_err(loader::map_error(MAP_LIVE))?;
    let scan = LeakScan::new(objects, detector.index, leak, handler);
    Ok(Some(leak_scan::spawn(scan, leak.scan_interval(), stop)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(leak_age: Option<Duration>) -> PoolObjectsConfig {
        PoolObjectsConfig {
            name: None,
            binary: PathBuf::from("/srv/app"),
            alloc_symbol: "a".to_owned(),
            release_symbol: "r".to_owned(),
            access_symbol: "x".to_owned(),
            leak_age,
            leak_idle: true,
        }
    }

    #[test]
    fn leak_detection_is_optional_and_its_scan_interval_bounded() {
        let (name, spec) = PoolObjects::resolve(&config(None)).expect("valid");
        assert_eq!(name, "pool_objects");
        assert_eq!(spec.leak, None);

        let (_, spec) = PoolObjects::resolve(&config(Some(Duration::from_secs(2)))).expect("ok");
        let leak = spec.leak.expect("set");
        assert!(leak.idle);
        assert_eq!(leak.scan_interval(), Duration::from_millis(500));
        let slow = Leak {
            age: Duration::from_secs(3600),
            idle: false,
        };
        assert_eq!(slow.scan_interval(), MAX_SCAN_INTERVAL);

        assert!(PoolObjects::resolve(&config(Some(Duration::ZERO))).is_err());
        let mut empty = config(None);
        empty.release_symbol.clear();
        assert!(PoolObjects::resolve(&empty).is_err());
    }
}
