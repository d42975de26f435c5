//! Human-readable durations (`500ms`, `30s`, `10m`) in config files.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Deserializes a duration written as `500ms`, `30s`, `10m` or `1h 30m`.
pub fn deserialize<'de, D>(deserializer: D) -> Result<Duration, D::Error>
where
    D: Deserializer<'de>,
{
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(text.trim()).map_err(|err| {
        serde::de::Error::custom(format!(
            "invalid duration {text:?} ({err}); write it like 500ms, 30s or 10m"
        ))
    })
}
