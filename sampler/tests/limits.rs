//! Rate and byte budgets: bursts, starvation by one giant trace, and `composite` fallthrough.

mod common;

use common::*;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use wbpf_sampler::Decision::{NotSampled, Sampled};
use wbpf_sampler::TraceData;

#[test]
fn a_trace_larger_than_spans_per_second_passes_within_its_burst() {
    // Default burst: twice spans_per_second.
    let limiter = policy("{name: p, type: rate_limiting, rate_limiting: {spans_per_second: 10}}");
    assert_eq!(limiter.evaluate(&trace_of(15), 0), Sampled);
    assert_eq!(
        limiter.evaluate(&trace_of(10), 0),
        NotSampled,
        "only 5 tokens left"
    );
    assert_eq!(limiter.evaluate(&trace_of(5), 0), Sampled);
    assert_eq!(
        limiter.evaluate(&trace_of(10), 1_000),
        Sampled,
        "refilled by 10 in a second"
    );

    let explicit =
        "{name: p, type: rate_limiting, rate_limiting: {spans_per_second: 10, burst_capacity: 12}}";
    let limiter = policy(explicit);
    assert_eq!(
        limiter.evaluate(&trace_of(13), 0),
        NotSampled,
        "larger than the burst"
    );
    assert_eq!(limiter.evaluate(&trace_of(12), 0), Sampled);
}

#[test]
fn one_giant_trace_does_not_starve_the_others() {
    let limiter = policy("{name: p, type: rate_limiting, rate_limiting: {spans_per_second: 10}}");
    for now_ms in [0, 10, 20] {
        assert_eq!(limiter.evaluate(&trace_of(100_000), now_ms), NotSampled);
    }
    assert_eq!(limiter.evaluate(&trace_of(5), 30), Sampled);

    let giant = trace_of(10_000);
    let small = trace_of(2);
    let bytes = 4 * small.size_bytes;
    let limiter = policy(&format!(
        "{{name: p, type: bytes_limiting, bytes_limiting: {{bytes_per_second: {bytes}}}}}"
    ));
    assert!(giant.size_bytes > 2 * bytes);
    assert_eq!(limiter.evaluate(&giant, 0), NotSampled);
    assert_eq!(limiter.evaluate(&small, 0), Sampled);
}

#[test]
fn sustained_rate_converges_to_spans_per_second() {
    let limiter = policy("{name: p, type: rate_limiting, rate_limiting: {spans_per_second: 100}}");
    let trace = trace_of(10);
    // Offer 500 spans/s for 10 s: the burst (200) plus 100/s should pass.
    let kept: u64 = (0..500u64)
        .filter(|i| limiter.evaluate(&trace, i * 20) == Sampled)
        .map(|_| trace.span_count)
        .sum();
    assert!((1_180..=1_210).contains(&kept), "kept {kept} spans");
}

#[test]
fn bytes_limiting_counts_trace_size() {
    let small = trace_of(1);
    let per_second = small.size_bytes * 3;
    let limiter = policy(&format!(
        "{{name: p, type: bytes_limiting, bytes_limiting: {{bytes_per_second: {per_second}, \
         burst_capacity: {per_second}}}}}"
    ));
    let kept = (0..5)
        .filter(|_| limiter.evaluate(&small, 0) == Sampled)
        .count();
    assert_eq!(kept, 3);
    assert_eq!(
        limiter.evaluate(&small, 400),
        Sampled,
        "a third of a second refills one"
    );
}

fn error_trace(spans: usize) -> TraceData {
    trace(vec![with_status(span(0, 1), StatusCode::Error); spans])
}

const COMPOSITE: &str = "{name: c, type: composite, composite: {max_total_spans_per_second: 100, \
    policy_order: [errors, everything], \
    composite_sub_policy: [\
      {name: everything, type: always_sample},\
      {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}], \
    rate_allocation: [{policy: errors, percent: 10}]}}";

#[test]
fn composite_first_sub_policy_over_budget_still_lets_a_later_one_sample() {
    let composite = policy(COMPOSITE);
    // `errors` (10 spans/s) matches first but cannot take 20 spans; `everything` (the remaining
    // 90 spans/s) still samples the trace. The Collector would answer NotSampled here.
    assert_eq!(composite.evaluate(&error_trace(20), 0), Sampled);
    assert_eq!(
        composite.evaluate(&error_trace(10), 0),
        Sampled,
        "errors' own budget"
    );
    assert_eq!(
        composite.evaluate(&trace_of(70), 0),
        Sampled,
        "everything: 20 + 70 = 90"
    );
    assert_eq!(
        composite.evaluate(&trace_of(1), 0),
        NotSampled,
        "total of 100 reached"
    );
    assert_eq!(
        composite.evaluate(&trace_of(1), 999),
        NotSampled,
        "same second"
    );
    assert_eq!(
        composite.evaluate(&trace_of(1), 1_000),
        Sampled,
        "budgets reset each second"
    );
}

#[test]
fn composite_follows_policy_order() {
    let composite = policy(COMPOSITE);
    // `errors` comes first in policy_order although `everything` comes first in the list.
    assert_eq!(
        composite.evaluate(&error_trace(10), 0),
        Sampled,
        "from errors' budget"
    );
    assert_eq!(
        composite.evaluate(&error_trace(10), 0),
        Sampled,
        "from everything's budget"
    );
    // In list order both would have come from `everything`, leaving it 70, not 80.
    assert_eq!(composite.evaluate(&trace_of(80), 0), Sampled);
}
