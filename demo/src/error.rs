//! The one error type of the demo crate.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use thiserror::Error;

use crate::pool::ObjectId;

#[derive(Debug, Error)]
pub enum DemoError {
    /// The pool file could not be opened, sized or mapped.
    #[error("cannot {operation} pool file {path}: {source}")]
    PoolIo {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The pool file exists but its header or size is not one this version understands.
    #[error("pool file {path} is not usable: {reason}")]
    PoolLayout { path: PathBuf, reason: String },
    /// Every slot of the pool is allocated.
    #[error("pool is full: all {slots} slots are allocated")]
    PoolFull { slots: u64 },
    /// An object id whose slot was released (and maybe reused) since it was handed out.
    #[error("stale or unknown pool object {id}")]
    StaleObject { id: ObjectId },
    /// A write larger than one slot.
    #[error("object of {len} bytes does not fit a {max}-byte pool slot")]
    ObjectTooLarge { len: usize, max: usize },
    /// A socket operation with a peer failed.
    #[error("cannot {operation} {addr}: {source}")]
    Net {
        operation: &'static str,
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    /// A peer sent a line this protocol does not understand, or answered with an error.
    #[error("protocol error with {peer}: {reason}")]
    Protocol { peer: String, reason: String },
    /// A downstream service answered with an error.
    #[error("{peer} failed: {message}")]
    Remote { peer: SocketAddr, message: String },
    /// The OpenTelemetry exporter or provider could not be built or shut down.
    #[error("telemetry: {reason}")]
    Telemetry { reason: String },
    /// No three consecutive loopback ports were free for the services.
    #[error("no three consecutive free ports on 127.0.0.1 between {low} and {high}")]
    NoFreePorts { low: u16, high: u16 },
    /// Command-line options that do not fit together.
    #[error("invalid options: {reason}")]
    Options { reason: String },
    /// A signal handler could not be installed.
    #[error("cannot install handler for signal {signal}: {source}")]
    Signal {
        signal: i32,
        #[source]
        source: io::Error,
    },
    /// Reading or writing one of the result files (ground truth, stats) failed.
    #[error("cannot {operation} {path}: {source}")]
    File {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A result file line is not the JSON this crate writes.
    #[error("{path}:{line}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    /// A workload child process could not be started, signalled or waited for.
    #[error("{role} process: cannot {operation}: {source}")]
    Child {
        role: &'static str,
        operation: &'static str,
        #[source]
        source: io::Error,
    },
    /// A child did not start listening in time.
    #[error("{role} did not listen on {addr} within {waited:?}")]
    NotListening {
        role: &'static str,
        addr: SocketAddr,
        waited: Duration,
    },
    /// A child exited unsuccessfully (or before it was expected to).
    #[error("{role} process exited with {status}")]
    ChildFailed {
        role: &'static str,
        status: ExitStatus,
    },
}

impl DemoError {
    pub(crate) fn pool_io(
        operation: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::PoolIo {
            operation,
            path,
            source,
        }
    }

    pub(crate) fn file(
        operation: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::File {
            operation,
            path,
            source,
        }
    }

    pub(crate) fn net(operation: &'static str, addr: SocketAddr) -> impl FnOnce(io::Error) -> Self {
        move |source| Self::Net {
            operation,
            addr,
            source,
        }
    }

    pub(crate) fn child(
        role: &'static str,
        operation: &'static str,
    ) -> impl FnOnce(io::Error) -> Self {
        move |source| Self::Child {
            role,
            operation,
            source,
        }
    }
}
