//! Lateral triggers: a trigger that names a shared resource also keeps the other traces that
//! touched that resource around the same time.
//!
//! Spans carrying one of `sampling.lateral.attributes` are recorded as *touches* of the resource
//! `key=value` over the span's time range. A trigger span carrying such an attribute keeps every
//! trace whose touch of the same resource lies within `window` of the trigger span's time range,
//! both those already recorded and those whose spans arrive later. The index lives in memory
//! and is bounded: touches that arrived before the retention window are pruned (by arrival, as
//! span clocks may be skewed), and each resource keeps at most [`MAX_TOUCHES_PER_RESOURCE`]
//! touches.

use std::collections::{HashMap, HashSet, VecDeque};

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use wbpf_config::LateralConfig;
use wbpf_storage::TraceId;

/// Most touches remembered per resource; the oldest go first.
pub const MAX_TOUCHES_PER_RESOURCE: usize = 10_000;

/// One span's use of a shared resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touch {
    /// `attribute=value`, for example `wbpf.pool.region=7`.
    pub resource: String,
    pub start_ms: u64,
    pub end_ms: u64,
    /// Whether the span is a trigger span (it then spreads the trigger).
    pub trigger: bool,
}

/// The touches of `span` for the configured attribute keys.
pub fn touches(keys: &[String], span: &Span, trigger: bool, out: &mut Vec<Touch>) {
    for attribute in &span.attributes {
        if !keys.contains(&attribute.key) {
            continue;
        }
        let value = match attribute.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(Value::StringValue(text)) => text.clone(),
            Some(Value::IntValue(number)) => number.to_string(),
            Some(Value::BoolValue(flag)) => flag.to_string(),
            _ => continue,
        };
        let start_ms = span.start_time_unix_nano / 1_000_000;
        out.push(Touch {
            resource: format!("{}={value}", attribute.key),
            start_ms,
            end_ms: (span.end_time_unix_nano / 1_000_000).max(start_ms),
            trigger,
        });
    }
}

#[derive(Debug, Clone, Copy)]
struct Interval {
    start_ms: u64,
    end_ms: u64,
}

impl Interval {
    /// Whether the two ranges come within `window_ms` of each other.
    fn near(self, other: Interval, window_ms: u64) -> bool {
        self.start_ms <= other.end_ms.saturating_add(window_ms)
            && other.start_ms <= self.end_ms.saturating_add(window_ms)
    }
}

/// Recent touches and lateral triggers per resource.
#[derive(Debug)]
pub struct LateralIndex {
    window_ms: u64,
    limit: usize,
    /// Recent touches per resource, with their arrival time.
    touches: HashMap<String, VecDeque<(Interval, TraceId, u64)>>,
    /// Recent trigger touches, how many more traces each may keep, and their arrival time.
    triggers: HashMap<String, VecDeque<(Interval, usize, u64)>>,
}

impl LateralIndex {
    pub fn new(config: &LateralConfig) -> Self {
        Self {
            window_ms: u64::try_from(config.window.as_millis()).unwrap_or(u64::MAX),
            limit: config.max_traces_per_trigger,
            touches: HashMap::new(),
            triggers: HashMap::new(),
        }
    }

    /// Records the touches of `trace` and returns the traces they trigger: for a trigger touch,
    /// the other traces near it on the same resource; for a plain touch, `trace` itself if an
    /// earlier trigger on the resource is near it. One trigger keeps at most
    /// `max_traces_per_trigger` traces, counting both directions.
    pub fn record(&mut self, trace: TraceId, touches: &[Touch], now_ms: u64) -> HashSet<TraceId> {
        let mut keep = HashSet::new();
        for touch in touches {
            let interval = Interval {
                start_ms: touch.start_ms,
                end_ms: touch.end_ms,
            };
            if touch.trigger {
                let near = self.near(&touch.resource, interval, trace);
                let remaining = self.limit.saturating_sub(near.len());
                keep.extend(near);
                self.triggers
                    .entry(touch.resource.clone())
                    .or_default()
                    .push_back((interval, remaining, now_ms));
            } else if self.take_trigger_near(&touch.resource, interval) {
                keep.insert(trace);
            }
            let list = self.touches.entry(touch.resource.clone()).or_default();
            if list.len() == MAX_TOUCHES_PER_RESOURCE {
                list.pop_front();
            }
            list.push_back((interval, trace, now_ms));
        }
        keep
    }

    /// Forgets touches and triggers that arrived before `before_ms`.
    pub fn prune(&mut self, before_ms: u64) {
        self.touches.retain(|_, list| {
            list.retain(|(_, _, seen)| *seen >= before_ms);
            !list.is_empty()
        });
        self.triggers.retain(|_, list| {
            list.retain(|(_, _, seen)| *seen >= before_ms);
            !list.is_empty()
        });
    }

    fn near(&self, resource: &str, interval: Interval, origin: TraceId) -> Vec<TraceId> {
        let Some(list) = self.touches.get(resource) else {
            return Vec::new();
        };
        let mut seen = HashSet::new();
        list.iter()
            .rev()
            .filter(|(other, trace, _)| *trace != origin && other.near(interval, self.window_ms))
            .filter_map(|(_, trace, _)| seen.insert(*trace).then_some(*trace))
            .take(self.limit)
            .collect()
    }

    /// Whether a recorded trigger on `resource` is near `interval` and may still keep a trace;
    /// if so, that trigger's allowance shrinks by one.
    fn take_trigger_near(&mut self, resource: &str, interval: Interval) -> bool {
        let window_ms = self.window_ms;
        let Some(list) = self.triggers.get_mut(resource) else {
            return false;
        };
        let found = list
            .iter_mut()
            .find(|(trigger, remaining, _)| *remaining > 0 && trigger.near(interval, window_ms));
        match found {
            Some((_, remaining, _)) => {
                *remaining -= 1;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn index() -> LateralIndex {
        LateralIndex::new(&LateralConfig {
            attributes: vec!["region".to_owned()],
            window: Duration::from_millis(100),
            max_traces_per_trigger: 2,
        })
    }

    fn touch(region: u8, start_ms: u64, trigger: bool) -> Touch {
        Touch {
            resource: format!("region={region}"),
            start_ms,
            end_ms: start_ms + 10,
            trigger,
        }
    }

    #[test]
    fn a_trigger_keeps_earlier_traces_on_the_same_resource_within_the_window() {
        let mut index = index();
        assert!(index
            .record(TraceId([1; 16]), &[touch(7, 1_000, false)], 0)
            .is_empty());
        assert!(index
            .record(TraceId([2; 16]), &[touch(8, 1_000, false)], 0)
            .is_empty());
        assert!(index
            .record(TraceId([3; 16]), &[touch(7, 5_000, false)], 0)
            .is_empty());

        let kept = index.record(TraceId([9; 16]), &[touch(7, 1_050, true)], 0);
        assert_eq!(kept, HashSet::from([TraceId([1; 16])]));
    }

    #[test]
    fn a_later_touch_near_a_trigger_is_kept_until_the_allowance_is_spent() {
        let mut index = index();
        assert!(index
            .record(TraceId([9; 16]), &[touch(7, 1_000, true)], 0)
            .is_empty());
        for (id, expected) in [(1u8, true), (2, true), (3, false)] {
            let kept = index.record(TraceId([id; 16]), &[touch(7, 1_020, false)], 0);
            assert_eq!(kept.contains(&TraceId([id; 16])), expected, "trace {id}");
        }
        let far = index.record(TraceId([4; 16]), &[touch(7, 9_000, false)], 0);
        assert!(far.is_empty());
    }

    #[test]
    fn prune_forgets_touches_by_arrival_not_span_time() {
        let mut index = index();
        index.record(TraceId([1; 16]), &[touch(7, 1_000, false)], 50_000);
        index.record(TraceId([2; 16]), &[touch(7, 1_000, false)], 5_000);
        index.prune(10_000);
        let kept = index.record(TraceId([9; 16]), &[touch(7, 1_000, true)], 60_000);
        assert_eq!(kept, HashSet::from([TraceId([1; 16])]));
    }

    #[test]
    fn touches_read_string_and_int_attributes() {
        use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
        let attribute = |key: &str, value: Value| KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value: Some(value) }),
            ..KeyValue::default()
        };
        let span = Span {
            start_time_unix_nano: 2_000_000_000,
            end_time_unix_nano: 2_500_000_000,
            attributes: vec![
                attribute("region", Value::IntValue(7)),
                attribute("other", Value::StringValue("x".to_owned())),
            ],
            ..Span::default()
        };
        let mut out = Vec::new();
        touches(&["region".to_owned()], &span, true, &mut out);
        assert_eq!(
            out,
            [Touch {
                resource: "region=7".to_owned(),
                start_ms: 2_000,
                end_ms: 2_500,
                trigger: true,
            }]
        );
    }
}
