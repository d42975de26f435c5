//! Sampling decisions of wBPF.
//!
//! This crate is pure: it looks at spans and times handed to it and returns decisions; it
//! performs no IO and reads no clock. The gateway owns storage, time and export.
//!
//! - [`head`]: consistent probability sampling by trace id (OpenTelemetry thresholds).
//! - [`tail`]: the OpenTelemetry Collector's `tail_sampling` policies on a buffered trace.
//! - triggers and retention for the retroactive mode.

pub mod head;
pub mod policy;
mod retention;
pub mod tail;
mod trigger;

pub use head::{HeadDecision, HeadSampler, Threshold};
pub use policy::{Decision, Policy, SamplerError};
pub use retention::Retention;
pub use tail::{TailOutcome, TailSampler, TraceData};
pub use trigger::{is_trigger, TRIGGER_ATTRIBUTE};
