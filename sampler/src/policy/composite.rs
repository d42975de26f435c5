//! `composite`: sub-policies in priority order, each with a share of a spans-per-second budget.
//!
//! Each sub-policy gets `percent`% of `max_total_spans_per_second` from `rate_allocation`; an
//! entry with percent 0 gets an equal share (`max / number of sub-policies`), as in the Collector.
//! Budgets count the spans of sampled traces per wall-clock second and reset when `now_ms` enters
//! a new second.
//!
//! Where wBPF departs from the Collector, on purpose:
//! - a sub-policy that matches but is over its budget does not end the evaluation: the next
//!   sub-policies may still sample the trace within their own budgets (the Collector returns
//!   `NotSampled` at the first match over budget);
//! - a sub-policy absent from `rate_allocation` gets what the listed ones leave of the total
//!   (the Collector v0.161 gives it an equal share, `max / number of sub-policies`, however much
//!   the listed ones take; releases before gave it 0, so that its README's "always_sample fills
//!   the remaining capacity" example never sampled);
//! - `max_total_spans_per_second` caps the sum over all sub-policies (the Collector compares it
//!   with each sub-policy's own count);
//! - `policy_order` sets the evaluation order (the Collector ignores it and uses the list order).

use std::sync::{Mutex, PoisonError};

use wbpf_config::CompositeConfig;

use super::{build, Decision, Policy, SamplerError};
use crate::TraceData;

#[derive(Debug)]
struct Sub {
    policy: Box<dyn Policy>,
    /// Spans per second this sub-policy may sample.
    budget: u64,
}

#[derive(Debug, Default)]
struct Window {
    second: u64,
    /// Spans sampled in `second`, per sub-policy (same order as `subs`).
    used: Vec<u64>,
    total: u64,
}

#[derive(Debug)]
pub struct Composite {
    subs: Vec<Sub>,
    max_total: u64,
    window: Mutex<Window>,
}

impl Composite {
    pub fn new(config: &CompositeConfig) -> Result<Self, SamplerError> {
        let max_total = u64::try_from(config.max_total_spans_per_second).unwrap_or(0);
        let count = config.composite_sub_policy.len().max(1) as u64;
        let explicit: u64 = config
            .rate_allocation
            .iter()
            .map(|alloc| share(max_total, alloc.percent, count))
            .sum();
        let remainder = max_total.saturating_sub(explicit);

        let mut order: Vec<usize> = Vec::new();
        for name in &config.policy_order {
            let found = config
                .composite_sub_policy
                .iter()
                .position(|s| &s.name == name);
            order.extend(found.filter(|index| !order.contains(index)));
        }
        let rest: Vec<usize> = (0..config.composite_sub_policy.len())
            .filter(|index| !order.contains(index))
            .collect();
        order.extend(rest);

        let mut subs = Vec::with_capacity(order.len());
        for index in order {
            let sub = &config.composite_sub_policy[index];
            let allocation = config.rate_allocation.iter().find(|a| a.policy == sub.name);
            let budget = allocation.map_or(remainder, |a| share(max_total, a.percent, count));
            subs.push(Sub {
                policy: build(sub)?,
                budget,
            });
        }

        let window = Window {
            used: vec![0; subs.len()],
            ..Window::default()
        };
        Ok(Self {
            subs,
            max_total,
            window: Mutex::new(window),
        })
    }
}

/// A sub-policy's spans per second: `percent`% of `max`, or an equal share for percent <= 0.
fn share(max: u64, percent: i64, count: u64) -> u64 {
    match u64::try_from(percent) {
        Ok(percent) if percent > 0 => max.saturating_mul(percent) / 100,
        _ => max / count,
    }
}

impl Policy for Composite {
    fn evaluate(&self, trace: &TraceData, now_ms: u64) -> Decision {
        let spans = trace.span_count;
        let second = now_ms / 1000;

        for (index, sub) in self.subs.iter().enumerate() {
            if !sub.policy.evaluate(trace, now_ms).is_sampled() {
                continue;
            }

            let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
            if window.second != second {
                window.second = second;
                window.used.iter_mut().for_each(|used| *used = 0);
                window.total = 0;
            }
            let within =
                window.used[index] + spans <= sub.budget && window.total + spans <= self.max_total;
            if within {
                window.used[index] += spans;
                window.total += spans;
                return Decision::Sampled;
            }
        }
        Decision::NotSampled
    }
}
