//! `${env:NAME}` substitution, applied to the raw text before YAML parsing.

use crate::ConfigError;

/// Replaces every `${env:NAME}` in `text` by the value of the environment variable `NAME`.
///
/// A variable that is not set is an error naming it and the line it was used on, so that a
/// typo cannot silently become an empty endpoint or path.
pub fn expand(text: &str, file: &str) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;

    while let Some(start) = rest.find("${env:") {
        out.push_str(&rest[..start]);
        let after = &rest[start + "${env:".len()..];
        let line = text.len() - rest.len() + start;
        let line = text[..line].matches('\n').count() + 1;
        let Some(end) = after.find('}') else {
            return Err(ConfigError::Env {
                file: file.to_owned(),
                line,
                message: "unterminated ${env:...} reference".to_owned(),
            });
        };
        let name = &after[..end];
        let value = std::env::var(name).map_err(|_| ConfigError::Env {
            file: file.to_owned(),
            line,
            message: format!("environment variable {name:?} is not set"),
        })?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }

    out.push_str(rest);
    Ok(out)
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
        let message = err.to_string();
        assert!(message.contains("f.yaml:2"), "{message}");
        assert!(message.contains("WBPF_TEST_SURELY_UNSET"), "{message}");
    }
}
