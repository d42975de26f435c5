//! A `tail_sampling` block copied from the Collector validates; each kind of mistake is reported
//! with the line, column and key path that locate it.

use std::time::Duration;

use wbpf_config::{
    parse_tail_sampling_block, ConfigError, PolicyKind, Problem, TailSamplingConfig,
};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// The Collector README's first example, minus the one policy type wBPF does not support.
fn readme_example_without_ottl() -> String {
    let text = fixture("collector_readme_example.yaml");
    let start = text
        .find("         {\n              name: test-policy-12")
        .unwrap();
    let end = text
        .find("         {\n            name: and-policy-1")
        .unwrap();
    format!("{}{}", &text[..start], &text[end..])
}

fn parse(text: &str) -> Result<TailSamplingConfig, ConfigError> {
    parse_tail_sampling_block(text, "t.yaml")
}

/// Parses a top-level block that must fail, and returns its message.
fn error(text: &str) -> String {
    match parse(text) {
        Ok(config) => panic!("accepted: {config:?}"),
        Err(err) => err.to_string(),
    }
}

fn one_policy(policy: &str) -> String {
    format!("tail_sampling:\n  policies:\n{policy}")
}

#[test]
fn readme_example_inside_a_collector_config_fails_only_on_ottl_condition() {
    let err = parse_tail_sampling_block(&fixture("collector_readme_example.yaml"), "c.yaml");
    let Err(ConfigError::Invalid(problems)) = err else {
        panic!("expected the ottl_condition to be rejected, got {err:?}");
    };
    let expected = Problem {
        file: "c.yaml".to_owned(),
        line: 80,
        column: 15,
        key: "processors.tail_sampling.policies[11].ottl_condition".to_owned(),
        message: "policy test-policy-12: ottl_condition is not supported yet".to_owned(),
    };
    assert_eq!(problems, [expected]);
}

#[test]
fn readme_example_without_ottl_validates_with_every_value() {
    let config = parse(&readme_example_without_ottl()).unwrap();
    assert_eq!(config.decision_wait, Duration::from_secs(10));
    assert_eq!(config.num_traces, 100);
    assert_eq!(config.expected_new_traces_per_sec, 10);
    assert_eq!(config.decision_cache.sampled_cache_size, 100_000);
    assert_eq!(config.decision_cache.non_sampled_cache_size, 100_000);
    assert_eq!(config.policies.len(), 14);

    let kinds: Vec<_> = config.policies.iter().map(|p| p.kind().unwrap()).collect();
    let PolicyKind::Latency(latency) = kinds[1] else {
        panic!("{:?}", kinds[1])
    };
    assert_eq!(
        (latency.threshold_ms, latency.upper_threshold_ms),
        (5000, 10000)
    );
    let PolicyKind::StringAttribute(regex) = kinds[6] else {
        panic!("{:?}", kinds[6])
    };
    assert_eq!(regex.values, ["value1", "val*"]);
    assert!(regex.enabled_regex_matching);
    let PolicyKind::Drop(drop) = kinds[12] else {
        panic!("{:?}", kinds[12])
    };
    let drop_values = &drop[0].string_attribute.as_ref().unwrap().values;
    assert_eq!(drop_values, &[r"\/health", r"\/metrics"]);
    let PolicyKind::Composite(composite) = kinds[13] else {
        panic!("{:?}", kinds[13])
    };
    assert_eq!(composite.max_total_spans_per_second, 1000);
    assert_eq!(composite.composite_sub_policy.len(), 3);
    assert_eq!(composite.rate_allocation[1].percent, 25);
}

#[test]
fn readme_practical_example_validates() {
    let config = parse(&fixture("readme_practical_example.yaml")).unwrap();
    assert_eq!(config.policies.len(), 7);
    let PolicyKind::And(subs) = config.policies[0].kind().unwrap() else {
        panic!()
    };
    assert!(subs[0].string_attribute.as_ref().unwrap().invert_match);
    assert!(matches!(
        config.policies[6].kind(),
        Some(PolicyKind::Drop(_))
    ));
}

#[test]
fn readme_practical_example_as_printed_is_rejected_at_its_line() {
    // The README puts `value: true` under string_attribute; the Collector rejects that too.
    let text = fixture("readme_practical_example.yaml").replace(
        "boolean_attribute: { key: app.do_not_sample",
        "string_attribute: { key: app.do_not_sample",
    );
    let line = text
        .lines()
        .position(|l| l.contains("key: app.do_not_sample"))
        .unwrap()
        + 1;
    let message = error(&text);
    assert!(message.starts_with(&format!("t.yaml:{line}:")), "{message}");
    assert!(message.contains("value"), "{message}");
}

#[test]
fn newer_policy_types_and_settings_validate() {
    let config = parse(&fixture("newer_policies.yaml")).unwrap();
    assert_eq!(
        config.decision_wait_after_root_received,
        Duration::from_secs(2)
    );
    assert!(config.sample_on_first_match && config.drop_pending_traces_on_shutdown);
    assert_eq!(config.maximum_trace_size_bytes, 4 * 1024 * 1024);
    let types: Vec<&str> = config
        .policies
        .iter()
        .map(|p| p.policy_type.as_str())
        .collect();
    let expected = [
        "drop",
        "not",
        "status_code",
        "trace_flags",
        "rate_limiting",
        "bytes_limiting",
    ];
    assert_eq!(types, expected);
    let PolicyKind::RateLimiting(rate) = config.policies[4].kind().unwrap() else {
        panic!()
    };
    assert_eq!((rate.spans_per_second, rate.burst_capacity), (500, 2000));
}

#[test]
fn defaults_are_the_collectors() {
    let config = parse(&one_policy("    - {name: all, type: always_sample}\n")).unwrap();
    assert_eq!(config.decision_wait, Duration::from_secs(30));
    assert_eq!(config.num_traces, 50_000);
    assert_eq!(config.decision_wait_after_root_received, Duration::ZERO);
    assert!(!config.sample_on_first_match);
}

#[test]
fn mistakes_are_reported_with_their_position_and_key_path() {
    // Each policy is on line 3, which starts with "    - {".
    let cases = [
        (
            "    - {name: a, type: latancy, latency: {threshold_ms: 5}}\n",
            "3:17: tail_sampling.policies[0].type: policy a: unknown policy type \"latancy\"",
        ),
        (
            "    - {name: a, type: latency}\n",
            "3:17: tail_sampling.policies[0].latency: policy a: type latency needs a latency:",
        ),
        (
            "    - {name: a, type: latency, latency: {}}\n",
            "3:32: tail_sampling.policies[0].latency: policy a: needs threshold_ms or upper",
        ),
        (
            "    - {name: a, type: probabilistic, latency: {threshold_ms: 1}, \
             probabilistic: {sampling_percentage: 1}}\n",
            "3:38: tail_sampling.policies[0].latency: policy a: latency is set but the type is",
        ),
        (
            "    - {name: a, type: string_attribute, string_attribute: \
             {key: k, values: [ok, 'a(b'], enabled_regex_matching: true}}\n",
            "3:81: tail_sampling.policies[0].string_attribute.values[1]: policy a: invalid regular",
        ),
        (
            "    - {name: a, type: probabilistic, probabilistic: {sampling_percentage: 150}}\n",
            "3:54: tail_sampling.policies[0].probabilistic.sampling_percentage: policy a: 150",
        ),
        (
            "    - {name: a, type: status_code, status_code: {status_codes: [ERROR, Error]}}\n",
            "3:72: tail_sampling.policies[0].status_code.status_codes[1]: policy a: unknown status",
        ),
        (
            "    - {name: a, type: numeric_attribute, numeric_attribute: {key: k}}\n",
            "3:42: tail_sampling.policies[0].numeric_attribute: policy a: needs min_value or",
        ),
        (
            "    - {name: a, type: ottl_condition, ottl_condition: {span: ['x == 1']}}\n",
            "3:39: tail_sampling.policies[0].ottl_condition: policy a: ottl_condition is not",
        ),
        (
            "    - {name: a, type: always_sample}\n    - {name: a, type: always_sample}\n",
            "4:8: tail_sampling.policies[1].name: duplicate policy name \"a\"",
        ),
        (
            "    - {name: a, type: and, and: {and_sub_policy: [{name: b, type: composite, \
             composite: {max_total_spans_per_second: 1, composite_sub_policy: []}}]}}\n",
            "3:61: tail_sampling.policies[0].and.and_sub_policy[0].type: policy b: type composite \
             cannot be nested here",
        ),
        (
            "    - {name: a, type: rate_limiting, rate_limiting: {spans_per_second: -1}}\n",
            "3:54: tail_sampling.policies[0].rate_limiting.spans_per_second: policy a: must be",
        ),
    ];
    for (policy, expected) in cases {
        let message = error(&one_policy(policy));
        assert!(
            message.starts_with(&format!("t.yaml:{expected}")),
            "{message}\nwant t.yaml:{expected}"
        );
        assert_eq!(message.lines().count(), 1, "{message}");
    }
}

#[test]
fn composite_rate_allocation_must_name_its_sub_policies() {
    let composite = |allocation: &str| {
        one_policy(&format!(
            "    - name: c\n      type: composite\n      composite:\n        \
             max_total_spans_per_second: 100\n        policy_order: [x, y]\n        \
             composite_sub_policy:\n          - {{name: x, type: always_sample}}\n          \
             - {{name: y, type: always_sample}}\n        rate_allocation: {allocation}\n"
        ))
    };
    assert!(parse(&composite(
        "[{policy: x, percent: 60}, {policy: y, percent: 40}]"
    ))
    .is_ok());

    let message = error(&composite("[{policy: z, percent: 50}]"));
    let key = "tail_sampling.policies[0].composite.rate_allocation[0].policy";
    assert!(message.contains(key), "{message}");
    assert!(message.contains("unknown sub-policy \"z\""), "{message}");

    let message = error(&composite(
        "[{policy: x, percent: 80}, {policy: y, percent: 40}]",
    ));
    assert!(message.contains("add up to 120"), "{message}");

    let message = error(&composite("[{policy: x, percent: 101}]"));
    assert!(message.contains("rate_allocation[0].percent"), "{message}");
}

#[test]
fn shape_errors_carry_line_and_column() {
    let unknown_key = "tail_sampling:\n  decision_wait: 1s\n  polices: []\n";
    let message = error(unknown_key);
    assert!(message.starts_with("t.yaml:3:"), "{message}");
    assert!(message.contains("polices"), "{message}");

    let bad_duration = "tail_sampling:\n  decision_wait: soon\n";
    let message = error(bad_duration);
    assert!(message.starts_with("t.yaml:2:"), "{message}");
    assert!(message.contains("invalid duration"), "{message}");

    let typo_in_block = one_policy(
        "    - name: a\n      type: latency\n      latency:\n        \
                                    threshold: 5\n",
    );
    let message = error(&typo_in_block);
    let expected = "t.yaml:6:9: tail_sampling.policies[0].latency.threshold: unknown field \
                    `threshold`";
    assert!(message.starts_with(expected), "{message}");
}

#[test]
fn a_file_without_or_with_several_blocks_is_explained() {
    let message = error("receivers: {otlp: {}}\nprocessors:\n  batch: {}\n");
    assert!(message.contains("no tail_sampling block"), "{message}");

    let two = "processors:\n  tail_sampling/a: {policies: [{name: x, type: always_sample}]}\n  \
               tail_sampling/b: {policies: [{name: x, type: always_sample}]}\n";
    let message = error(two);
    assert!(
        message.contains("tail_sampling/a, processors.tail_sampling/b"),
        "{message}"
    );

    let empty = error("tail_sampling:\n  decision_wait: 1s\n");
    let expected = "t.yaml:1:1: tail_sampling.policies: at least one policy is required";
    assert_eq!(empty, expected);
}
