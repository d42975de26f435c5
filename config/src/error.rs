//! The one error type of the config crate.

use thiserror::Error;

/// Everything that can be wrong with a configuration file.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed or does not match the schema (unknown key, wrong type).
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        file: String,
        line: u64,
        column: u64,
        message: String,
    },
    /// An `${env:NAME}` reference could not be expanded.
    #[error("{file}:{line}: {message}")]
    Env {
        file: String,
        line: usize,
        message: String,
    },
    /// The file parsed, but a value is not acceptable.
    #[error("{file}: {key}: {message}")]
    Invalid {
        file: String,
        key: String,
        message: String,
    },
}
