//! Who may connect: credentials (a bearer token, an API-key header) and TLS certificate files,
//! for the gateway's listeners and for the probe's connection to the gateway.
//!
//! Secrets are held in [`Secret`], whose `Debug` output hides the value, so printing a config
//! never prints a token. Files are only checked to be readable here; their PEM content is
//! parsed by whoever serves or connects with them.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::Problems;

/// A credential; `Debug` shows `***`, never the value.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, to send or to compare; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Credentials a request must carry. With both set, either one is enough.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Sent as `Authorization: Bearer <token>`.
    pub bearer_token: Option<Secret>,
    /// Sent as a header of its own, such as `x-api-key: <key>`.
    pub api_key: Option<ApiKeyConfig>,
}

/// A key carried in a header of its own.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// The header's name; matched without regard to case.
    #[serde(default = "default_api_key_header")]
    pub header: String,
    pub value: Secret,
}

fn default_api_key_header() -> String {
    "x-api-key".to_owned()
}

/// A listener's certificate and key, and the CA that client certificates must chain to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, the listener's own certificate first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of that certificate.
    pub key_file: PathBuf,
    /// PEM CA certificates; when set, clients must present a certificate they signed (mTLS).
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
}

/// How a client checks the server's certificate, and the certificate it presents for mTLS.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientTlsConfig {
    /// PEM CA certificates the server's certificate must chain to.
    pub ca_file: PathBuf,
    /// PEM client certificate, for a server that requires one; needs `key_file`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

impl AuthConfig {
    /// Records what is wrong with the block at key path `at`.
    pub(crate) fn validate(&self, at: &str, problems: &mut Problems) {
        if self.bearer_token.is_none() && self.api_key.is_none() {
            problems.push(at, "set bearer_token or api_key (or remove the block)");
        }
        if let Some(token) = &self.bearer_token {
            check_secret(token, &format!("{at}.bearer_token"), problems);
        }
        if let Some(key) = &self.api_key {
            check_secret(&key.value, &format!("{at}.api_key.value"), problems);
            let name_ok = !key.header.is_empty()
                && key
                    .header
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            let lower = key.header.to_ascii_lowercase();
            if !name_ok {
                let message = "must be a header name: letters, digits, '-' and '_'";
                problems.push(format!("{at}.api_key.header"), message);
            } else if lower == "authorization" || lower.starts_with("grpc-") {
                let message = "is reserved: use bearer_token for Authorization";
                problems.push(format!("{at}.api_key.header"), message);
            }
        }
    }
}

/// The probes' credentials must not be the clients', of either kind: whoever holds those
/// could send triggers (a client may send any header).
fn shares_a_credential(triggers: &AuthConfig, clients: &AuthConfig, problems: &mut Problems) {
    let message = "must differ from receivers.auth's, or every client could send triggers";
    let theirs = [
        clients.bearer_token.as_ref(),
        clients.api_key.as_ref().map(|key| &key.value),
    ];
    let shared = |ours: Option<&Secret>| ours.is_some() && theirs.contains(&ours);
    if shared(triggers.bearer_token.as_ref()) {
        problems.push("receivers.trigger_auth.bearer_token", message);
    }
    if shared(triggers.api_key.as_ref().map(|key| &key.value)) {
        problems.push("receivers.trigger_auth.api_key.value", message);
    }
}

/// A credential travels in a header: it must be non-empty visible ASCII.
fn check_secret(secret: &Secret, at: &str, problems: &mut Problems) {
    let value = secret.expose();
    if value.is_empty() {
        problems.push(at, "must not be empty");
    } else if !value.bytes().all(|b| b.is_ascii_graphic()) {
        let message = "must be visible ASCII without spaces (it is sent in a header)";
        problems.push(at, message);
    }
}

impl TlsConfig {
    /// Records files under the block at key path `at` that cannot be read.
    pub(crate) fn validate(&self, at: &str, problems: &mut Problems) {
        check_readable(&self.cert_file, &format!("{at}.cert_file"), problems);
        check_readable(&self.key_file, &format!("{at}.key_file"), problems);
        if let Some(ca) = &self.client_ca_file {
            check_readable(ca, &format!("{at}.client_ca_file"), problems);
        }
    }
}

impl ClientTlsConfig {
    /// Records unreadable files and a certificate without its key (or the reverse).
    pub(crate) fn validate(&self, at: &str, problems: &mut Problems) {
        check_readable(&self.ca_file, &format!("{at}.ca_file"), problems);
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                check_readable(cert, &format!("{at}.cert_file"), problems);
                check_readable(key, &format!("{at}.key_file"), problems);
            }
            (Some(_), None) => problems.push(format!("{at}.cert_file"), "needs key_file too"),
            (None, Some(_)) => problems.push(format!("{at}.key_file"), "needs cert_file too"),
            (None, None) => {}
        }
    }
}

fn check_readable(path: &Path, at: &str, problems: &mut Problems) {
    if let Err(err) = std::fs::File::open(path) {
        problems.push(at, format!("cannot read {}: {err}", path.display()));
    }
}

/// Records what is wrong with every credential and TLS block of `config`.
pub(crate) fn validate(config: &crate::Config, problems: &mut Problems) {
    let gateway = &config.gateway;
    if let Some(auth) = &gateway.receivers.auth {
        auth.validate("receivers.auth", problems);
    }
    if let Some(auth) = &gateway.receivers.trigger_auth {
        auth.validate("receivers.trigger_auth", problems);
        if let Some(clients) = &gateway.receivers.auth {
            shares_a_credential(auth, clients, problems);
        }
    }
    if let Some(tls) = &gateway.receivers.tls {
        tls.validate("receivers.tls", problems);
    }
    if let Some(admin) = &gateway.admin {
        if let Some(auth) = &admin.auth {
            auth.validate("admin.auth", problems);
        }
        if let Some(tls) = &admin.tls {
            tls.validate("admin.tls", problems);
        }
    }
    if let Some(probe) = &config.probe {
        probe.gateway.validate("probe.gateway", problems);
    }
}
