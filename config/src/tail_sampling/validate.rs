//! Value checks of a `tail_sampling` block, with errors that name the key path.
//!
//! The Collector accepts some nonsense silently (a `latency:` block on a `probabilistic` policy, a
//! percentage of 150); wBPF rejects it, because a migration check that passes a config the user
//! did not mean is worse than one that complains.

use std::collections::HashSet;

use super::policy::{CompositeConfig, PolicyConfig, PolicyKind, POLICY_TYPES};
use super::TailSamplingConfig;
use crate::ConfigError;

/// Where a policy sits, which limits the types it may have (as the Collector's config types do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// Directly under `policies`: every type.
    Top,
    /// Under `composite_sub_policy`: leaf types and `and`.
    CompositeSub,
    /// Under `and`, `not` or `drop`: leaf types only.
    Leaf,
}

struct Validator<'a> {
    file: &'a str,
}

impl TailSamplingConfig {
    /// Checks every value; `prefix` is the key path of the block, such as `tail_sampling` or
    /// `processors.tail_sampling`, and starts every key path in the errors.
    pub fn validate(&self, file: &str, prefix: &str) -> Result<(), ConfigError> {
        let v = Validator { file };
        if self.policies.is_empty() {
            let key = format!("{prefix}.policies");
            return Err(v.invalid(&key, "at least one policy is required"));
        }

        let mut names = HashSet::new();
        for (i, policy) in self.policies.iter().enumerate() {
            let path = format!("{prefix}.policies[{i}]");
            if policy.name.trim().is_empty() {
                return Err(v.invalid(&format!("{path}.name"), "policy name cannot be empty"));
            }
            if !names.insert(policy.name.as_str()) {
                let message = format!("duplicate policy name {:?}", policy.name);
                return Err(v.invalid(&format!("{path}.name"), &message));
            }
            v.policy(policy, &path, Level::Top)?;
        }
        Ok(())
    }
}

impl Validator<'_> {
    fn invalid(&self, key: &str, message: &str) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_owned(),
            key: key.to_owned(),
            message: message.to_owned(),
        }
    }

    /// An error about policy `p`, prefixed with its name as every policy error is.
    fn bad(&self, p: &PolicyConfig, key: &str, message: &str) -> ConfigError {
        self.invalid(key, &format!("policy {}: {message}", p.name))
    }

    fn policy(&self, p: &PolicyConfig, path: &str, level: Level) -> Result<(), ConfigError> {
        let ty = p.policy_type.as_str();
        if !POLICY_TYPES.contains(&ty) {
            let message = format!(
                "unknown policy type {ty:?}; expected one of {}",
                POLICY_TYPES.join(", ")
            );
            return Err(self.bad(p, &format!("{path}.type"), &message));
        }
        let allowed = match level {
            Level::Top => true,
            Level::CompositeSub => !matches!(ty, "composite" | "not" | "drop"),
            Level::Leaf => !matches!(ty, "composite" | "and" | "not" | "drop"),
        };
        if !allowed {
            let message = format!("type {ty} cannot be nested here");
            return Err(self.bad(p, &format!("{path}.type"), &message));
        }
        for block in p.present_blocks() {
            if block != ty {
                let message = format!("{block} is set but the type is {ty}");
                return Err(self.bad(p, &format!("{path}.{block}"), &message));
            }
        }
        let Some(kind) = p.kind() else {
            let message = format!("type {ty} needs a {ty}: block");
            return Err(self.bad(p, &format!("{path}.{ty}"), &message));
        };
        self.kind(p, kind, &format!("{path}.{ty}"))
    }

    fn kind(&self, p: &PolicyConfig, kind: PolicyKind<'_>, path: &str) -> Result<(), ConfigError> {
        let key = |field: &str| format!("{path}.{field}");
        match kind {
            PolicyKind::AlwaysSample | PolicyKind::TraceFlags => {}
            PolicyKind::OttlCondition(_) => {
                return Err(self.bad(p, path, "ottl_condition is not supported yet"));
            }
            PolicyKind::Latency(c) => {
                if c.threshold_ms < 0 {
                    return Err(self.bad(p, &key("threshold_ms"), "must not be negative"));
                }
                if c.upper_threshold_ms < 0
                    || (c.upper_threshold_ms != 0 && c.upper_threshold_ms < c.threshold_ms)
                {
                    let message = "must be 0 (no upper bound) or at least threshold_ms";
                    return Err(self.bad(p, &key("upper_threshold_ms"), message));
                }
            }
            PolicyKind::NumericAttribute(c) => {
                self.not_empty(p, &key("key"), &c.key)?;
                let min = c.min_value.filter(|v| *v != 0);
                let max = c.max_value.filter(|v| *v != 0);
                if min.is_none() && max.is_none() {
                    let message =
                        "needs min_value or max_value (0 counts as unset, as in the Collector)";
                    return Err(self.bad(p, path, message));
                }
                if let (Some(min), Some(max)) = (min, max) {
                    if min > max {
                        return Err(self.bad(p, &key("max_value"), "must not be below min_value"));
                    }
                }
            }
            PolicyKind::Probabilistic(c) => {
                let pct = c.sampling_percentage;
                if !pct.is_finite() || !(0.0..=100.0).contains(&pct) {
                    let message = format!("{pct} is not a percentage between 0 and 100");
                    return Err(self.bad(p, &key("sampling_percentage"), &message));
                }
            }
            PolicyKind::StatusCode(c) => {
                if c.status_codes.is_empty() {
                    return Err(self.bad(
                        p,
                        &key("status_codes"),
                        "needs at least one status code",
                    ));
                }
                for (j, code) in c.status_codes.iter().enumerate() {
                    if !matches!(code.as_str(), "OK" | "ERROR" | "UNSET") {
                        let message =
                            format!("unknown status code {code:?}; expected OK, ERROR or UNSET");
                        return Err(self.bad(p, &key(&format!("status_codes[{j}]")), &message));
                    }
                }
            }
            PolicyKind::StringAttribute(c) => {
                self.not_empty(p, &key("key"), &c.key)?;
                if c.values.is_empty() {
                    return Err(self.bad(p, &key("values"), "needs at least one value"));
                }
                if c.enabled_regex_matching {
                    for (j, pattern) in c.values.iter().enumerate() {
                        if let Err(err) = regex::Regex::new(pattern) {
                            let reason = err.to_string();
                            let reason =
                                reason.lines().last().unwrap_or_default().trim().to_owned();
                            let message =
                                format!("invalid regular expression {pattern:?}: {reason}");
                            return Err(self.bad(p, &key(&format!("values[{j}]")), &message));
                        }
                    }
                }
            }
            PolicyKind::BooleanAttribute(c) => self.not_empty(p, &key("key"), &c.key)?,
            PolicyKind::RateLimiting(c) => {
                self.positive(p, &key("spans_per_second"), c.spans_per_second)?;
                self.not_negative(p, &key("burst_capacity"), c.burst_capacity)?;
            }
            PolicyKind::BytesLimiting(c) => {
                self.positive(p, &key("bytes_per_second"), c.bytes_per_second)?;
                self.not_negative(p, &key("burst_capacity"), c.burst_capacity)?;
            }
            PolicyKind::SpanCount(c) => {
                self.not_negative(p, &key("min_spans"), c.min_spans.into())?;
                if c.max_spans < 0 || (c.max_spans != 0 && c.max_spans < c.min_spans) {
                    let message = "must be 0 (no maximum) or at least min_spans";
                    return Err(self.bad(p, &key("max_spans"), message));
                }
            }
            PolicyKind::TraceState(c) => {
                self.not_empty(p, &key("key"), &c.key)?;
                if c.values.is_empty() {
                    return Err(self.bad(p, &key("values"), "needs at least one value"));
                }
            }
            PolicyKind::And(subs) => self.subs(p, subs, &key("and_sub_policy"))?,
            PolicyKind::Drop(subs) => self.subs(p, subs, &key("drop_sub_policy"))?,
            PolicyKind::Not(sub) => self.policy(sub, &key("not_sub_policy"), Level::Leaf)?,
            PolicyKind::Composite(c) => self.composite(p, c, path)?,
        }
        Ok(())
    }

    fn subs(&self, p: &PolicyConfig, subs: &[PolicyConfig], path: &str) -> Result<(), ConfigError> {
        if subs.is_empty() {
            return Err(self.bad(p, path, "needs at least one sub-policy"));
        }
        for (j, sub) in subs.iter().enumerate() {
            self.policy(sub, &format!("{path}[{j}]"), Level::Leaf)?;
        }
        Ok(())
    }

    fn composite(
        &self,
        p: &PolicyConfig,
        c: &CompositeConfig,
        path: &str,
    ) -> Result<(), ConfigError> {
        self.positive(
            p,
            &format!("{path}.max_total_spans_per_second"),
            c.max_total_spans_per_second,
        )?;
        let subs_path = format!("{path}.composite_sub_policy");
        if c.composite_sub_policy.is_empty() {
            return Err(self.bad(p, &subs_path, "needs at least one sub-policy"));
        }

        let mut names = HashSet::new();
        for (j, sub) in c.composite_sub_policy.iter().enumerate() {
            let sub_path = format!("{subs_path}[{j}]");
            if sub.name.trim().is_empty() || !names.insert(sub.name.as_str()) {
                let message = "composite sub-policies need unique, non-empty names";
                return Err(self.bad(p, &format!("{sub_path}.name"), message));
            }
            self.policy(sub, &sub_path, Level::CompositeSub)?;
        }

        for (j, name) in c.policy_order.iter().enumerate() {
            if !names.contains(name.as_str()) {
                let message = format!("policy_order names unknown sub-policy {name:?}");
                return Err(self.bad(p, &format!("{path}.policy_order[{j}]"), &message));
            }
        }

        let mut total = 0;
        for (j, alloc) in c.rate_allocation.iter().enumerate() {
            let alloc_path = format!("{path}.rate_allocation[{j}]");
            if !names.contains(alloc.policy.as_str()) {
                let message = format!(
                    "rate_allocation names unknown sub-policy {:?}",
                    alloc.policy
                );
                return Err(self.bad(p, &format!("{alloc_path}.policy"), &message));
            }
            if !(0..=100).contains(&alloc.percent) {
                let message = format!("{} is not a percentage between 0 and 100", alloc.percent);
                return Err(self.bad(p, &format!("{alloc_path}.percent"), &message));
            }
            total += alloc.percent;
        }
        if total > 100 {
            let message = format!("rate_allocation percentages add up to {total}, more than 100");
            return Err(self.bad(p, &format!("{path}.rate_allocation"), &message));
        }
        Ok(())
    }

    fn not_empty(&self, p: &PolicyConfig, key: &str, value: &str) -> Result<(), ConfigError> {
        if value.is_empty() {
            return Err(self.bad(p, key, "must not be empty"));
        }
        Ok(())
    }

    fn positive(&self, p: &PolicyConfig, key: &str, value: i64) -> Result<(), ConfigError> {
        if value <= 0 {
            return Err(self.bad(p, key, &format!("must be greater than zero, not {value}")));
        }
        Ok(())
    }

    fn not_negative(&self, p: &PolicyConfig, key: &str, value: i64) -> Result<(), ConfigError> {
        if value < 0 {
            return Err(self.bad(p, key, &format!("must not be negative, not {value}")));
        }
        Ok(())
    }
}
