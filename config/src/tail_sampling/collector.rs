//! Finding the `tail_sampling` block in a file: alone, or inside a whole Collector config.
//!
//! A user checking a migration passes either a file whose top-level key is `tail_sampling`, or
//! their Collector config as it is. In the latter only `processors.tail_sampling` (or
//! `processors.tail_sampling/<name>`) is read; receivers, exporters, service and the other
//! processors are skipped unparsed, so Collector-only syntax elsewhere does not get in the way.

use std::fmt;

use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::TailSamplingConfig;
use crate::error::Problems;
use crate::ConfigError;

/// The parts of a file that may hold the block; every other top-level key is ignored.
#[derive(Deserialize)]
struct Document {
    tail_sampling: Option<TailSamplingConfig>,
    processors: Option<Processors>,
}

/// The `tail_sampling` entries of a Collector `processors:` map, by their full key.
#[derive(Default)]
struct Processors(Vec<(String, TailSamplingConfig)>);

/// Parses and validates a `tail_sampling` block; `file` only names the text in errors.
///
/// Accepts a file with a top-level `tail_sampling:` key or a whole Collector config (exactly one
/// `processors.tail_sampling` or `processors.tail_sampling/<name>` entry). `${env:NAME}` is not
/// expanded here: a Collector config may reference variables that are only set where it runs.
pub fn parse_tail_sampling_block(
    text: &str,
    file: &str,
) -> Result<TailSamplingConfig, ConfigError> {
    let document: Document =
        serde_saphyr::from_str(text).map_err(|err| ConfigError::syntax(file, text, &err))?;

    let mut problems = Problems::default();
    let processors = document.processors.unwrap_or_default().0;
    let top_level = usize::from(document.tail_sampling.is_some());
    if top_level + processors.len() > 1 {
        let mut keys: Vec<String> = processors
            .iter()
            .map(|(key, _)| format!("processors.{key}"))
            .collect();
        if top_level == 1 {
            keys.insert(0, "tail_sampling".to_owned());
        }
        let message = format!(
            "found {} tail_sampling blocks ({}); pass one",
            keys.len(),
            keys.join(", ")
        );
        problems.push("processors", message);
        return Err(problems.into_error(file, text));
    }

    let (config, prefix) = match (document.tail_sampling, processors.into_iter().next()) {
        (Some(config), _) => (config, "tail_sampling".to_owned()),
        (None, Some((key, config))) => (config, format!("processors.{key}")),
        (None, None) => {
            let message = "no tail_sampling block: expected a top-level tail_sampling key or \
                           processors.tail_sampling in a Collector config";
            problems.push("tail_sampling", message);
            return Err(problems.into_error(file, text));
        }
    };

    config.validate(&prefix, &mut problems);
    problems.into_result(file, text)?;
    Ok(config)
}

impl<'de> Deserialize<'de> for Processors {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ProcessorsVisitor)
    }
}

struct ProcessorsVisitor;

impl<'de> Visitor<'de> for ProcessorsVisitor {
    type Value = Processors;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of processors")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "tail_sampling" || key.starts_with("tail_sampling/") {
                found.push((key, map.next_value::<TailSamplingConfig>()?));
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Processors(found))
    }
}
