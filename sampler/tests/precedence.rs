//! The final decision: the Collector's precedence table, a property test of the merge, and the
//! tail sampler's evaluation order (drop policies first, `sample_on_first_match`).
//!
//! A late span after a decision follows that decision: that is the gateway's job (its decision
//! cache), not the sampler's, and is tested there.

mod common;

use common::*;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use proptest::prelude::*;
use wbpf_sampler::tail::{final_decision, merge};
use wbpf_sampler::{Decision, TraceData};

use Decision::{Dropped, InvertNotSampled, InvertSampled, NotSampled, Sampled};

#[test]
fn precedence_table() {
    let cases: &[(&[Decision], Decision)] = &[
        (&[], NotSampled),
        (&[NotSampled], NotSampled),
        (&[Sampled], Sampled),
        (&[NotSampled, Sampled], Sampled),
        (&[Sampled, Dropped], Dropped),
        (&[InvertNotSampled, Dropped], Dropped),
        (&[Sampled, InvertNotSampled], NotSampled),
        (&[InvertSampled], Sampled),
        (&[InvertSampled, NotSampled], NotSampled),
        (&[InvertSampled, NotSampled, Sampled], Sampled),
        (&[InvertSampled, InvertNotSampled], NotSampled),
    ];
    for (decisions, expected) in cases {
        assert_eq!(final_decision(decisions), *expected, "{decisions:?}");
    }
}

#[test]
fn merge_names_the_deciding_policy() {
    assert_eq!(
        merge(&[Some(NotSampled), Some(Sampled), Some(Sampled)]),
        (Sampled, Some(1))
    );
    assert_eq!(
        merge(&[Some(Sampled), Some(Dropped), None]),
        (Dropped, Some(1))
    );
    assert_eq!(merge(&[Some(InvertSampled)]), (Sampled, Some(0)));
    assert_eq!(merge(&[Some(NotSampled), None]), (NotSampled, None));
}

fn any_decision() -> impl Strategy<Value = Decision> {
    prop_oneof![
        Just(Sampled),
        Just(NotSampled),
        Just(Dropped),
        Just(InvertSampled),
        Just(InvertNotSampled),
    ]
}

proptest! {
    #[test]
    fn merge_obeys_the_precedence(decisions in prop::collection::vec(any_decision(), 0..8)) {
        let merged = final_decision(&decisions);
        let has = |d: Decision| decisions.contains(&d);

        prop_assert!(matches!(merged, Sampled | NotSampled | Dropped));
        prop_assert_eq!(merged == Dropped, has(Dropped));
        if !has(Dropped) && has(InvertNotSampled) {
            prop_assert_eq!(merged, NotSampled);
        }
        if !has(Dropped) && !has(InvertNotSampled) && has(Sampled) {
            prop_assert_eq!(merged, Sampled);
        }
        if merged == Sampled {
            prop_assert!(has(Sampled) || (has(InvertSampled) && !has(NotSampled)));
        }
        // Order does not matter.
        let mut reversed = decisions.clone();
        reversed.reverse();
        prop_assert_eq!(final_decision(&reversed), merged);
    }
}

const BLOCK: &str = "tail_sampling:
  decision_wait: 10s
  decision_wait_after_root_received: 2s
  maximum_trace_size_bytes: 1000
  policies:
    - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
    - {name: budget, type: rate_limiting, rate_limiting: {spans_per_second: 1, burst_capacity: 1}}
    - name: no-health
      type: drop
      drop:
        drop_sub_policy:
          - name: health
            type: string_attribute
            string_attribute: {key: route, values: [/health]}
";

fn error_trace() -> TraceData {
    trace(vec![with_status(span(0, 1), StatusCode::Error)])
}

#[test]
fn drop_policies_run_first_and_end_the_evaluation() {
    let sampler = sampler(BLOCK);
    assert_eq!(
        sampler.policy_names().collect::<Vec<_>>(),
        ["no-health", "errors", "budget"]
    );

    let health = trace(vec![with_status(
        span_with(vec![kv("route", s("/health"))]),
        StatusCode::Error,
    )]);
    let outcome = sampler.evaluate(&health, 0);
    assert_eq!(outcome.decision, Dropped);
    assert_eq!(outcome.policy, Some(0));
    assert_eq!(outcome.per_policy, [Some(Dropped), None, None]);

    let outcome = sampler.evaluate(&error_trace(), 0);
    assert_eq!(outcome.decision, Sampled);
    assert_eq!(outcome.policy, Some(1));
    assert_eq!(
        outcome.per_policy,
        [Some(NotSampled), Some(Sampled), Some(Sampled)]
    );
}

#[test]
fn sample_on_first_match_stops_before_later_policies() {
    let block = BLOCK.replace(
        "  decision_wait: 10s\n",
        "  decision_wait: 10s\n  sample_on_first_match: true\n",
    );
    let sampler = sampler(&block);

    let outcome = sampler.evaluate(&error_trace(), 0);
    assert_eq!(outcome.per_policy, [Some(NotSampled), Some(Sampled), None]);

    // The rate limiter was not consulted, so its single token is still there.
    let outcome = sampler.evaluate(&trace_of(1), 0);
    assert_eq!(
        outcome.per_policy,
        [Some(NotSampled), Some(NotSampled), Some(Sampled)]
    );
}

#[test]
fn decisions_are_due_after_decision_wait_or_soon_after_the_root() {
    let sampler = sampler(BLOCK);
    let mut trace = TraceData::new([1; 16], 1_000);
    trace.add_batch(Vec::new(), vec![span(0, 1)], 1_000);
    assert_eq!(sampler.decision_due_ms(&trace), 11_000);

    let mut root = span(0, 1);
    root.parent_span_id.clear();
    trace.add_batch(Vec::new(), vec![root], 4_000);
    assert_eq!(sampler.decision_due_ms(&trace), 6_000);
}

#[test]
fn oversized_traces_are_flagged() {
    let sampler = sampler(BLOCK);
    assert!(!sampler.exceeds_max_size(&trace_of(1)));
    assert!(sampler.exceeds_max_size(&trace_of(200)));
}
