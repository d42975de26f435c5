//! The memory-pressure detector: reclaim stalls, page-migration storms and failures, and OOM
//! kills, machine-wide (`bpf/memory_pressure.bpf.c`).
//!
//! Classic tracepoints, so tracefs must be mounted. Each needed tracepoint is looked up in
//! tracefs before loading, so a kernel without one fails the detector naming it. The memcg
//! reclaim tracepoints are optional (kernels without memory cgroups lack them); the others
//! are needed when their symptom is enabled.

use std::time::Duration;

use aya::maps::Array;
use aya::programs::TracePoint;
use aya::{include_bytes_aligned, Ebpf};
use tracing::{info, warn};
use wbpf_config::{ContextConfig, MemoryPressureConfig};

use crate::detector::{invalid, Detector, Spec, MEMORY_PRESSURE};
use crate::loader::{self, Group};
use crate::ProbeError;

const OBJECT_NAME: &str = "memory_pressure.bpf.o";
static OBJECT: &[u8] = include_bytes_aligned!(concat!(env!("OUT_DIR"), "/memory_pressure.bpf.o"));
const MAP_CONFIG: &str = "pressure_config";

/// Reclaim stalls always; migration and OOM when configured.
#[derive(Debug, Clone)]
pub struct MemoryPressure {
    pub reclaim_stall: Duration,
    pub migration: Option<Migration>,
    pub oom_kill: bool,
}

/// Per-reason migration limits over a window; `None` disables that limit.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub window: Duration,
    pub max_pages: Option<u64>,
    pub max_failures: Option<u64>,
}

/// Mirrors `struct pressure_config` in `bpf/memory_pressure.bpf.c`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct KernelConfig {
    stall_ns: u64,
    window_ns: u64,
    max_pages: u64,
    max_failures: u64,
    detector: u32,
    oom_kill: u32,
}

// SAFETY: `repr(C)`, only integers, no padding (4 u64 then 2 u32): every bit pattern is valid.
unsafe impl aya::Pod for KernelConfig {}

/// A program, its tracepoint, and whether the detector can run without it.
pub(crate) struct Hook {
    program: &'static str,
    pub(crate) category: &'static str,
    pub(crate) name: &'static str,
    pub(crate) optional: bool,
}

pub(crate) const RECLAIM: [Hook; 4] = [
    hook(
        "direct_reclaim_begin",
        "vmscan",
        "mm_vmscan_direct_reclaim_begin",
        false,
    ),
    hook(
        "direct_reclaim_end",
        "vmscan",
        "mm_vmscan_direct_reclaim_end",
        false,
    ),
    hook(
        "memcg_reclaim_begin",
        "vmscan",
        "mm_vmscan_memcg_reclaim_begin",
        true,
    ),
    hook(
        "memcg_reclaim_end",
        "vmscan",
        "mm_vmscan_memcg_reclaim_end",
        true,
    ),
];
pub(crate) const MIGRATE: Hook = hook("migrate_pages", "migrate", "mm_migrate_pages", false);
pub(crate) const OOM: Hook = hook("mark_victim", "oom", "mark_victim", false);

const fn hook(
    program: &'static str,
    category: &'static str,
    name: &'static str,
    optional: bool,
) -> Hook {
    Hook {
        program,
        category,
        name,
        optional,
    }
}

impl MemoryPressure {
    /// Validates one configured detector; returns its instance name and spec.
    pub fn resolve(config: &MemoryPressureConfig) -> Result<(String, Self), ProbeError> {
        let name = config
            .name
            .clone()
            .unwrap_or_else(|| MEMORY_PRESSURE.to_owned());
        let migration = config.migration.as_ref().map(|migration| Migration {
            window: migration.window,
            max_pages: migration.max_pages,
            max_failures: migration.max_failures,
        });
        if let Some(migration) = &migration {
            if migration.window.is_zero() {
                return Err(invalid(&name, "migration.window must be greater than zero"));
            }
            if migration.max_pages.is_none() && migration.max_failures.is_none() {
                return Err(invalid(
                    &name,
                    "migration needs max_pages, max_failures or both",
                ));
            }
        }
        let spec = MemoryPressure {
            reclaim_stall: config.reclaim_stall,
            migration,
            oom_kill: config.oom_kill,
        };
        Ok((name, spec))
    }

    fn kernel_config(&self, detector: u32) -> KernelConfig {
        let nanos = |duration: Duration| u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        let migration = self.migration.unwrap_or(Migration {
            window: Duration::from_secs(1),
            max_pages: None,
            max_failures: None,
        });
        KernelConfig {
            stall_ns: nanos(self.reclaim_stall),
            window_ns: nanos(migration.window),
            max_pages: migration.max_pages.unwrap_or(u64::MAX),
            max_failures: migration.max_failures.unwrap_or(u64::MAX),
            detector,
            oom_kill: u32::from(self.oom_kill),
        }
    }

    pub(crate) fn hooks(&self) -> Vec<&'static Hook> {
        let mut hooks: Vec<&'static Hook> = RECLAIM.iter().collect();
        if self.migration.is_some() {
            hooks.push(&MIGRATE);
        }
        if self.oom_kill {
            hooks.push(&OOM);
        }
        hooks
    }
}

/// Loads the object, writes the settings and attaches the tracepoints the detector needs.
pub fn load(detectors: &[&Detector], context: Option<&ContextConfig>) -> Result<Group, ProbeError> {
    let Some((detector, spec)) = detectors.iter().find_map(|detector| match &detector.spec {
        Spec::MemoryPressure(spec) => Some((*detector, spec)),
        _ => None,
    }) else {
        return Err(ProbeError::NoDetectors);
    };

    // Check every tracepoint first, so a missing one is named rather than a verifier error.
    let mut hooks = Vec::new();
    for hook in spec.hooks() {
        match loader::tracepoint_dir(hook.category, hook.name) {
            Ok(_) => hooks.push(hook),
            Err(error) if hook.optional => {
                warn!(detector = %detector.name, %error, "memory-pressure signal unavailable")
            }
            Err(error) => return Err(error),
        }
    }

    let mut ebpf = loader::load_object(OBJECT_NAME, OBJECT, &[])?;
    write_config(&mut ebpf, spec.kernel_config(detector.index))?;
    loader::attach_context(&mut ebpf, context)?;
    for hook in &hooks {
        let program: &mut TracePoint = loader::program(&mut ebpf, hook.program)?;
        program
            .load()
            .map_err(|source| loader::load_error(hook.program, source))?;
        let tracepoint = format!("tracepoint {}:{}", hook.category, hook.name);
        program
            .attach(hook.category, hook.name)
            .map_err(loader::tracepoint_error(hook.program, tracepoint))?;
    }

    info!(
        detector = %detector.name,
        reclaim_stall_ns = spec.kernel_config(detector.index).stall_ns,
        migration = spec.migration.is_some(),
        oom_kill = spec.oom_kill,
        tracepoints = hooks.len(),
        "attached memory-pressure detector"
    );
    Group::new(MEMORY_PRESSURE, ebpf, vec![detector.index], Vec::new())
}

fn write_config(ebpf: &mut Ebpf, config: KernelConfig) -> Result<(), ProbeError> {
    let map = loader::map_mut(ebpf, MAP_CONFIG)?;
    let mut map: Array<_, KernelConfig> =
        Array::try_from(map).map_err(loader::map_error(MAP_CONFIG))?;
    map.set(0, config, 0).map_err(loader::map_error(MAP_CONFIG))
}

#[cfg(test)]
mod tests {
    use wbpf_config::MigrationConfig;

    use super::*;

    fn config(migration: Option<MigrationConfig>) -> MemoryPressureConfig {
        MemoryPressureConfig {
            name: None,
            reclaim_stall: Duration::from_millis(5),
            migration,
            oom_kill: false,
        }
    }

    #[test]
    fn unset_limits_reach_the_kernel_as_never() {
        let migration = MigrationConfig {
            window: Duration::from_millis(500),
            max_pages: None,
            max_failures: Some(0),
        };
        let (name, spec) = MemoryPressure::resolve(&config(Some(migration))).expect("valid");
        assert_eq!(name, "memory_pressure");
        let kernel = spec.kernel_config(3);
        assert_eq!(kernel.stall_ns, 5_000_000);
        assert_eq!(kernel.window_ns, 500_000_000);
        assert_eq!((kernel.max_pages, kernel.max_failures), (u64::MAX, 0));
        assert_eq!((kernel.detector, kernel.oom_kill), (3, 0));
        assert_eq!(std::mem::size_of::<KernelConfig>(), 40);
        let programs: Vec<_> = spec.hooks().iter().map(|hook| hook.program).collect();
        assert!(programs.contains(&"migrate_pages"));
        assert!(!programs.contains(&"mark_victim"));
    }

    #[test]
    fn migration_needs_a_window_and_a_limit() {
        let no_limit = MigrationConfig {
            window: Duration::from_secs(1),
            max_pages: None,
            max_failures: None,
        };
        let no_window = MigrationConfig {
            window: Duration::ZERO,
            max_pages: Some(1),
            max_failures: None,
        };
        for migration in [no_limit, no_window] {
            assert!(MemoryPressure::resolve(&config(Some(migration))).is_err());
        }
    }
}
