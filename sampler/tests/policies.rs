//! The other policy types, table-driven: a Collector policy, a trace, the expected verdict.
//!
//! The expectations follow the Collector's `tailsamplingprocessor` code (v0.161), including its
//! quirks (the running latency window, a strict latency threshold). Attribute policies
//! are in `attribute_policies.rs`, budgets in `limits.rs`, the probabilistic corpus in
//! `probabilistic_corpus.rs`.

mod common;

use common::*;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::Span;
use wbpf_sampler::Decision;

use Decision::{Dropped, NotSampled, Sampled};

#[test]
fn always_sample() {
    check(
        "{name: p, type: always_sample}",
        vec![
            ("any trace", trace_of(1), Sampled),
            ("empty trace", trace(Vec::new()), Sampled),
        ],
    );
}

#[test]
fn latency_without_upper_bound_is_exclusive() {
    check(
        "{name: p, type: latency, latency: {threshold_ms: 100}}",
        vec![
            (
                "spans overlap to 120 ms",
                trace(vec![span(0, 50), span(40, 120)]),
                Sampled,
            ),
            ("exactly 100 ms", trace(vec![span(0, 100)]), NotSampled),
            ("101 ms", trace(vec![span(0, 101)]), Sampled),
            ("99 ms", trace(vec![span(0, 99)]), NotSampled),
            (
                "gap between spans counts",
                trace(vec![span(0, 10), span(500, 510)]),
                Sampled,
            ),
        ],
    );
}

#[test]
fn latency_with_upper_bound_uses_the_running_window() {
    check(
        "{name: p, type: latency, latency: {threshold_ms: 100, upper_threshold_ms: 200}}",
        vec![
            ("150 ms", trace(vec![span(0, 150)]), Sampled),
            (
                "lower bound is exclusive",
                trace(vec![span(0, 100)]),
                NotSampled,
            ),
            (
                "upper bound is inclusive",
                trace(vec![span(0, 200)]),
                Sampled,
            ),
            ("250 ms in one span", trace(vec![span(0, 250)]), NotSampled),
            // The Collector checks after each span: 150 ms after the first span is a match.
            (
                "150 ms, then 250 ms",
                trace(vec![span(0, 150), span(0, 250)]),
                Sampled,
            ),
        ],
    );
}

#[test]
fn status_code() {
    let status = |code| trace(vec![span(0, 1), with_status(span(0, 1), code)]);
    check(
        "{name: p, type: status_code, status_code: {status_codes: [ERROR]}}",
        vec![
            ("an error span", status(StatusCode::Error), Sampled),
            ("ok spans", status(StatusCode::Ok), NotSampled),
        ],
    );
    check(
        "{name: p, type: status_code, status_code: {status_codes: [UNSET, OK]}}",
        vec![
            ("span without status is UNSET", trace_of(1), Sampled),
            (
                "errors only",
                trace(vec![with_status(span(0, 1), StatusCode::Error)]),
                NotSampled,
            ),
        ],
    );
}

#[test]
fn span_count() {
    check(
        "{name: p, type: span_count, span_count: {min_spans: 2, max_spans: 3}}",
        vec![
            ("1 span", trace_of(1), NotSampled),
            ("2 spans", trace_of(2), Sampled),
            ("3 spans", trace_of(3), Sampled),
            ("4 spans", trace_of(4), NotSampled),
        ],
    );
    check(
        "{name: p, type: span_count, span_count: {min_spans: 2}}",
        vec![("no maximum", trace_of(1000), Sampled)],
    );
}

#[test]
fn trace_state() {
    let state = |tracestate: &str| {
        let marked = Span {
            trace_state: tracestate.to_owned(),
            ..span(0, 1)
        };
        trace(vec![span(0, 1), marked])
    };
    check(
        "{name: p, type: trace_state, trace_state: {key: key3, values: [value1, value2]}}",
        vec![
            ("member matches", state("x=y,key3=value2"), Sampled),
            ("other value", state("key3=value3"), NotSampled),
            ("invalid tracestate", state("Key3=value1"), NotSampled),
            ("no tracestate", trace_of(1), NotSampled),
        ],
    );
}

#[test]
fn trace_flags() {
    let flagged = |flags: u32| {
        let marked = Span {
            flags,
            ..span(0, 1)
        };
        trace(vec![span(0, 1), marked])
    };
    check(
        "{name: p, type: trace_flags}",
        vec![
            (
                "sampled flag with remote-parent bits",
                flagged(0x301),
                Sampled,
            ),
            ("only remote-parent bits", flagged(0x300), NotSampled),
        ],
    );
}

#[test]
fn probabilistic_extremes() {
    check(
        "{name: p, type: probabilistic, probabilistic: {sampling_percentage: 100}}",
        vec![("everything", trace_of(1), Sampled)],
    );
    check(
        "{name: p, type: probabilistic, probabilistic: {sampling_percentage: 0}}",
        vec![("nothing", trace_of(1), NotSampled)],
    );
}

#[test]
fn and_needs_every_sub_policy() {
    check(
        "{name: p, type: and, and: {and_sub_policy: [\
         {name: svc, type: string_attribute, \
         string_attribute: {key: service.name, values: [shop]}},\
         {name: slow, type: latency, latency: {threshold_ms: 100}}]}}",
        vec![
            (
                "shop and slow",
                trace_with_resource(vec![kv("service.name", s("shop"))], vec![span(0, 500)]),
                Sampled,
            ),
            (
                "shop but fast",
                trace_with_resource(vec![kv("service.name", s("shop"))], vec![span(0, 5)]),
                NotSampled,
            ),
            ("slow but not shop", trace(vec![span(0, 500)]), NotSampled),
        ],
    );
}

#[test]
fn and_containing_an_inverted_string_match() {
    // The README's "backwards compatibility" rule: every service not in the list is sampled.
    check(
        "{name: p, type: and, and: {and_sub_policy: [\
         {name: not-migrated, type: string_attribute, string_attribute: \
         {key: service.name, values: [cart, checkout], invert_match: true}},\
         {name: all, type: always_sample}]}}",
        vec![
            (
                "service outside the list",
                resource_trace("service.name", s("legacy")),
                Sampled,
            ),
            (
                "service in the list",
                resource_trace("service.name", s("cart")),
                NotSampled,
            ),
            ("no service name", trace_of(1), Sampled),
        ],
    );
}

#[test]
fn not_flips_the_verdict() {
    check(
        "{name: p, type: not, not: {not_sub_policy: \
         {name: health, type: string_attribute, \
         string_attribute: {key: http.route, values: [/health]}}}}",
        vec![
            (
                "health route",
                attr_trace("http.route", s("/health")),
                NotSampled,
            ),
            ("other route", attr_trace("http.route", s("/buy")), Sampled),
        ],
    );
    check(
        "{name: p, type: not, not: {not_sub_policy: \
         {name: inv, type: boolean_attribute, \
         boolean_attribute: {key: k, value: true, invert_match: true}}}}",
        vec![(
            "an inverted match is flipped too",
            attr_trace("k", b(true)),
            Sampled,
        )],
    );
}

#[test]
fn drop_vetoes_when_every_sub_policy_matches() {
    check(
        "{name: p, type: drop, drop: {drop_sub_policy: [\
         {name: health, type: string_attribute, string_attribute: \
         {key: url.path, values: [\\/health], enabled_regex_matching: true}}]}}",
        vec![
            (
                "health check",
                attr_trace("url.path", s("/health")),
                Dropped,
            ),
            (
                "real request",
                attr_trace("url.path", s("/buy")),
                NotSampled,
            ),
        ],
    );
}
