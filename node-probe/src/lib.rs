//! The wBPF node probe: eBPF detectors on this node that emit OTLP trigger spans.
//!
//! The kernel side (`bpf/*.bpf.c`, compiled by `build.rs` and embedded) is one object per detector
//! type: `function_latency` times calls with uprobe/uretprobe pairs (fixed or adaptive thresholds),
//! `syscall_latency` times syscalls of chosen processes (raw tracepoints), `memory_pressure`
//! watches reclaim stalls, page migrations and OOM kills (tracepoints), `pool_objects` follows
//! memory-pool objects through the pool library's hooks (uprobes: stale references, double
//! releases, leaks) and `pool_faults` counts page faults inside pool mappings (tracepoint). Each
//! object also remembers, per thread, which trace the workload says it is serving (the workload
//! calls a no-op context function the probe hooks). A symptom becomes a ring-buffer event; this
//! crate reads those events and sends each to the gateway as a trigger span inside the affected
//! trace, so the gateway releases that trace.
//!
//! Flow: [`Probe::start`] → one module per detector type (load + attach through `loader`) →
//! `ringbuf` (one async reader per object) → `handler` (decode with `events`, count) →
//! `trigger` and `evidence` (span) → `exporter` (OTLP/gRPC). Background tasks: `adaptive`
//! rewrites percentile thresholds, `leak_scan` finds leaked pool objects, `pool_maps` keeps
//! the pool address ranges current.
//!
//! Needs the capabilities `privileges` lists per detector (CAP_BPF and CAP_PERFMON, and for
//! uprobes CAP_SYS_ADMIN), kernel BTF at `/sys/kernel/btf/vmlinux`, uprobes and BPF
//! cookies (kernel 5.15+), BPF atomics (5.12+). `memory_pressure` and `pool_faults` also need a
//! mounted tracefs; nothing needs bpffs (nothing is pinned). A detector type that cannot load is
//! reported by [`Probe::failures`] and the others run. Before loading, each detector's needs
//! (`requirements`) are checked against what the kernel offers (`features`); [`diagnose`] runs
//! the same checks for `wbpf doctor`.

mod adaptive;
mod clock;
mod detector;
mod doctor;
mod error;
mod events;
mod evidence;
mod exporter;
mod features;
mod function_latency;
mod handler;
mod leak_scan;
mod loader;
mod memory_pressure;
mod pool_faults;
mod pool_maps;
mod pool_objects;
mod privileges;
mod probe;
mod reload;
mod requirements;
mod ringbuf;
mod stats;
mod symbols;
mod syscall_latency;
mod table;
mod trigger;

pub use detector::MAX_DETECTORS;
pub use doctor::{diagnose, Diagnosis, DoctorReport, Status};
pub use error::{DetectorFailure, Hint, ProbeError};
pub use features::{Availability, Feature};
pub use privileges::{Capability, CapabilitySet, Need, Privileges};
pub use probe::Probe;
pub use reload::{Change, ReloadReport, Timing};
pub use stats::{ProbeStats, TimingStats, TypeTimings};
pub use trigger::SPAN_NAME;
