//! What this kernel offers the detectors: program, attach and map types, helpers, kernel BTF,
//! tracefs and the tracepoints the detectors hook.
//!
//! Program and map types and helpers are probed the way libbpf does it (aya's
//! `is_*_supported`: load a minimal program, create a small map). Tracepoints are looked up in
//! tracefs; uprobes through the perf `uprobe` PMU (or tracefs `uprobe_events` on kernels
//! without it). Probing needs the same privileges as loading: without them a check is
//! `Unknown`, with the error, rather than missing.

use std::fmt;
use std::path::Path;

use aya::maps::MapType;
use aya::programs::ProgramType;
use aya::sys::{is_helper_supported, is_map_supported, is_program_supported, BpfHelper};

use crate::loader::{KERNEL_BTF, TRACEFS_ROOTS};

const UPROBE_PMU: &str = "/sys/bus/event_source/devices/uprobe";

/// One thing a detector may need from the kernel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Feature {
    /// Kernel BTF at `/sys/kernel/btf/vmlinux`, for CO-RE relocations.
    Btf,
    /// A mounted tracefs, where tracepoints are listed.
    Tracefs,
    /// Uprobe and uretprobe attachment (the perf `uprobe` PMU or tracefs `uprobe_events`).
    Uprobes,
    Program(ProgramType),
    Map(MapType),
    /// A helper callable from a program type.
    Helper(ProgramType, BpfHelper),
    /// A tracepoint `category:name` listed by tracefs.
    Tracepoint(&'static str, &'static str),
}

/// Whether a feature is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    Available,
    Missing,
    /// The check itself failed (usually missing privileges), with why.
    Unknown(String),
}

/// The features checked on this machine, in the order they were checked.
#[derive(Debug, Clone, Default)]
pub struct KernelFeatures {
    checked: Vec<(Feature, Availability)>,
}

impl KernelFeatures {
    /// Checks one feature unless it was checked already; returns its availability. Blocking:
    /// a program, map or helper check is a `bpf()` syscall, microseconds to a millisecond.
    pub fn check(&mut self, feature: Feature) -> Availability {
        if let Some(seen) = self.get(feature) {
            return seen.clone();
        }
        let availability = check(feature);
        self.checked.push((feature, availability.clone()));
        availability
    }

    /// The availability of a checked feature.
    pub fn get(&self, feature: Feature) -> Option<&Availability> {
        self.checked
            .iter()
            .find(|(checked, _)| *checked == feature)
            .map(|(_, availability)| availability)
    }

    /// Every checked feature with its availability.
    pub fn all(&self) -> &[(Feature, Availability)] {
        &self.checked
    }
}

fn check(feature: Feature) -> Availability {
    match feature {
        Feature::Btf => present(Path::new(KERNEL_BTF).is_file()),
        Feature::Tracefs => match tracefs_events() {
            Some(_) => Availability::Available,
            None => unreadable_tracefs().unwrap_or(Availability::Missing),
        },
        Feature::Uprobes => present(
            Path::new(UPROBE_PMU).join("type").is_file()
                || TRACEFS_ROOTS
                    .iter()
                    .any(|root| Path::new(root).join("uprobe_events").is_file()),
        ),
        Feature::Tracepoint(category, name) => match tracefs_events() {
            Some(events) => present(events.join(category).join(name).is_dir()),
            None => unreadable_tracefs()
                .unwrap_or_else(|| Availability::Unknown("tracefs is not mounted".to_owned())),
        },
        Feature::Program(program_type) => answer(is_program_supported(program_type)),
        Feature::Map(map_type) => answer(is_map_supported(map_type)),
        Feature::Helper(program_type, helper) => answer(is_helper_supported(program_type, helper)),
    }
}

/// The `events` directory of the first mounted tracefs.
pub fn tracefs_events() -> Option<std::path::PathBuf> {
    TRACEFS_ROOTS
        .iter()
        .map(|root| Path::new(root).join("events"))
        .find(|events| events.is_dir())
}

/// `Unknown` when a tracefs root exists but cannot be read (not root), else `None`.
fn unreadable_tracefs() -> Option<Availability> {
    TRACEFS_ROOTS
        .iter()
        .find_map(|root| match std::fs::read_dir(Path::new(root)) {
            Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => Some(
                Availability::Unknown(format!("{root} is not readable: {error}")),
            ),
            _ => None,
        })
}

fn present(found: bool) -> Availability {
    if found {
        Availability::Available
    } else {
        Availability::Missing
    }
}

fn answer<E: std::error::Error>(result: Result<bool, E>) -> Availability {
    match result {
        Ok(found) => present(found),
        Err(error) => {
            let mut reason = error.to_string();
            let mut source = error.source();
            while let Some(cause) = source {
                reason = format!("{reason}: {cause}");
                source = cause.source();
            }
            Availability::Unknown(reason)
        }
    }
}

impl fmt::Display for Feature {
    /// As a person would name it: `program type raw_tracepoint`, `helper
    /// bpf_get_attach_cookie (uprobe)`, `tracepoint oom:mark_victim`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Feature::Btf => write!(f, "kernel BTF ({KERNEL_BTF})"),
            Feature::Tracefs => f.write_str("a mounted tracefs"),
            Feature::Uprobes => f.write_str("uprobes"),
            Feature::Program(program_type) => {
                write!(f, "program type {}", program_name(*program_type))
            }
            Feature::Map(map_type) => write!(f, "map type {}", map_name(*map_type)),
            Feature::Helper(program_type, helper) => write!(
                f,
                "helper {} ({})",
                helper_name(*helper),
                program_name(*program_type)
            ),
            Feature::Tracepoint(category, name) => write!(f, "tracepoint {category}:{name}"),
        }
    }
}

impl fmt::Display for Availability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Availability::Available => f.write_str("yes"),
            Availability::Missing => f.write_str("no"),
            Availability::Unknown(reason) => write!(f, "unknown ({reason})"),
        }
    }
}

/// The kernel's name of a program type (what `bpftool feature` prints).
fn program_name(program_type: ProgramType) -> &'static str {
    match program_type {
        ProgramType::KProbe => "kprobe (uprobes)",
        ProgramType::TracePoint => "tracepoint",
        ProgramType::RawTracePoint => "raw_tracepoint",
        _ => "other",
    }
}

fn map_name(map_type: MapType) -> &'static str {
    match map_type {
        MapType::Hash => "hash",
        MapType::Array => "array",
        MapType::PerCpuArray => "percpu_array",
        MapType::LruHash => "lru_hash",
        MapType::RingBuf => "ringbuf",
        _ => "other",
    }
}

fn helper_name(helper: BpfHelper) -> String {
    let name = format!("{helper:?}");
    match name.strip_prefix("BPF_FUNC_") {
        Some(short) => format!("bpf_{short}"),
        None => name,
    }
}
