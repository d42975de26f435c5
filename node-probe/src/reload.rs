//! What a configuration reload changes: which detectors keep their kernel index, and what
//! happens to each detector type's object.
//!
//! Each detector type is one eBPF object holding all detectors of that type, so the unit of
//! change is the type: an object whose detectors (names, settings, order) are unchanged keeps
//! running untouched and loses nothing; one whose detectors changed is unloaded and loaded
//! again, so every detector of that type, changed or not, misses the events of the gap (a few
//! milliseconds to tens of milliseconds, see `ProbeStats::load_ns_*`). Changing only the
//! thresholds of fixed-threshold `function_latency` or of `syscall_latency` detectors rewrites
//! the object's `thresholds` map in place instead. Keeping same-type detectors running across
//! a change would need one object per detector, or attaching and detaching single uprobes and
//! filter entries inside the running object.

use std::time::Duration;

use wbpf_config::{DetectorConfig, LatencyThreshold};

use crate::detector::{self, Detector, MAX_DETECTORS};
use crate::error::DetectorFailure;

/// A running or configured detector and the configuration it was resolved from.
#[derive(Debug, Clone)]
pub struct Configured {
    pub detector: Detector,
    pub config: DetectorConfig,
}

/// What a reload does to one detector type's object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Same detectors, same settings: untouched.
    Keep,
    /// Only thresholds changed: `(kernel index, nanoseconds)` written in place.
    Retune(Vec<(u32, u64)>),
    /// Unloaded, then loaded with the new detectors.
    Reload,
    /// Newly configured type.
    Load,
    /// No detector of this type is configured any more.
    Unload,
}

/// How one detector fared in a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    Removed,
    /// Its settings changed; its object was reloaded.
    Changed,
    /// Only its threshold changed, written in place.
    Retuned,
    /// Unchanged, but restarted because another detector of its type changed.
    Restarted,
    /// Unchanged and never stopped.
    Kept,
}

/// One object load or unload and how long it took.
#[derive(Debug, Clone)]
pub struct Timing {
    pub detector_type: &'static str,
    /// The detectors the object served.
    pub detectors: Vec<String>,
    pub took: Duration,
}

/// What [`Probe::reload`](crate::Probe::reload) did.
#[derive(Debug, Clone, Default)]
pub struct ReloadReport {
    /// Every detector of the old or the new configuration: (name, type, change).
    pub changes: Vec<(String, &'static str, Change)>,
    pub loads: Vec<Timing>,
    pub unloads: Vec<Timing>,
    /// Detectors of the new configuration that are not running, and why.
    pub failures: Vec<DetectorFailure>,
    /// Settings that only take effect on restart (`gateway`), left as they were.
    pub ignored: Vec<&'static str>,
}

impl ReloadReport {
    /// Names of the detectors that went through `change`.
    pub fn named(&self, change: Change) -> Vec<&str> {
        self.changes
            .iter()
            .filter(|(_, _, seen)| *seen == change)
            .map(|(name, _, _)| name.as_str())
            .collect()
    }
}

/// Gives each new detector a kernel index: the one of the running detector of the same type
/// and name (each claimed once), else the lowest index nobody holds.
pub fn assign(old: &[Configured], new: Vec<Configured>) -> Vec<Configured> {
    let mut claimed = vec![false; old.len()];
    let mut kept: Vec<Option<u32>> = Vec::with_capacity(new.len());
    for entry in &new {
        let same = old.iter().enumerate().position(|(at, running)| {
            !claimed[at]
                && running.detector.type_name() == entry.detector.type_name()
                && running.detector.name == entry.detector.name
        });
        if let Some(at) = same {
            claimed[at] = true;
        }
        kept.push(same.map(|at| old[at].detector.index));
    }

    let mut used = [false; MAX_DETECTORS];
    for index in kept.iter().flatten() {
        used[*index as usize] = true;
    }
    let mut free = (0u32..).filter(move |&index| {
        let slot = used.get_mut(index as usize);
        match slot {
            Some(slot) if !*slot => {
                *slot = true;
                true
            }
            _ => false,
        }
    });
    new.into_iter()
        .zip(kept)
        .map(|(mut entry, index)| {
            // `resolve` allows at most MAX_DETECTORS, so a free index always exists.
            entry.detector.index = index.or_else(|| free.next()).unwrap_or(u32::MAX);
            entry
        })
        .collect()
}

/// What happens to each detector type, in the loaders' order; types absent from both
/// configurations are left out.
pub fn plan(
    old: &[Configured],
    new: &[Configured],
    context_changed: bool,
) -> Vec<(&'static str, Action)> {
    detector::TYPES
        .iter()
        .filter_map(|&detector_type| {
            let before = of_type(old, detector_type);
            let after = of_type(new, detector_type);
            let action = match (before.is_empty(), after.is_empty()) {
                (true, true) => return None,
                (true, false) => Action::Load,
                (false, true) => Action::Unload,
                _ if context_changed => Action::Reload,
                _ if same(&before, &after) => Action::Keep,
                _ => retune(&before, &after).map_or(Action::Reload, Action::Retune),
            };
            Some((detector_type, action))
        })
        .collect()
}

/// How each detector fares given its type's action.
pub fn changes(
    old: &[Configured],
    new: &[Configured],
    plan: &[(&'static str, Action)],
) -> Vec<(String, &'static str, Change)> {
    let mut changes = Vec::new();
    for (detector_type, action) in plan {
        let before = of_type(old, detector_type);
        for entry in of_type(new, detector_type) {
            let previous = before
                .iter()
                .find(|b| b.detector.index == entry.detector.index);
            let change = match (previous, action) {
                (None, _) => Change::Added,
                (Some(_), Action::Keep) => Change::Kept,
                (Some(b), _) if b.config == entry.config => match action {
                    Action::Retune(_) => Change::Kept,
                    _ => Change::Restarted,
                },
                (Some(_), Action::Retune(_)) => Change::Retuned,
                (Some(_), _) => Change::Changed,
            };
            changes.push((entry.detector.name.clone(), *detector_type, change));
        }
        for gone in before {
            let index = gone.detector.index;
            if !new.iter().any(|entry| entry.detector.index == index) {
                changes.push((gone.detector.name.clone(), *detector_type, Change::Removed));
            }
        }
    }
    changes
}

fn of_type<'a>(detectors: &'a [Configured], detector_type: &str) -> Vec<&'a Configured> {
    detectors
        .iter()
        .filter(|entry| entry.detector.type_name() == detector_type)
        .collect()
}

fn same(before: &[&Configured], after: &[&Configured]) -> bool {
    before.len() == after.len()
        && before.iter().zip(after).all(|(b, a)| {
            b.detector.index == a.detector.index
                && b.detector.name == a.detector.name
                && b.config == a.config
        })
}

/// The thresholds to write when nothing but thresholds differ, else `None`.
fn retune(before: &[&Configured], after: &[&Configured]) -> Option<Vec<(u32, u64)>> {
    if before.len() != after.len() {
        return None;
    }
    before
        .iter()
        .zip(after)
        .map(|(b, a)| {
            let same_slot =
                b.detector.index == a.detector.index && b.detector.name == a.detector.name;
            let threshold = threshold_only(&b.config, &a.config).filter(|_| same_slot)?;
            Some((a.detector.index, nanos(threshold)))
        })
        .collect()
}

/// The new threshold when the two settings differ in nothing else.
fn threshold_only(before: &DetectorConfig, after: &DetectorConfig) -> Option<Duration> {
    match (before, after) {
        (DetectorConfig::FunctionLatency(b), DetectorConfig::FunctionLatency(a)) => {
            let (LatencyThreshold::Fixed(_), LatencyThreshold::Fixed(threshold)) =
                (b.threshold, a.threshold)
            else {
                return None;
            };
            let mut retuned = b.clone();
            retuned.threshold = a.threshold;
            (retuned == *a).then_some(threshold)
        }
        (DetectorConfig::SyscallLatency(b), DetectorConfig::SyscallLatency(a)) => {
            let mut retuned = b.clone();
            retuned.threshold = a.threshold;
            (retuned == *a).then_some(a.threshold)
        }
        _ => None,
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
