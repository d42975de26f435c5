//! Triggers without trace context, matched to the traces of the process and thread they came
//! from by time (`sampling.correlation`).
//!
//! A probe that sees a symptom on a thread that never published its trace context still knows
//! the process, the thread and when it happened. Application spans say which process they come
//! from (`process.pid`, usually a resource attribute) and often which thread (`thread.id`). A
//! trigger then keeps the traces whose spans of that process, on that thread when both sides
//! name one, cover the event time. Spans arrive after the trigger as often as before (a span is
//! exported when it ends), so pending triggers are kept and matched against later spans too,
//! like lateral triggers. The index lives in memory and is pruned by arrival time.

use std::collections::{HashMap, HashSet, VecDeque};

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use wbpf_config::CorrelationConfig;
use wbpf_storage::TraceId;

/// Most spans remembered per process; the oldest go first.
const MAX_SPANS_PER_PROCESS: usize = 50_000;

/// The attribute that marks a trigger sent without trace context.
const CONTEXT_ATTRIBUTE: &str = "wbpf.context";
const EVENT_TIME_ATTRIBUTE: &str = "wbpf.event_time_unix_nano";

/// A span's time range in one process (and thread, if known).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activity {
    pub pid: i64,
    pub tid: Option<i64>,
    pub start_ns: u64,
    pub end_ns: u64,
}

/// A trigger without trace context: where and when the symptom was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Orphan {
    pub pid: i64,
    pub tid: Option<i64>,
    pub event_ns: u64,
}

/// Reads `span` (with its resource's attributes): an orphan trigger, or an activity of its
/// process, or nothing when no process is named.
pub fn observe(
    resource: &[KeyValue],
    span: &Span,
    trigger: bool,
    activities: &mut Vec<Activity>,
    orphans: &mut Vec<Orphan>,
) {
    let pid = int(&span.attributes, "process.pid").or_else(|| int(resource, "process.pid"));
    let Some(pid) = pid else {
        return;
    };
    let tid = int(&span.attributes, "thread.id");
    if trigger {
        let orphan = string(&span.attributes, CONTEXT_ATTRIBUTE) == Some("none");
        if orphan {
            let event_ns = int(&span.attributes, EVENT_TIME_ATTRIBUTE)
                .and_then(|t| u64::try_from(t).ok())
                .unwrap_or(span.start_time_unix_nano);
            orphans.push(Orphan { pid, tid, event_ns });
        }
        return;
    }
    activities.push(Activity {
        pid,
        tid,
        start_ns: span.start_time_unix_nano,
        end_ns: span.end_time_unix_nano.max(span.start_time_unix_nano),
    });
}

fn int(attributes: &[KeyValue], key: &str) -> Option<i64> {
    let value = attributes.iter().find(|a| a.key == key)?.value.as_ref()?;
    match value.value.as_ref()? {
        Value::IntValue(number) => Some(*number),
        Value::StringValue(text) => text.parse().ok(),
        _ => None,
    }
}

fn string<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    let value = attributes.iter().find(|a| a.key == key)?.value.as_ref()?;
    match value.value.as_ref()? {
        Value::StringValue(text) => Some(text),
        _ => None,
    }
}

/// Recent activities and pending orphan triggers per process.
#[derive(Debug)]
pub struct ProcessIndex {
    slack_ns: u64,
    limit: usize,
    /// Per pid: activity, its trace, arrival time.
    spans: HashMap<i64, VecDeque<(Activity, TraceId, u64)>>,
    /// Per pid: orphan trigger, how many more traces it may keep, arrival time.
    orphans: HashMap<i64, VecDeque<(Orphan, usize, u64)>>,
}

impl ProcessIndex {
    pub fn new(config: &CorrelationConfig) -> Self {
        Self {
            slack_ns: u64::try_from(config.slack.as_nanos()).unwrap_or(u64::MAX),
            limit: config.max_traces_per_trigger,
            spans: HashMap::new(),
            orphans: HashMap::new(),
        }
    }

    /// Records what arrived with `trace` and returns the traces it keeps: for an orphan, the
    /// traces whose recorded spans cover its event (innermost spans first); for an activity,
    /// `trace` itself if a pending orphan falls inside it.
    pub fn record(
        &mut self,
        trace: TraceId,
        activities: &[Activity],
        orphans: &[Orphan],
        now_ms: u64,
    ) -> HashSet<TraceId> {
        let mut keep = HashSet::new();
        for orphan in orphans {
            let matched = self.matching_traces(orphan);
            let remaining = self.limit.saturating_sub(matched.len());
            keep.extend(matched);
            self.orphans
                .entry(orphan.pid)
                .or_default()
                .push_back((*orphan, remaining, now_ms));
        }
        for activity in activities {
            if self.take_orphan_inside(activity) {
                keep.insert(trace);
            }
            let list = self.spans.entry(activity.pid).or_default();
            if list.len() == MAX_SPANS_PER_PROCESS {
                list.pop_front();
            }
            list.push_back((*activity, trace, now_ms));
        }
        keep
    }

    /// Forgets spans and orphans that arrived before `before_ms`.
    pub fn prune(&mut self, before_ms: u64) {
        self.spans.retain(|_, list| {
            list.retain(|(_, _, seen)| *seen >= before_ms);
            !list.is_empty()
        });
        self.orphans.retain(|_, list| {
            list.retain(|(_, _, seen)| *seen >= before_ms);
            !list.is_empty()
        });
    }

    fn matching_traces(&self, orphan: &Orphan) -> Vec<TraceId> {
        let Some(list) = self.spans.get(&orphan.pid) else {
            return Vec::new();
        };
        let mut candidates: Vec<(u64, TraceId)> = list
            .iter()
            .filter(|(activity, _, _)| covers(activity, orphan, self.slack_ns))
            .map(|(activity, trace, _)| (activity.end_ns - activity.start_ns, *trace))
            .collect();
        candidates.sort_unstable_by_key(|(duration, _)| *duration);
        let mut seen = HashSet::new();
        candidates
            .into_iter()
            .filter_map(|(_, trace)| seen.insert(trace).then_some(trace))
            .take(self.limit)
            .collect()
    }

    /// Whether a pending orphan of the activity's process falls inside it and may still keep
    /// a trace; if so, that orphan's allowance shrinks by one.
    fn take_orphan_inside(&mut self, activity: &Activity) -> bool {
        let slack_ns = self.slack_ns;
        let Some(list) = self.orphans.get_mut(&activity.pid) else {
            return false;
        };
        let found = list
            .iter_mut()
            .find(|(orphan, remaining, _)| *remaining > 0 && covers(activity, orphan, slack_ns));
        match found {
            Some((_, remaining, _)) => {
                *remaining -= 1;
                true
            }
            None => false,
        }
    }
}

/// Whether `activity` covers the orphan's event: same thread when both name one, and the event
/// within the span's time range widened by `slack_ns`.
fn covers(activity: &Activity, orphan: &Orphan, slack_ns: u64) -> bool {
    let same_thread = match (activity.tid, orphan.tid) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    };
    same_thread
        && activity.pid == orphan.pid
        && activity.start_ns.saturating_sub(slack_ns) <= orphan.event_ns
        && orphan.event_ns <= activity.end_ns.saturating_add(slack_ns)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn index() -> ProcessIndex {
        ProcessIndex::new(&CorrelationConfig {
            enabled: true,
            slack: Duration::from_nanos(10),
            max_traces_per_trigger: 2,
        })
    }

    fn activity(pid: i64, tid: Option<i64>, start_ns: u64, end_ns: u64) -> Activity {
        Activity {
            pid,
            tid,
            start_ns,
            end_ns,
        }
    }

    fn orphan(pid: i64, tid: Option<i64>, event_ns: u64) -> Orphan {
        Orphan { pid, tid, event_ns }
    }

    #[test]
    fn an_orphan_keeps_the_trace_of_its_thread_covering_the_event() {
        let mut index = index();
        let (a, b, c) = (TraceId([1; 16]), TraceId([2; 16]), TraceId([3; 16]));
        index.record(a, &[activity(7, Some(70), 100, 200)], &[], 0);
        index.record(b, &[activity(7, Some(71), 100, 200)], &[], 0);
        index.record(c, &[activity(8, Some(70), 100, 200)], &[], 0);

        let kept = index.record(TraceId([9; 16]), &[], &[orphan(7, Some(70), 150)], 0);
        assert_eq!(kept, HashSet::from([a]));
        let outside = index.record(TraceId([9; 16]), &[], &[orphan(7, Some(70), 500)], 0);
        assert!(outside.is_empty());
    }

    #[test]
    fn without_thread_ids_the_innermost_spans_come_first_up_to_the_limit() {
        let mut index = index();
        let (a, b, c) = (TraceId([1; 16]), TraceId([2; 16]), TraceId([3; 16]));
        index.record(a, &[activity(7, None, 0, 1_000)], &[], 0);
        index.record(b, &[activity(7, None, 140, 160)], &[], 0);
        index.record(c, &[activity(7, None, 100, 200)], &[], 0);

        let kept = index.record(TraceId([9; 16]), &[], &[orphan(7, Some(70), 150)], 0);
        assert_eq!(kept, HashSet::from([b, c]));
    }

    #[test]
    fn a_span_arriving_after_the_orphan_is_kept() {
        let mut index = index();
        assert!(index
            .record(TraceId([9; 16]), &[], &[orphan(7, Some(70), 150)], 0)
            .is_empty());
        let trace = TraceId([1; 16]);
        let kept = index.record(trace, &[activity(7, Some(70), 145, 155)], &[], 0);
        assert_eq!(kept, HashSet::from([trace]));
        let other_thread = TraceId([2; 16]);
        let kept = index.record(other_thread, &[activity(7, Some(71), 100, 200)], &[], 0);
        assert!(kept.is_empty());
    }

    #[test]
    fn observe_reads_pid_from_the_resource_and_marks_orphans() {
        use opentelemetry_proto::tonic::common::v1::AnyValue;
        let kv = |key: &str, value: Value| KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value: Some(value) }),
            ..KeyValue::default()
        };
        let resource = [kv("process.pid", Value::IntValue(7))];
        let app = Span {
            start_time_unix_nano: 100,
            end_time_unix_nano: 200,
            attributes: vec![kv("thread.id", Value::IntValue(70))],
            ..Span::default()
        };
        let trigger = Span {
            attributes: vec![
                kv("process.pid", Value::IntValue(7)),
                kv("thread.id", Value::IntValue(70)),
                kv("wbpf.context", Value::StringValue("none".to_owned())),
                kv("wbpf.event_time_unix_nano", Value::IntValue(150)),
            ],
            ..Span::default()
        };
        let (mut activities, mut orphans) = (Vec::new(), Vec::new());
        observe(&resource, &app, false, &mut activities, &mut orphans);
        observe(&[], &trigger, true, &mut activities, &mut orphans);
        assert_eq!(activities, [activity(7, Some(70), 100, 200)]);
        assert_eq!(orphans, [orphan(7, Some(70), 150)]);
    }
}
