//! Side-by-side comparison of sampling modes on one stream (`sampling.compare`).
//!
//! The buffer hands a copy of every span group and every outside trigger to a shadow thread,
//! where each compared mode decides each trace as it would if it were exporting: head on
//! arrival, tail after its `decision_wait` (sooner after the root with
//! `decision_wait_after_root_received`) on the spans received so far, triggered when a trigger
//! names the trace before its retention window ends. Per mode it counts the traces, spans and
//! protobuf bytes kept (what that mode would export) and the edge cases captured (see
//! [`edge_cases`]). Nothing leaves the shadow but counters: only `sampling.mode` exports.
//!
//! The shadow never slows the real path: events go through a bounded queue, and an event that
//! does not fit is dropped and counted (`events_dropped`). Its state is in memory: a tail mode
//! holds each trace's spans for its `decision_wait`, and a restart starts the figures afresh.
//! A trigger that arrives after a trace's comparison is complete is not counted.

mod edge_cases;
mod figures;
mod shadow;

use std::sync::Arc;
use std::time::Duration;

use wbpf_config::{SamplingConfig, StorageConfig};

pub use figures::{CompareCounters, CompareSnapshot, ModeFigures};
pub use shadow::ShadowSender;

use crate::mode::Mode;
use crate::GatewayError;

/// Reads the comparison's figures; stays valid after the gateway stopped.
#[derive(Debug, Clone)]
pub struct CompareReader(Arc<CompareCounters>);

impl CompareReader {
    pub fn new(counters: Arc<CompareCounters>) -> Self {
        Self(counters)
    }

    pub fn snapshot(&self) -> CompareSnapshot {
        self.0.snapshot()
    }
}

/// Events queued for the shadow before new ones are dropped.
const SHADOW_QUEUE: usize = 65_536;

/// A running comparison.
pub struct Comparison {
    pub sender: ShadowSender,
    pub counters: Arc<CompareCounters>,
    pub thread: std::thread::JoinHandle<()>,
}

/// Starts the shadow thread if `sampling.compare` lists any mode.
pub fn start(
    sampling: &SamplingConfig,
    storage: &StorageConfig,
) -> Result<Option<Comparison>, GatewayError> {
    if sampling.compare.is_empty() {
        return Ok(None);
    }
    let modes = sampling
        .compare
        .iter()
        .map(|mode| Mode::build(*mode, sampling, storage))
        .collect::<Result<Vec<_>, _>>()?;
    let counters = Arc::new(CompareCounters::new(&sampling.compare, sampling.mode));
    let edge_cases = edge_cases::EdgeCases::new(&sampling.edge_cases);
    let tick = sampling.sweep_interval.max(Duration::from_millis(10));
    let shadow = shadow::Shadow::new(modes, Arc::clone(&counters), edge_cases, tick);

    let (events, receiver) = std::sync::mpsc::sync_channel(SHADOW_QUEUE);
    let thread = std::thread::Builder::new()
        .name("wbpf-compare".to_owned())
        .spawn(move || shadow.run(receiver, tick))
        .map_err(|err| GatewayError::Thread {
            name: "wbpf-compare",
            message: err.to_string(),
        })?;
    Ok(Some(Comparison {
        sender: ShadowSender::new(events, Arc::clone(&counters)),
        counters,
        thread,
    }))
}
