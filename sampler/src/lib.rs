//! Sampling decisions of wBPF.
//!
//! This crate is pure: it looks at spans and times handed to it and returns decisions; it
//! performs no IO and reads no clock. The gateway owns storage, time and export.

mod retention;
mod trigger;

pub use retention::Retention;
pub use trigger::{is_trigger, TRIGGER_ATTRIBUTE};
