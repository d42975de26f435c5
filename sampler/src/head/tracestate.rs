//! W3C `tracestate` syntax, and the OpenTelemetry `ot` member inside it.
//!
//! `tracestate` is a comma-separated list of `key=value` members (at most 32, keys unique).
//! OpenTelemetry keeps its sampling data in the member `ot`, whose value is a `;`-separated list
//! of `subkey:value` pairs such as `th:c` (threshold) and `rv:...` (explicit randomness).

/// Most members a tracestate may carry.
const MAX_MEMBERS: usize = 32;

/// The members of a `tracestate` header, or `None` if it is not valid W3C syntax.
///
/// Empty list entries and whitespace around members are allowed, as the W3C grammar says.
pub fn parse(header: &str) -> Option<Vec<(&str, &str)>> {
    let mut members: Vec<(&str, &str)> = Vec::new();
    for member in header.split(',') {
        let member = member.trim_matches([' ', '\t']);
        if member.is_empty() {
            continue;
        }
        let (key, value) = member.split_once('=')?;
        if !is_valid_key(key) || !is_valid_value(value) || members.iter().any(|(k, _)| *k == key) {
            return None;
        }
        members.push((key, value));
    }
    (members.len() <= MAX_MEMBERS).then_some(members)
}

/// Replaces (or adds) member `key` with `value` and moves it to the front, as W3C asks of a
/// participant that updates its member. An invalid `header` is replaced by the single member;
/// if the list would exceed 32 members, the rightmost ones are dropped.
pub fn upsert(header: &str, key: &str, value: &str) -> String {
    let others = parse(header).unwrap_or_default();
    let mut out = format!("{key}={value}");
    let kept = others
        .iter()
        .filter(|(k, _)| *k != key)
        .take(MAX_MEMBERS - 1);
    for (k, v) in kept {
        out.push(',');
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// The `subkey:value` pairs of an `ot` member value, or `None` if malformed.
pub fn parse_ot(value: &str) -> Option<Vec<(&str, &str)>> {
    if value.is_empty() {
        return Some(Vec::new());
    }
    value
        .split(';')
        .map(|pair| {
            let (key, value) = pair.split_once(':')?;
            let key_ok = key.starts_with(|c: char| c.is_ascii_lowercase())
                && key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
            let value_ok = value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            (key_ok && value_ok).then_some((key, value))
        })
        .collect()
}

/// The value of the `ot` member of `header`, if the header is valid and has one.
pub fn ot_value(header: &str) -> Option<&str> {
    parse(header)?
        .into_iter()
        .find(|(key, _)| *key == "ot")
        .map(|(_, value)| value)
}

/// `simple-key` (`lcalpha *(lcalpha / DIGIT / "_" / "-" / "*" / "/")`, up to 256 characters) or
/// `tenant@system` multi-tenant key.
fn is_valid_key(key: &str) -> bool {
    let rest_ok = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-*/".contains(&b))
    };
    match key.split_once('@') {
        None => {
            key.len() <= 256 && key.starts_with(|c: char| c.is_ascii_lowercase()) && rest_ok(key)
        }
        Some((tenant, system)) => {
            let tenant_ok = (1..=241).contains(&tenant.len())
                && tenant.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && rest_ok(tenant);
            let system_ok = (1..=14).contains(&system.len())
                && system.starts_with(|c: char| c.is_ascii_lowercase())
                && rest_ok(system);
            tenant_ok && system_ok
        }
    }
}

/// 1 to 256 printable ASCII characters other than `,` and `=`, not ending in a space.
fn is_valid_value(value: &str) -> bool {
    let printable = |b: u8| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=';
    (1..=256).contains(&value.len()) && value.bytes().all(printable) && !value.ends_with(' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_headers_and_rejects_invalid_ones() {
        let members = parse(" ot=th:c;rv:0123456789abcd , ,vendor@sys=x y,a-b*c/d=1").unwrap();
        assert_eq!(members[0], ("ot", "th:c;rv:0123456789abcd"));
        assert_eq!(members[1], ("vendor@sys", "x y"));
        assert_eq!(members.len(), 3);
        assert_eq!(parse(""), Some(Vec::new()));

        for bad in ["Key=1", "k=", "k=a=b", "k=1,k=2", "1k=v", "k", "k=\u{e9}"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        let too_many: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        assert_eq!(parse(&too_many.join(",")), None);
    }

    #[test]
    fn upsert_moves_the_member_to_the_front() {
        assert_eq!(upsert("a=1,ot=th:8,b=2", "ot", "th:c"), "ot=th:c,a=1,b=2");
        assert_eq!(upsert("", "ot", "th:0"), "ot=th:0");
        assert_eq!(upsert("not valid", "ot", "th:0"), "ot=th:0");
        let full: Vec<String> = (0..32).map(|i| format!("k{i}=v")).collect();
        let updated = upsert(&full.join(","), "ot", "th:0");
        assert_eq!(parse(&updated).unwrap().len(), 32);
        assert!(!updated.contains("k31="));
    }

    #[test]
    fn ot_values_split_into_pairs() {
        assert_eq!(
            parse_ot("th:c;rv:ab"),
            Some(vec![("th", "c"), ("rv", "ab")])
        );
        assert_eq!(parse_ot(""), Some(Vec::new()));
        assert_eq!(parse_ot("th"), None);
        assert_eq!(ot_value("a=1,ot=th:0"), Some("th:0"));
    }
}
