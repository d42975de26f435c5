//! The crate's one error type.
//!
//! Every variant names what was being done (program, symbol, binary, map, gateway) and keeps
//! the underlying error as its `source`, so `{:#}` with anyhow prints the whole chain. A
//! permission failure anywhere in the chain points to `wbpf doctor`, which lists the capabilities
//! each detector needs.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use opentelemetry_otlp::ExporterBuildError;
use opentelemetry_sdk::error::OTelSdkError;

use crate::ProbeStats;

/// Everything that can stop the probe from starting or shutting down cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("no detectors configured; add one under probe.detectors")]
    NoDetectors,

    #[error("{count} detectors configured; at most {max} are supported")]
    TooManyDetectors { count: usize, max: usize },

    #[error("detector {detector}: {reason}")]
    InvalidDetector { detector: String, reason: String },

    /// Every configured detector failed; each failure says why.
    #[error("no detector could start: {}", render_failures(failures))]
    NoDetectorStarted { failures: Vec<DetectorFailure> },

    /// The kernel (or its mounted filesystems) lacks something a detector needs.
    #[error("this kernel lacks {feature}{hint}")]
    MissingKernelFeature {
        feature: String,
        /// Empty, or what to do about it, starting with "; ".
        hint: &'static str,
    },

    /// The probe lacks a Linux capability a detector needs.
    #[error("needs {capability} {why}; the probe holds {held}")]
    MissingCapability {
        capability: String,
        why: &'static str,
        held: String,
    },

    /// `strict_privileges`: the probe holds capabilities no configured detector needs.
    #[error(
        "strict_privileges: the probe holds capabilities its detectors do not need: {extra}; \
         run it with only {needed}: in a systemd unit, `{systemd}` with `User=` and a \
         `CapabilityBoundingSet=` of the same, or `{setpriv}`"
    )]
    ExcessCapabilities {
        extra: String,
        needed: String,
        systemd: String,
        setpriv: String,
    },

    #[error("cannot tell which capabilities the probe holds: {reason}")]
    Privileges {
        reason: String,
        #[source]
        source: Option<io::Error>,
    },

    #[error("kernel BTF not found at {path} (needs a kernel built with CONFIG_DEBUG_INFO_BTF)")]
    KernelBtf {
        path: PathBuf,
        #[source]
        source: aya::BtfError,
    },

    #[error("loading the eBPF object {object}{hint}")]
    LoadObject {
        object: &'static str,
        hint: Hint,
        #[source]
        source: Box<aya::EbpfError>,
    },

    #[error("loading program {program}{hint}")]
    LoadProgram {
        program: &'static str,
        hint: Hint,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },

    #[error("attaching program {program} to {symbol} in {}{hint}", binary.display())]
    Attach {
        program: &'static str,
        symbol: String,
        binary: PathBuf,
        hint: Hint,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },

    #[error("attaching program {program} to {tracepoint}{hint}")]
    AttachTracepoint {
        program: &'static str,
        tracepoint: String,
        hint: Hint,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },

    /// The embedded object lacks a program or map the loader expects: a build mismatch.
    #[error("the eBPF object has no {kind} named {name}")]
    MissingInObject {
        kind: &'static str,
        name: &'static str,
    },

    #[error("using map {map}")]
    Map {
        map: &'static str,
        #[source]
        source: Box<aya::maps::MapError>,
    },

    #[error("watching the ring buffer for events")]
    RingBuf {
        #[source]
        source: io::Error,
    },

    #[error("reading CLOCK_MONOTONIC")]
    Clock {
        #[source]
        source: io::Error,
    },

    #[error("building the OTLP/gRPC exporter for {gateway}")]
    Exporter {
        gateway: String,
        #[source]
        source: ExporterBuildError,
    },

    /// A TLS file of `probe.gateway.tls` cannot be read.
    #[error("reading {} for the connection to {gateway}", file.display())]
    GatewayTls {
        gateway: String,
        file: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A credential of `probe.gateway.auth` cannot be sent as gRPC metadata.
    #[error("probe.gateway.auth: {message}")]
    GatewayAuth { message: String },

    /// The final flush failed; `stats` are the final counters all the same.
    #[error("flushing trigger spans to {gateway}")]
    Flush {
        gateway: String,
        stats: Box<ProbeStats>,
        #[source]
        source: OTelSdkError,
    },

    #[error("background task {task} failed")]
    Task {
        task: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
}

/// A detector that is not running, and why.
#[derive(Debug, Clone)]
pub struct DetectorFailure {
    /// Instance name.
    pub detector: String,
    /// `function_latency`, `syscall_latency`, `memory_pressure`, `pool_objects` or
    /// `pool_faults`.
    pub detector_type: &'static str,
    /// Shared by every detector of an object that failed as a whole.
    pub error: Arc<ProbeError>,
}

impl fmt::Display for DetectorFailure {
    /// The detector, its type and the whole error chain on one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.detector, self.detector_type, self.error
        )?;
        let mut source = self.error.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

fn render_failures(failures: &[DetectorFailure]) -> String {
    let rendered: Vec<String> = failures.iter().map(ToString::to_string).collect();
    rendered.join("; ")
}

/// What a person can do about an error, appended to its message when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    None,
    /// The kernel refused with EPERM or EACCES.
    Privileges,
}

impl Hint {
    /// Looks through an error's chain for an `io::Error` that explains the failure.
    pub(crate) fn for_error(error: &(dyn StdError + 'static)) -> Hint {
        let mut current = Some(error);
        while let Some(error) = current {
            if let Some(io_error) = error.downcast_ref::<io::Error>() {
                if matches!(io_error.raw_os_error(), Some(libc::EPERM | libc::EACCES)) {
                    return Hint::Privileges;
                }
            }
            current = error.source();
        }
        Hint::None
    }
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hint::None => Ok(()),
            Hint::Privileges => {
                f.write_str(": permission denied (`wbpf doctor` lists the capabilities needed)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_errors_deep_in_the_chain_get_the_privileges_hint() {
        let denied = io::Error::from_raw_os_error(libc::EPERM);
        let wrapped = ProbeError::RingBuf { source: denied };
        assert_eq!(Hint::for_error(&wrapped), Hint::Privileges);

        let other = ProbeError::RingBuf {
            source: io::Error::from_raw_os_error(libc::EINVAL),
        };
        assert_eq!(Hint::for_error(&other), Hint::None);
    }

    #[test]
    fn a_failed_start_lists_every_detector_with_its_cause() {
        let missing = Arc::new(ProbeError::MissingKernelFeature {
            feature: "tracepoint oom:mark_victim".to_owned(),
            hint: "",
        });
        let denied = Arc::new(ProbeError::RingBuf {
            source: io::Error::from_raw_os_error(libc::EPERM),
        });
        let error = ProbeError::NoDetectorStarted {
            failures: vec![
                DetectorFailure {
                    detector: "oom".to_owned(),
                    detector_type: "memory_pressure",
                    error: missing,
                },
                DetectorFailure {
                    detector: "db".to_owned(),
                    detector_type: "syscall_latency",
                    error: denied,
                },
            ],
        };
        let message = error.to_string();
        assert!(
            message.contains("oom (memory_pressure): this kernel lacks tracepoint oom:mark_victim"),
            "{message}"
        );
        assert!(
            message.contains("db (syscall_latency): watching the ring buffer for events: "),
            "{message}"
        );
    }

    #[test]
    fn load_failures_name_the_program_and_what_is_missing() {
        let error = ProbeError::LoadProgram {
            program: "fn_exit",
            hint: Hint::Privileges,
            source: Box::new(aya::programs::ProgramError::NotLoaded),
        };
        let expected = concat!(
            "loading program fn_exit: permission denied ",
            "(`wbpf doctor` lists the capabilities needed)"
        );
        assert_eq!(error.to_string(), expected);
    }
}
