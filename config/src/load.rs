//! Reading and validating a config file.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::error::Problems;
use crate::{
    env, ConfigError, DetectorConfig, ExportersConfig, GatewayConfig, ProbeConfig, ReceiversConfig,
    SamplingConfig, SamplingMode, StorageConfig,
};

/// A whole wBPF config file.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub gateway: GatewayConfig,
    pub probe: Option<ProbeConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    receivers: ReceiversConfig,
    #[serde(default)]
    storage: StorageConfig,
    #[serde(default)]
    sampling: SamplingConfig,
    #[serde(default)]
    exporters: ExportersConfig,
    #[serde(default = "default_admin")]
    admin: Option<crate::AdminConfig>,
    #[serde(default)]
    probe: Option<ProbeConfig>,
}

/// The admin port is on unless the file says `admin: null`.
fn default_admin() -> Option<crate::AdminConfig> {
    Some(crate::AdminConfig::default())
}

/// Reads, expands and validates `path`.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: name.clone(),
        source,
    })?;
    parse_str(&text, &name)
}

/// Parses config text; `file` is only used in error messages.
pub fn parse_str(text: &str, file: &str) -> Result<Config, ConfigError> {
    let text = env::expand(text, file)?;

    // An empty document is an empty mapping: every section takes its default.
    let text = if text.trim().is_empty() {
        "{}".to_owned()
    } else {
        text
    };
    let raw: RawConfig =
        serde_saphyr::from_str(&text).map_err(|err| ConfigError::syntax(file, &text, &err))?;

    let config = Config {
        gateway: GatewayConfig {
            receivers: raw.receivers,
            storage: raw.storage,
            sampling: raw.sampling,
            exporters: raw.exporters,
            admin: raw.admin,
        },
        probe: raw.probe,
    };
    let mut problems = Problems::default();
    validate(&config, &mut problems);
    problems.into_result(file, &text)?;
    Ok(config)
}

/// The longest a receiver waits for a client: a day. Far longer is a mistake, and overflows
/// the clock's arithmetic.
const MAX_READ_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Records every value of `config` that is not acceptable.
fn validate(config: &Config, problems: &mut Problems) {
    const POSITIVE: &str = "must be greater than zero";

    let gateway = &config.gateway;
    if gateway.storage.retention.is_zero() {
        problems.push("storage.retention", POSITIVE);
    }
    if gateway.sampling.sweep_interval.is_zero() {
        problems.push("sampling.sweep_interval", POSITIVE);
    }
    if gateway.receivers.max_request_bytes == 0 {
        problems.push("receivers.max_request_bytes", POSITIVE);
    }
    if gateway.receivers.max_in_flight_bytes == 0 {
        problems.push("receivers.max_in_flight_bytes", POSITIVE);
    }
    let mut listeners = vec![
        ("receivers.grpc", gateway.receivers.grpc),
        ("receivers.http", gateway.receivers.http),
    ];
    listeners.extend(
        gateway
            .admin
            .as_ref()
            .map(|admin| ("admin.listen", admin.listen)),
    );
    for (i, &(key, addr)) in listeners.iter().enumerate() {
        if let Some((other, _)) = listeners[..i].iter().find(|(_, o)| clash(addr, *o)) {
            problems.push(key, format!("{addr} takes the port {other} listens on"));
        }
    }
    let timeouts = [
        (
            "receivers.read_header_timeout",
            gateway.receivers.read_header_timeout,
        ),
        ("receivers.read_timeout", gateway.receivers.read_timeout),
    ];
    for (key, timeout) in timeouts {
        if timeout.is_zero() {
            problems.push(key, POSITIVE);
        } else if timeout > MAX_READ_TIMEOUT {
            problems.push(key, "must be at most 24h");
        }
    }
    if gateway.storage.max_bytes == 0 {
        problems.push("storage.max_bytes", POSITIVE);
    }
    if gateway.storage.max_trace_bytes == 0 {
        problems.push("storage.max_trace_bytes", POSITIVE);
    }
    if gateway.exporters.max_batch_bytes == 0 {
        problems.push("exporters.max_batch_bytes", POSITIVE);
    }
    let retry = &gateway.exporters.retry;
    if retry.initial_interval.is_zero() || retry.max_interval < retry.initial_interval {
        problems.push(
            "exporters.retry",
            "initial_interval must be positive and at most max_interval",
        );
    }

    let sampling = &gateway.sampling;
    if let Some(head) = &sampling.head {
        head.validate("sampling.head", problems);
    }
    if let Some(tail) = &sampling.tail_sampling {
        tail.validate("sampling.tail_sampling", problems);
    }
    crate::tail_sampling::validate_policies(
        &sampling.trigger_rules,
        "sampling.trigger_rules",
        problems,
    );
    let compared = sampling
        .compare
        .iter()
        .enumerate()
        .map(|(i, mode)| (format!("sampling.compare[{i}]"), *mode));
    let mut reported = Vec::new();
    for (at, mode) in std::iter::once(("sampling.mode".to_owned(), sampling.mode)).chain(compared) {
        let missing = match mode {
            SamplingMode::Head if sampling.head.is_none() => "sampling.head",
            SamplingMode::Tail if sampling.tail_sampling.is_none() => "sampling.tail_sampling",
            _ => continue,
        };
        if reported.contains(&missing) {
            continue;
        }
        reported.push(missing);
        let setting = at.split('[').next().unwrap_or_default();
        let message = format!("{setting} {} needs a {missing} block", mode.as_str());
        problems.push_at(missing, at, message);
    }
    if let Some(lateral) = &sampling.lateral {
        if lateral.attributes.iter().all(|key| key.is_empty()) {
            let message = "name at least one span attribute key";
            problems.push("sampling.lateral.attributes", message);
        }
        if lateral.window.is_zero() {
            problems.push("sampling.lateral.window", POSITIVE);
        }
    }

    if let Some(otlp) = &gateway.exporters.otlp {
        if !(otlp.endpoint.starts_with("http://") || otlp.endpoint.starts_with("https://")) {
            let message = "must start with http:// or https://";
            problems.push("exporters.otlp.endpoint", message);
        }
    }
    if let Some(probe) = &config.probe {
        for (i, detector) in probe.detectors.iter().enumerate() {
            let DetectorConfig::SyscallLatency(syscalls) = detector else {
                continue;
            };
            if syscalls.pids.is_empty() && syscalls.comms.is_empty() && syscalls.cgroups.is_empty()
            {
                let message = "set pids, comms or cgroups: timing every process's syscalls \
                               would flood the gateway";
                problems.push(format!("probe.detectors[{i}]"), message);
            }
        }
    }
    crate::security::validate(config, problems);
}

/// Whether two listeners cannot both bind: the same port on the same address, or on any
/// address where one of them is the unspecified address (all interfaces). Port 0 picks a free
/// port and never clashes.
fn clash(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && a.port() != 0
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_a_working_default() {
        let config = parse_str("", "empty.yaml").unwrap();
        assert_eq!(config.gateway.receivers.grpc.port(), 4317);
        assert_eq!(config.gateway.storage.retention.as_secs(), 600);
        assert!(config.probe.is_none());
    }

    #[test]
    fn full_file_parses_durations_and_detectors() {
        let text = r#"
receivers:
  grpc: 127.0.0.1:14317
storage:
  path: /tmp/x
  retention: 30s
exporters:
  file:
    path: out.jsonl
probe:
  context:
    binary: /usr/bin/app
  detectors:
    - type: function_latency
      binary: /usr/bin/app
      symbol: pool_access
      threshold: 500ms
"#;
        let config = parse_str(text, "full.yaml").unwrap();
        assert_eq!(config.gateway.storage.retention.as_secs(), 30);
        let probe = config.probe.unwrap();
        assert_eq!(probe.detectors.len(), 1);
        let crate::DetectorConfig::FunctionLatency(detector) = &probe.detectors[0] else {
            panic!("{:?}", probe.detectors[0]);
        };
        let threshold = std::time::Duration::from_millis(500);
        assert_eq!(
            detector.threshold,
            crate::probe::LatencyThreshold::Fixed(threshold)
        );
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = "storage:\n  path: /tmp/x\n  retension: 30s\n";
        let message = parse_str(text, "typo.yaml").unwrap_err().to_string();
        assert!(message.starts_with("typo.yaml:3:"), "{message}");
        assert!(message.contains("retension"), "{message}");
        assert!(
            !message.contains("error: line"),
            "location printed twice: {message}"
        );
    }

    #[test]
    fn compare_modes_need_their_blocks() {
        let text = "sampling:\n  compare: [head, triggered]\n";
        let message = parse_str(text, "c.yaml").unwrap_err().to_string();
        assert_eq!(
            message,
            "c.yaml:2:13: sampling.head: sampling.compare head needs a sampling.head block"
        );

        let text = "sampling:\n  compare: [head, triggered]\n  head:\n    percentage: 1\n";
        let config = parse_str(text, "c.yaml").unwrap();
        let compare = &config.gateway.sampling.compare;
        assert_eq!(
            compare,
            &[crate::SamplingMode::Head, crate::SamplingMode::Triggered]
        );
    }

    #[test]
    fn lateral_triggers_parse_with_defaults() {
        let text = "sampling:\n  lateral:\n    attributes: [wbpf.pool.region]\n";
        let config = parse_str(text, "l.yaml").unwrap();
        let lateral = config.gateway.sampling.lateral.unwrap();
        assert_eq!(lateral.attributes, ["wbpf.pool.region"]);
        assert_eq!(lateral.window.as_secs(), 1);
        assert_eq!(lateral.max_traces_per_trigger, 100);

        let text = "sampling:\n  lateral:\n    attributes: []\n";
        let message = parse_str(text, "l.yaml").unwrap_err().to_string();
        assert!(message.contains("sampling.lateral.attributes"), "{message}");
    }

    #[test]
    fn bad_duration_is_explained() {
        let message = parse_str("storage:\n  retention: soon\n", "d.yaml").unwrap_err();
        let message = message.to_string();
        assert!(message.contains("d.yaml:2"), "{message}");
        assert!(message.contains("invalid duration"), "{message}");
    }
}
