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

pub mod context;
pub mod error;
pub mod ground_truth;
pub mod pool;
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
pub use runner::{spawn, Workload, WorkloadOptions};
pub use service::PoolFaultRates;
pub use service::SPANS_PER_REQUEST;
pub use stats::WorkloadStats;
