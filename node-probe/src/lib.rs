//! The wBPF node probe: eBPF detectors on this node that emit OTLP trigger spans.
//!
//! The kernel side (`bpf/*.bpf.c`, compiled by `build.rs` and embedded) times calls with
//! uprobe/uretprobe pairs and remembers, per thread, which trace the workload says it is
//! serving (the workload calls a no-op context function the probe hooks). A call slower than
//! its detector's threshold becomes a ring-buffer event; this crate reads those events and
//! sends each to the gateway as a trigger span inside the affected trace, so the gateway
//! releases that trace.
//!
//! Flow: [`Probe::start`] → `loader` (aya load + attach) → `ringbuf` (async reader) →
//! `handler` (decode with `events`, count) → `trigger` (span) → `exporter` (OTLP/gRPC).
//!
//! Needs root (CAP_BPF and CAP_PERFMON), kernel BTF at `/sys/kernel/btf/vmlinux`, uprobes and
//! BPF cookies (kernel 5.15+). It does not need tracefs or bpffs: uprobes are created through
//! the perf `uprobe` PMU and nothing is pinned.

mod clock;
mod detector;
mod error;
mod events;
mod exporter;
mod handler;
mod loader;
mod probe;
mod ringbuf;
mod stats;
mod trigger;

pub use detector::MAX_DETECTORS;
pub use error::{Hint, ProbeError};
pub use probe::Probe;
pub use stats::ProbeStats;
pub use trigger::SPAN_NAME;
