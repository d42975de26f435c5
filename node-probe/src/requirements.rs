//! What each detector type needs from the kernel, and the verdict for one detector.
//!
//! The lists follow the C sources: the program type each object's programs have, the map
//! types it declares, the helpers it calls beyond the basic map helpers, and the hooks it
//! attaches. A detector is held back only by a feature known to be missing; one whose check
//! failed (`Unknown`) is loaded anyway and the load says what went wrong.

use aya::maps::MapType;
use aya::programs::ProgramType;
use aya::sys::BpfHelper;
use wbpf_config::SyscallHook;

use crate::detector::{self, Detector, Spec};
use crate::features::{Availability, Feature, KernelFeatures};
use crate::memory_pressure::{MIGRATE, OOM, RECLAIM};
use crate::ProbeError;

/// Maps and helpers every object uses (`bpf/common.h`): the event ring buffer, the
/// per-CPU counters, the thread → trace context map.
const COMMON_MAPS: [MapType; 4] = [
    MapType::RingBuf,
    MapType::PerCpuArray,
    MapType::Array,
    MapType::LruHash,
];
const COMMON_HELPERS: [BpfHelper; 3] = [
    BpfHelper::BPF_FUNC_ringbuf_reserve,
    BpfHelper::BPF_FUNC_ktime_get_ns,
    BpfHelper::BPF_FUNC_get_current_pid_tgid,
];

/// The program type of a detector type's programs.
pub fn program_type(detector_type: &str) -> ProgramType {
    match detector_type {
        detector::FUNCTION_LATENCY | detector::POOL_OBJECTS => ProgramType::KProbe,
        detector::SYSCALL_LATENCY => ProgramType::RawTracePoint,
        _ => ProgramType::TracePoint,
    }
}

/// Everything a detector type needs in its fullest configuration (for `memory_pressure`:
/// with migration and OOM watching on), `context` adding the trace-context uprobe.
pub fn of_type(detector_type: &str, context: bool) -> Vec<Feature> {
    of_type_hooked(detector_type, context, SyscallHook::RawTracepoint)
}

/// [`of_type`], with `syscall_latency` on the given concrete hook.
fn of_type_hooked(detector_type: &str, context: bool, hook: SyscallHook) -> Vec<Feature> {
    let program = match (detector_type, hook) {
        (detector::SYSCALL_LATENCY, SyscallHook::Tracepoint) => ProgramType::TracePoint,
        _ => program_type(detector_type),
    };
    let mut needs = vec![Feature::Btf, Feature::Program(program)];
    needs.extend(COMMON_MAPS.map(Feature::Map));
    needs.extend(COMMON_HELPERS.map(|helper| Feature::Helper(program, helper)));
    if context || program == ProgramType::KProbe {
        needs.push(Feature::Uprobes);
    }
    if context && program != ProgramType::KProbe {
        needs.push(Feature::Program(ProgramType::KProbe));
    }

    let helper = |helper| Feature::Helper(program, helper);
    match detector_type {
        detector::FUNCTION_LATENCY => {
            needs.push(helper(BpfHelper::BPF_FUNC_get_attach_cookie));
        }
        detector::SYSCALL_LATENCY => {
            needs.push(Feature::Map(MapType::Hash));
            needs.push(helper(BpfHelper::BPF_FUNC_get_current_comm));
            needs.push(helper(BpfHelper::BPF_FUNC_get_current_cgroup_id));
            if hook == SyscallHook::Tracepoint {
                needs.push(Feature::Tracefs);
                needs.push(Feature::Tracepoint("raw_syscalls", "sys_enter"));
                needs.push(Feature::Tracepoint("raw_syscalls", "sys_exit"));
            }
        }
        detector::MEMORY_PRESSURE => {
            needs.push(helper(BpfHelper::BPF_FUNC_get_current_task_btf));
            needs.push(helper(BpfHelper::BPF_FUNC_probe_read_kernel_str));
            needs.push(Feature::Tracefs);
            let hooks = RECLAIM.iter().chain([&MIGRATE, &OOM]);
            needs.extend(
                hooks
                    .filter(|hook| !hook.optional)
                    .map(|hook| Feature::Tracepoint(hook.category, hook.name)),
            );
        }
        detector::POOL_OBJECTS => {
            needs.push(Feature::Map(MapType::Hash));
            needs.push(helper(BpfHelper::BPF_FUNC_get_current_comm));
        }
        _ => {
            needs.push(Feature::Map(MapType::Hash));
            needs.push(Feature::Tracefs);
            needs.push(Feature::Tracepoint(
                crate::pool_faults::CATEGORY,
                crate::pool_faults::TRACEPOINT,
            ));
        }
    }
    needs
}

/// The hook a `syscall_latency` detector asking for `hook` gets here: `auto` is raw
/// tracepoints unless this kernel is known to lack them.
pub fn syscall_hook(features: &mut KernelFeatures, hook: SyscallHook) -> SyscallHook {
    match hook {
        SyscallHook::Auto => {
            let raw = Feature::Program(ProgramType::RawTracePoint);
            if features.check(raw) == Availability::Missing {
                SyscallHook::Tracepoint
            } else {
                SyscallHook::RawTracepoint
            }
        }
        hook => hook,
    }
}

/// What one configured detector needs: its type's needs on the hook it gets, less the
/// tracepoints its settings leave unused.
pub fn of_detector(
    features: &mut KernelFeatures,
    detector: &Detector,
    context: bool,
) -> Vec<Feature> {
    let spec = match &detector.spec {
        Spec::SyscallLatency(spec) => {
            let hook = syscall_hook(features, spec.hook);
            return of_type_hooked(detector.type_name(), context, hook);
        }
        Spec::MemoryPressure(spec) => spec,
        _ => return of_type(detector.type_name(), context),
    };
    let needs = of_type(detector.type_name(), context);
    let used: Vec<Feature> = spec
        .hooks()
        .into_iter()
        .filter(|hook| !hook.optional)
        .map(|hook| Feature::Tracepoint(hook.category, hook.name))
        .collect();
    needs
        .into_iter()
        .filter(|need| !matches!(need, Feature::Tracepoint(..)) || used.contains(need))
        .collect()
}

/// The first of `needs` this kernel is known to lack, as the error a detector fails with.
pub fn missing(features: &mut KernelFeatures, needs: &[Feature]) -> Option<ProbeError> {
    let lacking = needs
        .iter()
        .find(|need| features.check(**need) == Availability::Missing)?;
    Some(ProbeError::MissingKernelFeature {
        feature: lacking.to_string(),
        hint: hint(*lacking),
    })
}

fn hint(feature: Feature) -> &'static str {
    match feature {
        Feature::Tracefs | Feature::Tracepoint(..)
            if crate::features::tracefs_events().is_none() =>
        {
            "; mount tracefs with `mount -t tracefs nodev /sys/kernel/tracing`"
        }
        Feature::Btf => "; needs a kernel built with CONFIG_DEBUG_INFO_BTF",
        Feature::Uprobes => "; needs a kernel built with CONFIG_UPROBE_EVENTS",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_needs_btf_its_program_type_and_a_ring_buffer() {
        for detector_type in detector::TYPES {
            let needs = of_type(detector_type, false);
            assert!(needs.contains(&Feature::Btf), "{detector_type}");
            assert!(
                needs.contains(&Feature::Program(program_type(detector_type))),
                "{detector_type}"
            );
            assert!(
                needs.contains(&Feature::Map(MapType::RingBuf)),
                "{detector_type}"
            );
        }
    }

    #[test]
    fn uprobes_are_needed_by_uprobe_types_and_by_any_type_once_context_is_tracked() {
        assert!(of_type(detector::POOL_OBJECTS, false).contains(&Feature::Uprobes));
        assert!(!of_type(detector::SYSCALL_LATENCY, false).contains(&Feature::Uprobes));
        assert!(of_type(detector::SYSCALL_LATENCY, true).contains(&Feature::Uprobes));
    }

    #[test]
    fn syscall_latency_needs_tracefs_only_on_the_tracepoint_hook() {
        let raw = of_type(detector::SYSCALL_LATENCY, false);
        assert!(raw.contains(&Feature::Program(ProgramType::RawTracePoint)));
        assert!(!raw.contains(&Feature::Tracefs));
        let tp = of_type_hooked(detector::SYSCALL_LATENCY, false, SyscallHook::Tracepoint);
        assert!(tp.contains(&Feature::Program(ProgramType::TracePoint)));
        assert!(tp.contains(&Feature::Tracepoint("raw_syscalls", "sys_exit")));
        let helper = Feature::Helper(
            ProgramType::TracePoint,
            BpfHelper::BPF_FUNC_get_current_comm,
        );
        assert!(tp.contains(&helper));
    }

    #[test]
    fn memory_pressure_names_its_tracepoints() {
        let needs = of_type(detector::MEMORY_PRESSURE, false);
        let oom = Feature::Tracepoint("oom", "mark_victim");
        assert!(needs.contains(&oom));
        assert_eq!(oom.to_string(), "tracepoint oom:mark_victim");
        let memcg = Feature::Tracepoint("vmscan", "mm_vmscan_memcg_reclaim_begin");
        assert!(!needs.contains(&memcg), "optional hooks hold nothing back");
    }
}
