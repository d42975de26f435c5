//! The one error type of the config crate, and the list of problems value checks fill in.

use std::fmt;

use thiserror::Error;

use crate::locate::{Locator, Position};

/// Everything that can be wrong with a configuration file.
///
/// Every variant but [`ConfigError::Read`] carries [`Problem`]s, each placed at a line, column
/// and key path. Parsing stops at the first malformed or unknown key or wrong type, so
/// [`ConfigError::Syntax`] holds one problem; unset variables and value checks are reported all
/// at once.
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
    #[error("{0}")]
    Syntax(Problem),
    /// `${env:NAME}` references that could not be expanded, every one in the file.
    #[error("{}", Lines(.0))]
    Env(Vec<Problem>),
    /// The file parsed, but values are not acceptable: every one found, in file order.
    #[error("{}", Lines(.0))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    /// The parser's first error in `text`, placed under the key path it lies in.
    pub(crate) fn syntax(file: &str, text: &str, err: &serde_saphyr::Error) -> Self {
        let position = err
            .location()
            .map_or(Position { line: 0, column: 0 }, |loc| Position {
                line: loc.line(),
                column: loc.column(),
            });

        // The parser's text starts with "error: line L column C: "; the position is printed once.
        let message = err.to_string();
        let first = message.lines().next().unwrap_or_default();
        let message = first
            .strip_prefix("error: line ")
            .and_then(|rest| rest.split_once(": "))
            .map_or(first, |(_, text)| text)
            .to_owned();

        // An unknown key is reported at that key; an error about a whole mapping (a missing or
        // inconsistent field) at its start, which for a block mapping is its first key too.
        let locator = Locator::new(text);
        let innermost = locator.path_at(position);
        let key = if message.starts_with("unknown field") {
            innermost.unwrap_or_default().to_owned()
        } else {
            let mapping = locator.collection_at(position).or(innermost);
            let mapping = mapping.unwrap_or_default();
            let missing = message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split('`').next());
            match missing {
                Some(field) if mapping.is_empty() => field.to_owned(),
                Some(field) => format!("{mapping}.{field}"),
                None => mapping.to_owned(),
            }
        };
        ConfigError::Syntax(Problem {
            file: file.to_owned(),
            line: position.line,
            column: position.column,
            key,
            message,
        })
    }

    /// The located problems this error reports; empty for [`ConfigError::Read`].
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Read { .. } => &[],
            ConfigError::Syntax(problem) => std::slice::from_ref(problem),
            ConfigError::Env(problems) | ConfigError::Invalid(problems) => problems,
        }
    }
}

/// One thing wrong in a file, where it is written and under which key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    /// Counted from 1.
    pub line: u64,
    /// Counted from 1, in characters.
    pub column: u64,
    /// Such as `sampling.tail_sampling.policies[2].latency.threshold_ms`; empty when the
    /// position lies outside every key (a YAML error before the first one).
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// Problems one per line.
struct Lines<'a>(&'a [Problem]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// Problems found by value checks, named by key path until the source text places them.
///
/// Checks push into this instead of returning at the first problem, so one run reports
/// everything wrong with a file.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    found: Vec<Unplaced>,
}

#[derive(Debug)]
struct Unplaced {
    key: String,
    /// Where to point when that is not `key` itself (a mode that needs a missing block).
    at: Option<String>,
    message: String,
}

impl Problems {
    /// Records that the value at `key` is not acceptable.
    pub(crate) fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.found.push(Unplaced {
            key: key.into(),
            at: None,
            message: message.into(),
        });
    }

    /// Records a problem with `key` that is best shown at the key path `at`.
    pub(crate) fn push_at(
        &mut self,
        key: impl Into<String>,
        at: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.found.push(Unplaced {
            key: key.into(),
            at: Some(at.into()),
            message: message.into(),
        });
    }

    /// `Ok` if nothing was found, else every problem placed in `text` (the YAML that was
    /// deserialized) and sorted by position.
    pub(crate) fn into_result(self, file: &str, text: &str) -> Result<(), ConfigError> {
        if self.found.is_empty() {
            return Ok(());
        }
        Err(self.into_error(file, text))
    }

    /// Every problem found, placed in `text` and sorted by position.
    pub(crate) fn into_error(self, file: &str, text: &str) -> ConfigError {
        let locator = Locator::new(text);
        let mut problems: Vec<Problem> = self
            .found
            .into_iter()
            .map(|found| {
                let position = locator.locate(found.at.as_deref().unwrap_or(&found.key));
                Problem {
                    file: file.to_owned(),
                    line: position.line,
                    column: position.column,
                    key: found.key,
                    message: found.message,
                }
            })
            .collect();
        problems.sort_by_key(|problem| (problem.line, problem.column));
        ConfigError::Invalid(problems)
    }
}
