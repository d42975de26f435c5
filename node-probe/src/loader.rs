//! What loading every detector object has in common: the kernel BTF, the aya loader, the
//! context uprobe, the shared maps, program lookup and the errors that name what failed.
//!
//! Each detector type is one object (`bpf/<type>.bpf.c`) loaded into its own [`Group`], so a
//! type that cannot load on this kernel leaves the others running. Everything here is
//! blocking (BTF parsing, the verifier).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aya::maps::{Array, Map, MapData, PerCpuArray, RingBuf};
use aya::programs::uprobe::UProbeAttachLocation;
use aya::programs::uprobe::UProbeScope;
use aya::programs::{Program, ProgramError, UProbe};
use aya::{Btf, Ebpf, EbpfLoader};
use tracing::info;
use wbpf_config::ContextConfig;

use crate::detector::Detector;
use crate::error::{DetectorFailure, Hint};
use crate::ProbeError;

pub const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";
pub const TRACEFS_ROOTS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

const PROG_TRACE_CONTEXT: &str = "trace_context";
pub const MAP_THRESHOLDS: &str = "thresholds";
const MAP_EVENTS: &str = "events";
const MAP_COUNTERS: &str = "counters";

/// Must match `WBPF_COUNTER_*` in `bpf/wbpf.h`.
pub const COUNTER_RINGBUF_FULL: u32 = 0;
pub const COUNTER_UNMATCHED_RETURN: u32 = 1;
pub const COUNTER_MAP_FULL: u32 = 2;

/// One loaded object. Dropping `ebpf` detaches and unloads its programs; the maps taken out
/// of it stay usable until they are dropped too.
pub struct Group {
    pub detector_type: &'static str,
    pub ebpf: Ebpf,
    pub events: RingBuf<MapData>,
    pub counters: PerCpuArray<MapData, u64>,
    /// Indexes of the detectors that are attached.
    pub running: Vec<u32>,
    /// Detectors of this type that could not attach, and why.
    pub failures: Vec<DetectorFailure>,
}

impl Group {
    /// Takes the ring buffer and counters out of a loaded object.
    pub fn new(
        detector_type: &'static str,
        mut ebpf: Ebpf,
        running: Vec<u32>,
        failures: Vec<DetectorFailure>,
    ) -> Result<Group, ProbeError> {
        let events =
            RingBuf::try_from(take_map(&mut ebpf, MAP_EVENTS)?).map_err(map_error(MAP_EVENTS))?;
        let counters = PerCpuArray::try_from(take_map(&mut ebpf, MAP_COUNTERS)?)
            .map_err(map_error(MAP_COUNTERS))?;
        Ok(Group {
            detector_type,
            ebpf,
            events,
            counters,
            running,
            failures,
        })
    }

    /// The detectors of `detectors` that this group runs.
    pub fn running_detectors<'a>(&self, detectors: &'a [Detector]) -> Vec<&'a Detector> {
        self.running
            .iter()
            .filter_map(|&index| crate::table::find(detectors, index))
            .collect()
    }
}

/// Loads an embedded object against the kernel's BTF, overriding the named `u32` globals.
pub fn load_object(
    object: &'static str,
    bytes: &[u8],
    globals: &[(&str, &u32)],
) -> Result<Ebpf, ProbeError> {
    let btf = Btf::from_sys_fs().map_err(|source| ProbeError::KernelBtf {
        path: KERNEL_BTF.into(),
        source,
    })?;
    let mut loader = EbpfLoader::new();
    loader.btf(Some(&btf));
    for &(name, value) in globals {
        loader.override_global(name, value, true);
    }
    loader.load(bytes).map_err(|source| ProbeError::LoadObject {
        object,
        hint: Hint::for_error(&source),
        source: Box::new(source),
    })
}

/// Attaches the object's copy of the context uprobe, when a context function is configured.
pub fn attach_context(ebpf: &mut Ebpf, context: Option<&ContextConfig>) -> Result<(), ProbeError> {
    let Some(context) = context else {
        return Ok(());
    };
    let program: &mut UProbe = program(ebpf, PROG_TRACE_CONTEXT)?;
    program
        .load()
        .map_err(|source| load_error(PROG_TRACE_CONTEXT, source))?;
    let point = UProbeAttachLocation::Symbol(&context.symbol);
    program
        .attach(point, &context.binary, UProbeScope::AllProcesses)
        .map_err(attach_error(
            PROG_TRACE_CONTEXT,
            &context.symbol,
            &context.binary,
        ))?;
    info!(
        symbol = %context.symbol,
        binary = %context.binary.display(),
        "tracking trace context"
    );
    Ok(())
}

/// Writes `(detector index, nanoseconds)` pairs into the object's `thresholds` map.
pub fn write_thresholds(
    ebpf: &mut Ebpf,
    thresholds: impl IntoIterator<Item = (u32, u64)>,
) -> Result<(), ProbeError> {
    let map = map_mut(ebpf, MAP_THRESHOLDS)?;
    let mut map: Array<_, u64> = Array::try_from(map).map_err(map_error(MAP_THRESHOLDS))?;
    for (index, threshold_ns) in thresholds {
        map.set(index, threshold_ns, 0)
            .map_err(map_error(MAP_THRESHOLDS))?;
    }
    Ok(())
}

/// A program of the object, as its type.
pub fn program<'a, T>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut T, ProbeError>
where
    &'a mut T: TryFrom<&'a mut Program, Error = ProgramError>,
{
    let program = ebpf.program_mut(name).ok_or(ProbeError::MissingInObject {
        kind: "program",
        name,
    })?;
    program
        .try_into()
        .map_err(|source| load_error(name, source))
}

/// Where tracefs lists the kernel's tracepoints, or which feature is missing.
pub fn tracepoint_dir(category: &str, name: &str) -> Result<PathBuf, ProbeError> {
    let events = TRACEFS_ROOTS
        .iter()
        .map(|root| Path::new(root).join("events"))
        .find(|events| events.is_dir())
        .ok_or(ProbeError::MissingKernelFeature {
            feature: "a mounted tracefs".to_owned(),
            hint: "; mount it with `mount -t tracefs nodev /sys/kernel/tracing`",
        })?;
    let dir = events.join(category).join(name);
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(ProbeError::MissingKernelFeature {
            feature: format!("tracepoint {category}:{name}"),
            hint: "",
        })
    }
}

/// Records the same failure for every detector in `detectors`.
pub fn fail_all(detectors: &[&Detector], error: ProbeError) -> Vec<DetectorFailure> {
    let error = Arc::new(error);
    detectors
        .iter()
        .map(|detector| DetectorFailure {
            detector: detector.name.clone(),
            detector_type: detector.type_name(),
            error: Arc::clone(&error),
        })
        .collect()
}

/// A map still owned by the object (taking it out would close it before programs load).
pub fn map_mut<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut Map, ProbeError> {
    ebpf.map_mut(name)
        .ok_or(ProbeError::MissingInObject { kind: "map", name })
}

pub fn take_map(ebpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map, ProbeError> {
    ebpf.take_map(name)
        .ok_or(ProbeError::MissingInObject { kind: "map", name })
}

pub fn load_error(program: &'static str, source: ProgramError) -> ProbeError {
    ProbeError::LoadProgram {
        program,
        hint: Hint::for_error(&source),
        source: Box::new(source),
    }
}

pub fn attach_error<'a>(
    program: &'static str,
    symbol: &'a str,
    binary: &'a Path,
) -> impl FnOnce(ProgramError) -> ProbeError + 'a {
    move |source| ProbeError::Attach {
        program,
        symbol: symbol.to_owned(),
        binary: binary.to_owned(),
        hint: Hint::for_error(&source),
        source: Box::new(source),
    }
}

pub fn tracepoint_error(
    program: &'static str,
    tracepoint: String,
) -> impl FnOnce(ProgramError) -> ProbeError {
    move |source| ProbeError::AttachTracepoint {
        program,
        tracepoint,
        hint: Hint::for_error(&source),
        source: Box::new(source),
    }
}

pub fn map_error(map: &'static str) -> impl Fn(aya::maps::MapError) -> ProbeError {
    move |source| ProbeError::Map {
        map,
        source: Box::new(source),
    }
}
