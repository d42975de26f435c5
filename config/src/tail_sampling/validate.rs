//! Value checks of a `tail_sampling` block, with problems named by key path.
//!
//! The Collector accepts some nonsense silently (a `latency:` block on a `probabilistic` policy, a
//! percentage of 150); wBPF rejects it, because a migration check that passes a config the user
//! did not mean is worse than one that complains. Every problem is recorded, not only the first;
//! only a policy whose type or per-type block is wrong is not looked into further.

use std::collections::HashSet;

use super::policy::{CompositeConfig, PolicyConfig, PolicyKind, POLICY_TYPES};
use super::TailSamplingConfig;
use crate::error::Problems;

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
    problems: &'a mut Problems,
}

impl TailSamplingConfig {
    /// Checks every value; `prefix` is the key path of the block, such as `tail_sampling` or
    /// `processors.tail_sampling`, and starts every key path in `problems`.
    pub(crate) fn validate(&self, prefix: &str, problems: &mut Problems) {
        let path = format!("{prefix}.policies");
        if self.policies.is_empty() {
            problems.push(path.clone(), "at least one policy is required");
        }
        validate_policies(&self.policies, &path, problems);
    }
}

/// Checks a list of policies written at the key path `path`, such as `sampling.trigger_rules`.
pub(crate) fn validate_policies(policies: &[PolicyConfig], path: &str, problems: &mut Problems) {
    let mut v = Validator { problems };
    let mut names = HashSet::new();
    for (i, policy) in policies.iter().enumerate() {
        let path = format!("{path}[{i}]");
        if policy.name.trim().is_empty() {
            v.problems
                .push(format!("{path}.name"), "policy name cannot be empty");
        } else if !names.insert(policy.name.as_str()) {
            let message = format!("duplicate policy name {:?}", policy.name);
            v.problems.push(format!("{path}.name"), message);
        }
        v.policy(policy, &path, Level::Top);
    }
}

impl Validator<'_> {
    /// A problem with policy `p`, prefixed with its name as every policy problem is.
    fn bad(&mut self, p: &PolicyConfig, key: &str, message: &str) {
        self.problems
            .push(key, format!("policy {}: {message}", p.name));
    }

    fn policy(&mut self, p: &PolicyConfig, path: &str, level: Level) {
        let ty = p.policy_type.as_str();
        let type_key = format!("{path}.type");
        if !POLICY_TYPES.contains(&ty) {
            let message = format!(
                "unknown policy type {ty:?}; expected one of {}",
                POLICY_TYPES.join(", ")
            );
            return self.bad(p, &type_key, &message);
        }
        let allowed = match level {
            Level::Top => true,
            Level::CompositeSub => !matches!(ty, "composite" | "not" | "drop"),
            Level::Leaf => !matches!(ty, "composite" | "and" | "not" | "drop"),
        };
        if !allowed {
            return self.bad(p, &type_key, &format!("type {ty} cannot be nested here"));
        }
        let mut consistent = true;
        for block in p.present_blocks() {
            if block != ty {
                let message = format!("{block} is set but the type is {ty}");
                self.bad(p, &format!("{path}.{block}"), &message);
                consistent = false;
            }
        }
        let block_key = format!("{path}.{ty}");
        let Some(kind) = p.kind() else {
            let message = format!("policy {}: type {ty} needs a {ty}: block", p.name);
            return self.problems.push_at(block_key, type_key, message);
        };
        if consistent {
            self.kind(p, kind, &block_key);
        }
    }

    fn kind(&mut self, p: &PolicyConfig, kind: PolicyKind<'_>, path: &str) {
        let key = |field: &str| format!("{path}.{field}");
        match kind {
            PolicyKind::AlwaysSample | PolicyKind::TraceFlags => {}
            PolicyKind::OttlCondition(_) => {
                self.bad(p, path, "ottl_condition is not supported yet");
            }
            PolicyKind::Latency(c) => {
                if c.threshold_ms < 0 {
                    self.bad(p, &key("threshold_ms"), "must not be negative");
                }
                if c.upper_threshold_ms < 0
                    || (c.upper_threshold_ms != 0 && c.upper_threshold_ms < c.threshold_ms)
                {
                    let message = "must be 0 (no upper bound) or at least threshold_ms";
                    self.bad(p, &key("upper_threshold_ms"), message);
                }
                if c.threshold_ms == 0 && c.upper_threshold_ms == 0 {
                    let message = "needs threshold_ms or upper_threshold_ms (0 counts as unset)";
                    self.bad(p, path, message);
                }
            }
            PolicyKind::NumericAttribute(c) => {
                self.not_empty(p, &key("key"), &c.key);
                let min = c.min_value.filter(|v| *v != 0);
                let max = c.max_value.filter(|v| *v != 0);
                if min.is_none() && max.is_none() {
                    let message =
                        "needs min_value or max_value (0 counts as unset, as in the Collector)";
                    self.bad(p, path, message);
                }
                if let (Some(min), Some(max)) = (min, max) {
                    if min > max {
                        self.bad(p, &key("max_value"), "must not be below min_value");
                    }
                }
            }
            PolicyKind::Probabilistic(c) => {
                let pct = c.sampling_percentage;
                if !pct.is_finite() || !(0.0..=100.0).contains(&pct) {
                    let message = format!("{pct} is not a percentage between 0 and 100");
                    self.bad(p, &key("sampling_percentage"), &message);
                }
            }
            PolicyKind::StatusCode(c) => {
                if c.status_codes.is_empty() {
                    self.bad(p, &key("status_codes"), "needs at least one status code");
                }
                for (j, code) in c.status_codes.iter().enumerate() {
                    if !matches!(code.as_str(), "OK" | "ERROR" | "UNSET") {
                        let message =
                            format!("unknown status code {code:?}; expected OK, ERROR or UNSET");
                        self.bad(p, &key(&format!("status_codes[{j}]")), &message);
                    }
                }
            }
            PolicyKind::StringAttribute(c) => {
                self.not_empty(p, &key("key"), &c.key);
                if c.values.is_empty() {
                    self.bad(p, &key("values"), "needs at least one value");
                }
                if c.enabled_regex_matching {
                    for (j, pattern) in c.values.iter().enumerate() {
                        if let Err(err) = regex::Regex::new(pattern) {
                            let reason = err.to_string();
                            let reason = reason.lines().last().unwrap_or_default().trim();
                            let reason = reason.strip_prefix("error: ").unwrap_or(reason);
                            let message =
                                format!("invalid regular expression {pattern:?}: {reason}");
                            self.bad(p, &key(&format!("values[{j}]")), &message);
                        }
                    }
                }
            }
            PolicyKind::BooleanAttribute(c) => self.not_empty(p, &key("key"), &c.key),
            PolicyKind::RateLimiting(c) => {
                self.positive(p, &key("spans_per_second"), c.spans_per_second);
                self.not_negative(p, &key("burst_capacity"), c.burst_capacity);
            }
            PolicyKind::BytesLimiting(c) => {
                self.positive(p, &key("bytes_per_second"), c.bytes_per_second);
                self.not_negative(p, &key("burst_capacity"), c.burst_capacity);
            }
            PolicyKind::SpanCount(c) => {
                self.not_negative(p, &key("min_spans"), c.min_spans.into());
                if c.max_spans < 0 || (c.max_spans != 0 && c.max_spans < c.min_spans) {
                    let message = "must be 0 (no maximum) or at least min_spans";
                    self.bad(p, &key("max_spans"), message);
                }
            }
            PolicyKind::TraceState(c) => {
                self.not_empty(p, &key("key"), &c.key);
                if c.values.is_empty() {
                    self.bad(p, &key("values"), "needs at least one value");
                }
            }
            PolicyKind::And(subs) => self.subs(p, subs, &key("and_sub_policy")),
            PolicyKind::Drop(subs) => self.subs(p, subs, &key("drop_sub_policy")),
            PolicyKind::Not(sub) => self.policy(sub, &key("not_sub_policy"), Level::Leaf),
            PolicyKind::Composite(c) => self.composite(p, c, path),
        }
    }

    fn subs(&mut self, p: &PolicyConfig, subs: &[PolicyConfig], path: &str) {
        if subs.is_empty() {
            self.bad(p, path, "needs at least one sub-policy");
        }
        for (j, sub) in subs.iter().enumerate() {
            self.policy(sub, &format!("{path}[{j}]"), Level::Leaf);
        }
    }

    fn composite(&mut self, p: &PolicyConfig, c: &CompositeConfig, path: &str) {
        let max_key = format!("{path}.max_total_spans_per_second");
        self.positive(p, &max_key, c.max_total_spans_per_second);
        let subs_path = format!("{path}.composite_sub_policy");
        if c.composite_sub_policy.is_empty() {
            self.bad(p, &subs_path, "needs at least one sub-policy");
        }

        let mut names = HashSet::new();
        for (j, sub) in c.composite_sub_policy.iter().enumerate() {
            let sub_path = format!("{subs_path}[{j}]");
            if sub.name.trim().is_empty() || !names.insert(sub.name.as_str()) {
                let message = "composite sub-policies need unique, non-empty names";
                self.bad(p, &format!("{sub_path}.name"), message);
            }
            self.policy(sub, &sub_path, Level::CompositeSub);
        }

        for (j, name) in c.policy_order.iter().enumerate() {
            if !names.contains(name.as_str()) {
                let message = format!("policy_order names unknown sub-policy {name:?}");
                self.bad(p, &format!("{path}.policy_order[{j}]"), &message);
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
                self.bad(p, &format!("{alloc_path}.policy"), &message);
            }
            if (0..=100).contains(&alloc.percent) {
                total += alloc.percent;
            } else {
                let message = format!("{} is not a percentage between 0 and 100", alloc.percent);
                self.bad(p, &format!("{alloc_path}.percent"), &message);
            }
        }
        if total > 100 {
            let message = format!("rate_allocation percentages add up to {total}, more than 100");
            self.bad(p, &format!("{path}.rate_allocation"), &message);
        }
    }

    fn not_empty(&mut self, p: &PolicyConfig, key: &str, value: &str) {
        if value.is_empty() {
            self.bad(p, key, "must not be empty");
        }
    }

    fn positive(&mut self, p: &PolicyConfig, key: &str, value: i64) {
        if value <= 0 {
            self.bad(p, key, &format!("must be greater than zero, not {value}"));
        }
    }

    fn not_negative(&mut self, p: &PolicyConfig, key: &str, value: i64) {
        if value < 0 {
            self.bad(p, key, &format!("must not be negative, not {value}"));
        }
    }
}
