//! The attribute policies, table-driven: `numeric_attribute`, `string_attribute` and
//! `boolean_attribute`, on span and resource attributes, plain and with `invert_match`.
//!
//! The expectations follow the Collector's code, including its quirks: 0 is an unset numeric
//! bound, an attribute of another type reads as the zero value of the expected one, and an
//! inverted match gives a plain verdict (the Collector retired its inverted ones in v0.152).

mod common;

use common::*;
use wbpf_sampler::Decision::{NotSampled, Sampled};

#[test]
fn numeric_attribute_with_only_min_value() {
    check(
        "{name: p, type: numeric_attribute, \
         numeric_attribute: {key: http.status_code, min_value: 400}}",
        vec![
            (
                "span attribute 500",
                attr_trace("http.status_code", i(500)),
                Sampled,
            ),
            (
                "span attribute 400",
                attr_trace("http.status_code", i(400)),
                Sampled,
            ),
            (
                "span attribute 200",
                attr_trace("http.status_code", i(200)),
                NotSampled,
            ),
            (
                "huge value, no maximum",
                attr_trace("http.status_code", i(i64::MAX)),
                Sampled,
            ),
            (
                "resource attribute 503",
                resource_trace("http.status_code", i(503)),
                Sampled,
            ),
            (
                "string reads as 0",
                attr_trace("http.status_code", s("500")),
                NotSampled,
            ),
            ("missing key", trace_of(2), NotSampled),
        ],
    );
}

#[test]
fn numeric_attribute_bounds_and_inversion() {
    check(
        "{name: p, type: numeric_attribute, numeric_attribute: {key: k, max_value: 10}}",
        vec![
            ("negative, no minimum", attr_trace("k", i(-5)), Sampled),
            ("11", attr_trace("k", i(11)), NotSampled),
        ],
    );
    // min_value 0 is unset in the Collector, so negative values match too.
    check(
        "{name: p, type: numeric_attribute, \
         numeric_attribute: {key: k, min_value: 0, max_value: 10}}",
        vec![("-5 with min 0", attr_trace("k", i(-5)), Sampled)],
    );
    check(
        "{name: p, type: numeric_attribute, \
         numeric_attribute: {key: k, min_value: 400, invert_match: true}}",
        vec![
            ("value out of range", attr_trace("k", i(200)), Sampled),
            ("value in range", attr_trace("k", i(500)), NotSampled),
            ("resource in range", resource_trace("k", i(500)), NotSampled),
            ("key missing", trace_of(1), Sampled),
        ],
    );
}

#[test]
fn string_attribute_exact_and_regex() {
    check(
        "{name: p, type: string_attribute, string_attribute: {key: service.name, values: [a, b]}}",
        vec![
            ("span value b", attr_trace("service.name", s("b")), Sampled),
            (
                "resource value a",
                resource_trace("service.name", s("a")),
                Sampled,
            ),
            (
                "other value",
                attr_trace("service.name", s("c")),
                NotSampled,
            ),
            (
                "prefix is not equal",
                attr_trace("service.name", s("ab")),
                NotSampled,
            ),
            (
                "integer reads as empty",
                attr_trace("service.name", i(1)),
                NotSampled,
            ),
        ],
    );
    check(
        "{name: p, type: string_attribute, string_attribute: \
         {key: url.path, values: [\\/health, \\/metrics], enabled_regex_matching: true}}",
        vec![
            (
                "escaped slash matches",
                attr_trace("url.path", s("/health")),
                Sampled,
            ),
            (
                "unanchored",
                attr_trace("url.path", s("/v1/metrics/x")),
                Sampled,
            ),
            ("no match", attr_trace("url.path", s("/api")), NotSampled),
        ],
    );
    check(
        "{name: p, type: string_attribute, string_attribute: \
         {key: k, values: ['.*'], enabled_regex_matching: true}}",
        vec![
            (
                "empty span value never matches",
                attr_trace("k", s("")),
                NotSampled,
            ),
            (
                "empty resource value is tried",
                resource_trace("k", s("")),
                Sampled,
            ),
        ],
    );
}

#[test]
fn string_attribute_inverted() {
    check(
        "{name: p, type: string_attribute, string_attribute: \
         {key: service.name, values: [internal], invert_match: true}}",
        vec![
            (
                "other service",
                attr_trace("service.name", s("shop")),
                Sampled,
            ),
            (
                "excluded service",
                attr_trace("service.name", s("internal")),
                NotSampled,
            ),
            (
                "excluded resource",
                resource_trace("service.name", s("internal")),
                NotSampled,
            ),
            ("key missing", trace_of(2), Sampled),
        ],
    );
}

#[test]
fn boolean_attribute() {
    check(
        "{name: p, type: boolean_attribute, boolean_attribute: {key: force, value: true}}",
        vec![
            ("true on a span", attr_trace("force", b(true)), Sampled),
            (
                "true on the resource",
                resource_trace("force", b(true)),
                Sampled,
            ),
            ("false", attr_trace("force", b(false)), NotSampled),
            (
                "string \"true\" reads as false",
                attr_trace("force", s("true")),
                NotSampled,
            ),
        ],
    );
    check(
        "{name: p, type: boolean_attribute, \
         boolean_attribute: {key: skip, value: true, invert_match: true}}",
        vec![
            ("skip=true", attr_trace("skip", b(true)), NotSampled),
            ("skip=false", attr_trace("skip", b(false)), Sampled),
            ("missing", trace_of(1), Sampled),
        ],
    );
}
