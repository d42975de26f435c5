//! wBPF's demo workload: three services (frontend -> index -> store) that share an emulated
//! CXL memory pool and export OpenTelemetry spans to the wBPF gateway.
//!
//! Each service is a separate process running `wbpf-workload --role ...`. Every request reads
//! and writes pool objects in every service; a seeded share of requests gets a far-memory
//! stall injected in the store's pool access, and the frontend records those trace ids as
//! ground truth. The node probe finds the stalls through two exported hooks:
//! [`wbpf_trace_context`] (which span a thread works for) and [`wbpf_pool_access`] (every
//! pool access); [`wbpf_pool_alloc`] and [`wbpf_pool_release`] let it follow objects' lives.
//! The frontend can also inject, each at its own seeded rate, leaked objects, stale
//! references, double releases and page-fault storms on the pool (see `service::faults`).
//! The services are synchronous, one OS thread per request, so a thread id identifies the
//! request being served.
//!
//! [`runner`] starts and stops the three processes for `wbpf demo`.

/// The first instruction of every hook on x86-64: a 5-byte nop (`nopl 0x0(%rax,%rax,1)`).
///
/// A uprobe normally replaces the probed instruction with a breakpoint, so every hit costs a
/// trap: about 11 µs on the KVM guest this project is tested on (2.5-3 µs is the usual figure
/// on bare metal). Since Linux 6.18 (x86-64), a uprobe on exactly this nop is rewritten on its
/// first hit into a call to a trampoline that enters the kernel by a system call instead:
/// about 0.4 µs per hit on the same guest. USDT probes use the same nop for the same reason.
/// Older kernels and other architectures run it as a plain instruction under an ordinary
/// uprobe.
#[macro_export]
macro_rules! probe_site {
    () => {
        ".byte 0x0f, 0x1f, 0x44, 0x00, 0x00"
    };
}

pub mod context;
pub mod error;
pub mod ground_truth;
pub mod pool;
pub mod ports;
pub mod protocol;
pub mod runner;
pub mod service;
pub mod shutdown;
pub mod stats;
pub mod telemetry;

pub use context::wbpf_trace_context;
pub use error::DemoError;
pub use ground_truth::{read_ground_truth, GroundTruthEntry};
pub use pool::{wbpf_pool_access, wbpf_pool_alloc, wbpf_pool_release};
pub use ports::free_triple;
pub use runner::{spawn, Workload, WorkloadOptions};
pub use service::PoolFaultRates;
pub use service::SPANS_PER_REQUEST;
pub use stats::WorkloadStats;
