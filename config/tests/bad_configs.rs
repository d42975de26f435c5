//! Each kind of bad config is reported as `file:line:column: key.path: message`, and value
//! problems are reported all at once.

use wbpf_config::{parse_str, parse_tail_sampling_block, ConfigError};

/// How a case's text is read, as `wbpf validate` reads it.
#[derive(Clone, Copy)]
enum Reader {
    /// A wBPF config file.
    Wbpf,
    /// A file with a `tail_sampling:` block, or a whole Collector config.
    Collector,
}

fn error(reader: Reader, text: &str) -> ConfigError {
    let result = match reader {
        Reader::Wbpf => parse_str(text, "bad.yaml").map(|_| ()),
        Reader::Collector => parse_tail_sampling_block(text, "bad.yaml").map(|_| ()),
    };
    match result {
        Ok(()) => panic!("accepted:\n{text}"),
        Err(err) => err,
    }
}

const TAIL: &str = "sampling:\n  mode: tail\n  tail_sampling:\n    policies:\n";

/// A wBPF config in tail mode whose one policy is `policy`, written on line 5.
fn tail_policy(policy: &str) -> String {
    format!("{TAIL}      - {policy}\n")
}

#[test]
fn each_kind_of_bad_config_names_file_line_column_and_key() {
    let composite = tail_policy(
        "{name: c, type: composite, composite: {max_total_spans_per_second: 10, \
         composite_sub_policy: [{name: x, type: always_sample}], \
         rate_allocation: [{policy: y, percent: 50}]}}",
    );
    let collector = "receivers:\n  otlp: {}\nprocessors:\n  batch: {}\n  tail_sampling:\n    \
                     policies:\n      - name: errors\n        type: status_code\n        \
                     status_code: {status_codes: [FAILED]}\nservice: {}\n";
    let cases: Vec<(&str, Reader, String, &str)> = vec![
        (
            "unknown top-level key",
            Reader::Wbpf,
            "recievers:\n  grpc: 127.0.0.1:14317\n".to_owned(),
            "bad.yaml:1:1: recievers: unknown field `recievers`, expected one of",
        ),
        (
            "unknown key in a section",
            Reader::Wbpf,
            "storage:\n  path: /tmp/x\n  retension: 30s\n".to_owned(),
            "bad.yaml:3:3: storage.retension: unknown field `retension`",
        ),
        (
            "unknown key in a policy block",
            Reader::Wbpf,
            tail_policy("{name: slow, type: latency, latency: {threshold_ms: 5, treshold: 1}}"),
            "bad.yaml:5:64: sampling.tail_sampling.policies[0].latency.treshold: unknown field \
             `treshold`",
        ),
        (
            "bad duration",
            Reader::Wbpf,
            "storage:\n  retention: soon\n".to_owned(),
            "bad.yaml:2:14: storage.retention: invalid duration \"soon\"",
        ),
        (
            "missing required key",
            Reader::Wbpf,
            "exporters:\n  otlp:\n    timeout: 1s\n".to_owned(),
            "bad.yaml:3:5: exporters.otlp.endpoint: missing field `endpoint`",
        ),
        (
            "missing required key in a flow mapping",
            Reader::Wbpf,
            "exporters:\n  otlp: {timeout: 1s}\n".to_owned(),
            "bad.yaml:2:10: exporters.otlp.endpoint: missing field `endpoint`",
        ),
        (
            "wrong type",
            Reader::Wbpf,
            "receivers:\n  max_request_bytes: lots\n".to_owned(),
            "bad.yaml:2:22: receivers.max_request_bytes: invalid u64",
        ),
        (
            "percentage out of range",
            Reader::Wbpf,
            "sampling:\n  mode: head\n  head:\n    percentage: 150\n".to_owned(),
            "bad.yaml:4:5: sampling.head.percentage: 150 is not a percentage between 0 and 100",
        ),
        (
            "mode head without a head block",
            Reader::Wbpf,
            "storage:\n  retention: 1m\nsampling:\n  mode: head\n".to_owned(),
            "bad.yaml:4:3: sampling.head: sampling.mode head needs a sampling.head block",
        ),
        (
            "compare tail without a tail_sampling block",
            Reader::Wbpf,
            "sampling:\n  head: {percentage: 1}\n  compare: [head, tail]\n".to_owned(),
            "bad.yaml:3:19: sampling.tail_sampling: sampling.compare tail needs a \
             sampling.tail_sampling block",
        ),
        (
            "lateral triggers without attributes",
            Reader::Wbpf,
            "sampling:\n  lateral:\n    attributes: []\n    window: 2s\n".to_owned(),
            "bad.yaml:3:5: sampling.lateral.attributes: name at least one span attribute key",
        ),
        (
            "bad policy type",
            Reader::Wbpf,
            tail_policy("{name: slow, type: latancy, latency: {threshold_ms: 5}}"),
            "bad.yaml:5:22: sampling.tail_sampling.policies[0].type: policy slow: unknown \
             policy type \"latancy\"; expected one of always_sample,",
        ),
        (
            "ottl_condition",
            Reader::Wbpf,
            tail_policy("{name: ottl, type: ottl_condition, ottl_condition: {span: ['x']}}"),
            "bad.yaml:5:44: sampling.tail_sampling.policies[0].ottl_condition: policy ottl: \
             ottl_condition is not supported yet",
        ),
        (
            "latency with neither threshold",
            Reader::Wbpf,
            tail_policy("{name: slow, type: latency, latency: {upper_threshold_ms: 0}}"),
            "bad.yaml:5:37: sampling.tail_sampling.policies[0].latency: policy slow: needs \
             threshold_ms or upper_threshold_ms (0 counts as unset)",
        ),
        (
            "latency without its block",
            Reader::Wbpf,
            "sampling:\n  trigger_rules:\n    - name: slow\n      type: latency\n".to_owned(),
            "bad.yaml:4:7: sampling.trigger_rules[0].latency: policy slow: type latency needs \
             a latency: block",
        ),
        (
            "string_attribute with a bad regex",
            Reader::Wbpf,
            tail_policy(
                "{name: re, type: string_attribute, string_attribute: {key: http.route, \
                 values: ['/api/(v1'], enabled_regex_matching: true}}",
            ),
            "bad.yaml:5:89: sampling.tail_sampling.policies[0].string_attribute.values[0]: \
             policy re: invalid regular expression \"/api/(v1\": unclosed group",
        ),
        (
            "composite rate_allocation naming an unknown policy",
            Reader::Wbpf,
            composite,
            "bad.yaml:5:155: sampling.tail_sampling.policies[0].composite.rate_allocation[0]\
             .policy: policy c: rate_allocation names unknown sub-policy \"y\"",
        ),
        (
            "unset environment variable",
            Reader::Wbpf,
            "exporters:\n  otlp:\n    endpoint: ${env:WBPF_TEST_NOT_SET}\n".to_owned(),
            "bad.yaml:3:15: exporters.otlp.endpoint: environment variable \
             \"WBPF_TEST_NOT_SET\" is not set",
        ),
        (
            "Collector config with a bad policy",
            Reader::Collector,
            collector.to_owned(),
            "bad.yaml:9:38: processors.tail_sampling.policies[0].status_code.status_codes[0]: \
             policy errors: unknown status code \"FAILED\"; expected OK, ERROR or UNSET",
        ),
    ];

    for (kind, reader, text, expected) in cases {
        let message = error(reader, &text).to_string();
        assert!(
            message.starts_with(expected),
            "{kind}:\n{message}\nwant\n{expected}"
        );
        assert_eq!(message.lines().count(), 1, "{kind}: {message}");
    }
}

#[test]
fn every_value_problem_in_a_file_is_reported_in_file_order() {
    let text = "\
exporters:
  otlp:
    endpoint: localhost:4317
storage:
  retention: 0s
sampling:
  mode: head
  head:
    percentage: 120
";
    let err = error(Reader::Wbpf, text);
    assert!(matches!(err, ConfigError::Invalid(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "bad.yaml:3:5: exporters.otlp.endpoint: must start with http:// or https://\n\
         bad.yaml:5:3: storage.retention: must be greater than zero\n\
         bad.yaml:9:5: sampling.head.percentage: 120 is not a percentage between 0 and 100"
    );
    let keys: Vec<&str> = err.problems().iter().map(|p| p.key.as_str()).collect();
    let expected = [
        "exporters.otlp.endpoint",
        "storage.retention",
        "sampling.head.percentage",
    ];
    assert_eq!(keys, expected);
}

#[test]
fn several_problems_in_one_policy_list_are_all_reported() {
    let text = "\
tail_sampling:
  policies:
    - {name: a, type: probabilistic, probabilistic: {sampling_percentage: 101}}
    - {name: a, type: rate_limiting, rate_limiting: {spans_per_second: 0}}
    - {name: b, type: status_code, status_code: {status_codes: [ERROR, Fail]}}
";
    let err = error(Reader::Collector, text);
    let found: Vec<(u64, u64, &str)> = err
        .problems()
        .iter()
        .map(|p| (p.line, p.column, p.key.as_str()))
        .collect();
    let policies = "tail_sampling.policies";
    let expected = [
        (
            3,
            54,
            format!("{policies}[0].probabilistic.sampling_percentage"),
        ),
        (4, 8, format!("{policies}[1].name")),
        (
            4,
            54,
            format!("{policies}[1].rate_limiting.spans_per_second"),
        ),
        (5, 72, format!("{policies}[2].status_code.status_codes[1]")),
    ];
    let expected: Vec<(u64, u64, &str)> = expected
        .iter()
        .map(|(line, column, key)| (*line, *column, key.as_str()))
        .collect();
    assert_eq!(found, expected);
}

#[test]
fn a_yaml_error_is_placed_even_before_any_key() {
    let err = error(Reader::Wbpf, "storage: [unclosed\n");
    let problem = &err.problems()[0];
    assert!(matches!(err, ConfigError::Syntax(_)), "{err:?}");
    assert_eq!(problem.file, "bad.yaml");
    assert!(problem.line >= 1, "{problem}");
}

#[test]
fn settings_that_would_stop_the_gateway_or_the_probe_fail_validation() {
    let text = "\
receivers:
  grpc: 127.0.0.1:7317
  http: 127.0.0.1:7317
  read_timeout: 0s
  read_header_timeout: 1000000h
probe:
  detectors:
    - type: syscall_latency
      threshold: 50ms
";
    let err = error(Reader::Wbpf, text);
    assert_eq!(
        err.to_string(),
        "bad.yaml:3:3: receivers.http: 127.0.0.1:7317 takes the port receivers.grpc listens on\n\
         bad.yaml:4:3: receivers.read_timeout: must be greater than zero\n\
         bad.yaml:5:3: receivers.read_header_timeout: must be at most 24h\n\
         bad.yaml:8:7: probe.detectors[0]: set pids, comms or cgroups: timing every process's \
         syscalls would flood the gateway"
    );
}

#[test]
fn listeners_on_one_port_clash_also_through_the_unspecified_address() {
    let text = "\
receivers:
  grpc: 0.0.0.0:7317
  http: 127.0.0.1:7317
admin:
  listen: 127.0.0.1:7317
";
    let err = error(Reader::Wbpf, text);
    assert_eq!(
        err.to_string(),
        "bad.yaml:3:3: receivers.http: 127.0.0.1:7317 takes the port receivers.grpc listens on\n\
         bad.yaml:5:3: admin.listen: 127.0.0.1:7317 takes the port receivers.grpc listens on"
    );
    let fine = "receivers: {grpc: 127.0.0.1:7317, http: 127.0.0.2:7317}\nadmin: {listen: \
                127.0.0.1:0}\n";
    parse_str(fine, "fine.yaml").expect("different addresses, and port 0, do not clash");
}
