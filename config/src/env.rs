//! `${env:NAME}` substitution, applied to the raw text before YAML parsing.

use std::ops::Range;

use crate::error::Problem;
use crate::locate::{Locator, Position};
use crate::ConfigError;

const OPEN: &str = "${env:";

/// Replaces every `${env:NAME}` in `text` by the value of the environment variable `NAME`.
///
/// A variable that is not set is an error naming it, its line and column and the key whose value
/// uses it, so that a typo cannot silently become an empty endpoint or path. Every such
/// reference in the file is reported, not only the first.
pub fn expand(text: &str, file: &str) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut references = Vec::new();
    let mut failures = Vec::new();
    let mut done = 0;

    while let Some(found) = text[done..].find(OPEN) {
        let start = done + found;
        out.push_str(&text[done..start]);
        let name_start = start + OPEN.len();
        let Some(length) = text[name_start..].find('}') else {
            references.push(start..name_start);
            failures.push((start, "unterminated ${env:...} reference".to_owned()));
            done = text.len();
            break;
        };
        let name = &text[name_start..name_start + length];
        done = name_start + length + 1;
        references.push(start..done);
        match std::env::var(name) {
            Ok(value) => out.push_str(&value),
            Err(_) => failures.push((start, format!("environment variable {name:?} is not set"))),
        }
    }
    out.push_str(&text[done..]);

    if failures.is_empty() {
        return Ok(out);
    }
    Err(ConfigError::Env(place(text, file, &references, failures)))
}

/// Places each failed reference (by byte offset) at its line, column and key path.
fn place(
    text: &str,
    file: &str,
    references: &[Range<usize>],
    failures: Vec<(usize, String)>,
) -> Vec<Problem> {
    // Each reference becomes a plain word of the same length, so the text parses as YAML
    // wherever the reference did and every position stays where the user wrote it.
    let mut masked = text.to_owned();
    for range in references {
        masked.replace_range(range.clone(), &"x".repeat(range.len()));
    }
    let locator = Locator::new(&masked);

    failures
        .into_iter()
        .map(|(offset, message)| {
            let position = Position::of_offset(text, offset);
            Problem {
                file: file.to_owned(),
                line: position.line,
                column: position.column,
                key: locator.path_at(position).unwrap_or_default().to_owned(),
                message,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_set_variables_and_names_missing_ones() {
        std::env::set_var("WBPF_TEST_ENDPOINT", "http://127.0.0.1:9");
        let text = "a: ${env:WBPF_TEST_ENDPOINT}/x\n";
        assert_eq!(expand(text, "f.yaml").unwrap(), "a: http://127.0.0.1:9/x\n");

        let err = expand("a: 1\nb: ${env:WBPF_TEST_SURELY_UNSET}\n", "f.yaml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "f.yaml:2:4: b: environment variable \"WBPF_TEST_SURELY_UNSET\" is not set"
        );
    }

    #[test]
    fn every_missing_variable_is_reported() {
        let text =
            "a: {b: \"${env:WBPF_TEST_UNSET_1}\"}\nc: [x, ${env:WBPF_TEST_UNSET_2}]\nd: ${env:";
        let err = expand(text, "f.yaml").unwrap_err();
        let found: Vec<_> = err
            .problems()
            .iter()
            .map(|p| (p.line, p.column, p.key.as_str()))
            .collect();
        assert_eq!(found, [(1, 9, "a.b"), (2, 8, "c[1]"), (3, 4, "d")]);
    }
}
