//! `probe.gateway`: where the probe sends trigger spans, with which credentials and TLS.
//!
//! Written either as the endpoint alone (`gateway: http://127.0.0.1:4317`) or as a mapping
//! with `endpoint`, `auth` and `tls`, so that a gateway asking for credentials can tell the
//! probes it trusts from strangers.

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::error::Problems;
use crate::{AuthConfig, ClientTlsConfig};

/// The gateway's OTLP/gRPC endpoint and how to connect to it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayClientConfig {
    /// `http://host:port`, or `https://host:port` with `tls`.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// Credentials sent with every export, as the gateway's `receivers.auth` asks for.
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    /// The CA that signed the gateway's certificate, and a client certificate for mTLS.
    #[serde(default)]
    pub tls: Option<ClientTlsConfig>,
}

fn default_endpoint() -> String {
    "http://127.0.0.1:4317".to_owned()
}

impl Default for GatewayClientConfig {
    fn default() -> Self {
        default_endpoint().into()
    }
}

impl From<String> for GatewayClientConfig {
    /// The endpoint alone: no credentials, no TLS.
    fn from(endpoint: String) -> Self {
        Self {
            endpoint,
            auth: None,
            tls: None,
        }
    }
}

impl From<&str> for GatewayClientConfig {
    fn from(endpoint: &str) -> Self {
        endpoint.to_owned().into()
    }
}

impl GatewayClientConfig {
    /// Records what is wrong with the block at key path `at`.
    pub(crate) fn validate(&self, at: &str, problems: &mut Problems) {
        let https = self.endpoint.starts_with("https://");
        if !(https || self.endpoint.starts_with("http://")) {
            problems.push(
                format!("{at}.endpoint"),
                "must start with http:// or https://",
            );
        }
        match (&self.tls, https) {
            (Some(tls), true) => tls.validate(&format!("{at}.tls"), problems),
            (Some(_), false) => {
                problems.push(format!("{at}.tls"), "needs an https:// endpoint");
            }
            (None, true) => {
                let message = "an https:// endpoint needs tls.ca_file, the CA that signed the \
                               gateway's certificate";
                problems.push(format!("{at}.tls"), message);
            }
            (None, false) => {}
        }
        if let Some(auth) = &self.auth {
            auth.validate(&format!("{at}.auth"), problems);
        }
    }
}

/// Accepts the endpoint as a string or the whole mapping.
pub(crate) fn deserialize<'de, D>(deserializer: D) -> Result<GatewayClientConfig, D::Error>
where
    D: Deserializer<'de>,
{
    struct EndpointOrMapping;

    impl<'de> Visitor<'de> for EndpointOrMapping {
        type Value = GatewayClientConfig;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an endpoint such as http://127.0.0.1:4317, or endpoint, auth and tls")
        }

        fn visit_str<E: serde::de::Error>(self, endpoint: &str) -> Result<Self::Value, E> {
            Ok(endpoint.into())
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            GatewayClientConfig::deserialize(MapAccessDeserializer::new(map))
        }
    }

    deserializer.deserialize_any(EndpointOrMapping)
}
