//! Optional authentication of OTLP and admin requests: a bearer token and/or an API-key header.
//!
//! A request passes if it carries any configured credential. Credentials are compared in
//! constant time (only their length can be learned from timing). Refusals are logged at WARN at
//! most once per [`LOG_INTERVAL_MS`], with how many were refused since; no credential, right or
//! wrong, is ever logged. Each listener answers a refusal in its own protocol: HTTP 401 with a
//! `WWW-Authenticate` challenge from [`Auth::challenge`], gRPC `UNAUTHENTICATED` through
//! [`crate::guard::Guard::interceptor`].
//!
//! The receivers can hold a second set, the probes' (`receivers.trigger_auth`): see
//! [`crate::guard::Guard::admit`] for which requests may then carry trigger spans.

use std::sync::Arc;

use hyper::header::{HeaderName, HeaderValue, AUTHORIZATION};
use hyper::HeaderMap;
use subtle::ConstantTimeEq;
use tracing::warn;
use wbpf_config::AuthConfig;

use crate::throttle::Throttle;
use crate::GatewayError;

/// The shortest time between two warnings about refused requests on one listener.
const LOG_INTERVAL_MS: u64 = 10_000;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No configured credential header was present.
    Missing,
    /// A credential header was present, but no value matched.
    Invalid,
}

impl Refusal {
    /// The message sent back; it says what to send, never what was expected.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Missing => "missing credentials: this listener requires authentication",
            Refusal::Invalid => "invalid credentials",
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::Invalid => "invalid",
        }
    }
}

/// The credentials one listener accepts. Not `Debug`: it holds them.
pub struct Auth {
    listener: &'static str,
    bearer: Option<Vec<u8>>,
    api_key: Option<(HeaderName, Vec<u8>)>,
    challenge_missing: HeaderValue,
    challenge_invalid: HeaderValue,
    refusals: Throttle,
}

impl Auth {
    /// The credentials of `config`, for the listener named `listener` (in logs).
    pub fn new(listener: &'static str, config: &AuthConfig) -> Result<Arc<Self>, GatewayError> {
        let invalid = |message: String| GatewayError::Auth { listener, message };
        let api_key = match &config.api_key {
            Some(key) => {
                let name = HeaderName::from_bytes(key.header.to_ascii_lowercase().as_bytes())
                    .map_err(|_| invalid(format!("{:?} is not a header name", key.header)))?;
                Some((name, key.value.expose().as_bytes().to_vec()))
            }
            None => None,
        };
        let bearer = config
            .bearer_token
            .as_ref()
            .map(|token| token.expose().as_bytes().to_vec());

        // RFC 6750 for the bearer token; for a key alone, a scheme naming its header.
        let (missing, wrong) = match (&bearer, &api_key) {
            (Some(_), _) => (
                r#"Bearer realm="wbpf""#.to_owned(),
                r#"Bearer realm="wbpf", error="invalid_token""#.to_owned(),
            ),
            (None, Some((name, _))) => {
                let challenge = format!(r#"ApiKey realm="wbpf", header="{name}""#);
                (challenge.clone(), challenge)
            }
            (None, None) => return Err(invalid("set bearer_token or api_key".to_owned())),
        };
        let header = |text: String| {
            HeaderValue::from_str(&text).map_err(|err| invalid(format!("challenge {text}: {err}")))
        };
        Ok(Arc::new(Self {
            listener,
            bearer,
            api_key,
            challenge_missing: header(missing)?,
            challenge_invalid: header(wrong)?,
            refusals: Throttle::new(LOG_INTERVAL_MS),
        }))
    }

    /// `Ok` if `headers` carry a configured credential; a refusal is logged (rate-limited).
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        self.matches(headers)
            .inspect_err(|refusal| self.log(*refusal))
    }

    /// `Ok` if `headers` carry a configured credential; nothing is logged.
    pub fn matches(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let mut presented = false;
        if let Some(expected) = &self.bearer {
            if let Some(value) = headers.get(AUTHORIZATION) {
                presented = true;
                if bearer_token(value.as_bytes()).is_some_and(|token| same(token, expected)) {
                    return Ok(());
                }
            }
        }
        if let Some((name, expected)) = &self.api_key {
            if let Some(value) = headers.get(name) {
                presented = true;
                if same(value.as_bytes(), expected) {
                    return Ok(());
                }
            }
        }

        Err(if presented {
            Refusal::Invalid
        } else {
            Refusal::Missing
        })
    }

    /// The `WWW-Authenticate` value that goes with a 401 for `refusal`.
    pub fn challenge(&self, refusal: Refusal) -> HeaderValue {
        match refusal {
            Refusal::Missing => self.challenge_missing.clone(),
            Refusal::Invalid => self.challenge_invalid.clone(),
        }
    }

    /// Warns about the first refusal of each interval, counting the others.
    fn log(&self, refusal: Refusal) {
        let Some(also_refused) = self.refusals.admit() else {
            return;
        };
        warn!(
            listener = self.listener,
            reason = refusal.reason(),
            also_refused,
            "refused a request without valid credentials"
        );
    }
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is case-insensitive.
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at(value.iter().position(|&b| b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let start = rest.iter().position(|&b| b != b' ')?;
    Some(&rest[start..])
}

/// Constant-time equality for equal lengths.
fn same(presented: &[u8], expected: &[u8]) -> bool {
    presented.ct_eq(expected).into()
}

#[cfg(test)]
mod tests {
    use wbpf_config::{ApiKeyConfig, Secret};

    use super::*;

    fn auth(bearer: Option<&str>, api_key: Option<(&str, &str)>) -> Arc<Auth> {
        let config = AuthConfig {
            bearer_token: bearer.map(Secret::new),
            api_key: api_key.map(|(header, value)| ApiKeyConfig {
                header: header.to_owned(),
                value: Secret::new(value),
            }),
        };
        Auth::new("test", &config).expect("valid config")
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).expect("header value"));
        }
        map
    }

    #[test]
    fn either_configured_credential_passes_and_anything_else_is_refused() {
        let auth = auth(Some("s3cret"), Some(("X-Api-Key", "k3y")));
        type Headers<'a> = &'a [(&'static str, &'a str)];
        let cases: [(Headers, Result<(), Refusal>); 9] = [
            (&[("authorization", "Bearer s3cret")], Ok(())),
            (&[("authorization", "bearer   s3cret")], Ok(())),
            (&[("x-api-key", "k3y")], Ok(())),
            (
                &[("authorization", "Bearer wrong"), ("x-api-key", "k3y")],
                Ok(()),
            ),
            (&[], Err(Refusal::Missing)),
            (&[("x-other", "s3cret")], Err(Refusal::Missing)),
            (&[("authorization", "Basic s3cret")], Err(Refusal::Invalid)),
            (&[("authorization", "Bearer s3cre")], Err(Refusal::Invalid)),
            (&[("x-api-key", "s3cret")], Err(Refusal::Invalid)),
        ];
        for (pairs, expected) in cases {
            assert_eq!(auth.check(&headers(pairs)), expected, "{pairs:?}");
        }
    }

    #[test]
    fn challenge_names_the_scheme_the_listener_accepts() {
        let bearer = auth(Some("t"), None);
        assert_eq!(
            bearer.challenge(Refusal::Invalid),
            r#"Bearer realm="wbpf", error="invalid_token""#
        );
        let key = auth(None, Some(("X-Api-Key", "k")));
        assert_eq!(
            key.challenge(Refusal::Missing),
            r#"ApiKey realm="wbpf", header="x-api-key""#
        );
    }

    #[test]
    fn a_block_without_credentials_is_an_error() {
        let Err(err) = Auth::new("test", &AuthConfig::default()) else {
            panic!("a block without credentials was accepted");
        };
        assert!(err.to_string().contains("bearer_token"), "{err}");
    }
}
