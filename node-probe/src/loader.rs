//! Loads the embedded eBPF object with aya and attaches its programs.
//!
//! `trace_context` goes on the workload's context function once. `fn_enter` and `fn_exit` are
//! loaded once and attached once per detector, each attachment carrying the detector's index
//! as its BPF cookie (`bpf_get_attach_cookie`, kernel 5.15+); the kernel side looks the
//! threshold up by that index. Everything here is blocking (BTF parsing, the verifier).

use std::path::Path;

use aya::maps::{Array, MapData, PerCpuArray, RingBuf};
use aya::programs::uprobe::{UProbeAttachLocation, UProbeAttachPoint, UProbeScope};
use aya::programs::UProbe;
use aya::{include_bytes_aligned, Btf, Ebpf, EbpfLoader};
use tracing::{info, warn};
use wbpf_config::ContextConfig;

use crate::detector::Detector;
use crate::error::Hint;
use crate::ProbeError;

const OBJECT_NAME: &str = "function_latency.bpf.o";
static OBJECT: &[u8] = include_bytes_aligned!(concat!(env!("OUT_DIR"), "/function_latency.bpf.o"));
const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

const PROG_TRACE_CONTEXT: &str = "trace_context";
const PROG_ENTER: &str = "fn_enter";
const PROG_EXIT: &str = "fn_exit";

const MAP_THRESHOLDS: &str = "thresholds";
const MAP_EVENTS: &str = "events";
const MAP_COUNTERS: &str = "counters";

/// Must match `WBPF_COUNTER_*` in `bpf/wbpf.h`.
pub const COUNTER_RINGBUF_FULL: u32 = 0;
pub const COUNTER_UNMATCHED_RETURN: u32 = 1;

/// The loaded object. Dropping `ebpf` detaches and unloads every program; the maps taken out
/// of it stay usable until they are dropped too.
pub struct Loaded {
    pub ebpf: Ebpf,
    pub events: RingBuf<MapData>,
    pub counters: PerCpuArray<MapData, u64>,
}

/// Loads the object, writes the thresholds and attaches every program.
pub fn load(detectors: &[Detector], context: Option<&ContextConfig>) -> Result<Loaded, ProbeError> {
    let btf = Btf::from_sys_fs().map_err(|source| ProbeError::KernelBtf {
        path: KERNEL_BTF.into(),
        source,
    })?;
    let mut ebpf = EbpfLoader::new()
        .btf(Some(&btf))
        .load(OBJECT)
        .map_err(|source| ProbeError::LoadObject {
            object: OBJECT_NAME,
            hint: Hint::for_error(&source),
            source: Box::new(source),
        })?;

    write_thresholds(&mut ebpf, detectors)?;
    match context {
        Some(context) => attach_context(&mut ebpf, context)?,
        None => warn!("no probe.context configured; triggers will carry no trace id"),
    }
    attach_detectors(&mut ebpf, detectors)?;

    let events =
        RingBuf::try_from(take_map(&mut ebpf, MAP_EVENTS)?).map_err(map_error(MAP_EVENTS))?;
    let counters = PerCpuArray::try_from(take_map(&mut ebpf, MAP_COUNTERS)?)
        .map_err(map_error(MAP_COUNTERS))?;
    Ok(Loaded {
        ebpf,
        events,
        counters,
    })
}

fn write_thresholds(ebpf: &mut Ebpf, detectors: &[Detector]) -> Result<(), ProbeError> {
    let map = ebpf
        .map_mut(MAP_THRESHOLDS)
        .ok_or(ProbeError::MissingInObject {
            kind: "map",
            name: MAP_THRESHOLDS,
        })?;
    let mut thresholds: Array<_, u64> = Array::try_from(map).map_err(map_error(MAP_THRESHOLDS))?;
    for detector in detectors {
        thresholds
            .set(detector.index, detector.threshold_ns(), 0)
            .map_err(map_error(MAP_THRESHOLDS))?;
    }
    Ok(())
}

fn attach_context(ebpf: &mut Ebpf, context: &ContextConfig) -> Result<(), ProbeError> {
    let program = load_program(ebpf, PROG_TRACE_CONTEXT)?;
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

fn attach_detectors(ebpf: &mut Ebpf, detectors: &[Detector]) -> Result<(), ProbeError> {
    load_program(ebpf, PROG_ENTER)?;
    load_program(ebpf, PROG_EXIT)?;

    for detector in detectors {
        let scope = detector
            .pid
            .map_or(UProbeScope::AllProcesses, UProbeScope::OneProcess);
        for program_name in [PROG_ENTER, PROG_EXIT] {
            let point = UProbeAttachPoint {
                location: UProbeAttachLocation::Symbol(&detector.symbol),
                cookie: Some(u64::from(detector.index)),
            };
            uprobe(ebpf, program_name)?
                .attach(point, &detector.binary, scope)
                .map_err(attach_error(
                    program_name,
                    &detector.symbol,
                    &detector.binary,
                ))?;
        }

        info!(
            detector = %detector.name,
            symbol = %detector.symbol,
            binary = %detector.binary.display(),
            threshold_ns = detector.threshold_ns(),
            pid = detector.pid.map(|pid| pid.get()),
            "attached function-latency detector"
        );
    }
    Ok(())
}

fn uprobe<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut UProbe, ProbeError> {
    let program = ebpf.program_mut(name).ok_or(ProbeError::MissingInObject {
        kind: "program",
        name,
    })?;
    program
        .try_into()
        .map_err(|source| load_error(name, source))
}

fn load_program<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut UProbe, ProbeError> {
    let program = uprobe(ebpf, name)?;
    program.load().map_err(|source| load_error(name, source))?;
    Ok(program)
}

fn take_map(ebpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map, ProbeError> {
    ebpf.take_map(name)
        .ok_or(ProbeError::MissingInObject { kind: "map", name })
}

fn load_error(program: &'static str, source: aya::programs::ProgramError) -> ProbeError {
    ProbeError::LoadProgram {
        program,
        hint: Hint::for_error(&source),
        source: Box::new(source),
    }
}

fn attach_error<'a>(
    program: &'static str,
    symbol: &'a str,
    binary: &'a Path,
) -> impl FnOnce(aya::programs::ProgramError) -> ProbeError + 'a {
    move |source| ProbeError::Attach {
        program,
        symbol: symbol.to_owned(),
        binary: binary.to_owned(),
        hint: Hint::for_error(&source),
        source: Box::new(source),
    }
}

fn map_error(map: &'static str) -> impl Fn(aya::maps::MapError) -> ProbeError {
    move |source| ProbeError::Map {
        map,
        source: Box::new(source),
    }
}
