//! The node probe's section: where to send triggers and which detectors to run.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Where a workload publishes which trace a thread is serving.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextConfig {
    /// Binary or shared library exporting the context function.
    pub binary: PathBuf,
    /// `fn(trace_id_hi: u64, trace_id_lo: u64, span_id: u64)`, called on span entry.
    #[serde(default = "default_context_symbol")]
    pub symbol: String,
}

fn default_context_symbol() -> String {
    "wbpf_trace_context".to_owned()
}

/// Function-latency outliers: a uprobe/uretprobe pair timing one symbol in the kernel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionLatencyConfig {
    /// Detector instance name, reported on trigger spans; defaults to the symbol.
    #[serde(default)]
    pub name: Option<String>,
    /// Binary or shared library holding the symbol.
    pub binary: PathBuf,
    pub symbol: String,
    /// A call taking longer than this emits a trigger.
    #[serde(with = "crate::duration")]
    pub threshold: Duration,
    /// Only this process; all processes mapping the binary when absent.
    #[serde(default)]
    pub pid: Option<u32>,
}

/// One detector, tagged by `type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DetectorConfig {
    FunctionLatency(FunctionLatencyConfig),
}

/// Everything the node probe reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// OTLP/gRPC endpoint of the gateway that receives trigger spans.
    #[serde(default = "default_gateway")]
    pub gateway: String,
    /// Where workloads publish their trace context; triggers carry no trace id without it.
    #[serde(default)]
    pub context: Option<ContextConfig>,
    #[serde(default)]
    pub detectors: Vec<DetectorConfig>,
}

fn default_gateway() -> String {
    "http://127.0.0.1:4317".to_owned()
}
