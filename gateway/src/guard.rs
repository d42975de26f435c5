//! What a listener asks of its clients: credentials ([`Auth`]) and TLS ([`ServerTls`]), each
//! optional, loaded once at start from the listener's config section; for the receivers also
//! the probes' credentials, without which a request may not carry trigger spans.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::HeaderMap;
use tonic::service::Interceptor;
use tonic::Status;
use tracing::warn;
use wbpf_config::{AuthConfig, TlsConfig};

use crate::auth::{Auth, Refusal};
use crate::tls::ServerTls;
use crate::GatewayError;

/// The credentials and TLS of one config section (`receivers`, `admin`).
#[derive(Clone, Default)]
pub struct Guard {
    pub auth: Option<Arc<Auth>>,
    /// The probes' credentials (`receivers.trigger_auth`).
    pub triggers: Option<Arc<Auth>>,
    pub tls: Option<Arc<ServerTls>>,
}

/// What an admitted request may carry, as a request extension on the gRPC path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    /// Whether its trigger spans count as triggers.
    pub may_trigger: bool,
}

impl Guard {
    /// Loads the section `at`'s blocks; `listener` names it in logs. Warns if credentials would
    /// cross the network in clear text on one of `addrs`.
    pub fn load(
        listener: &'static str,
        at: &str,
        auth: Option<&AuthConfig>,
        tls: Option<&TlsConfig>,
        addrs: &[SocketAddr],
    ) -> Result<Self, GatewayError> {
        let auth = auth.map(|config| Auth::new(listener, config)).transpose()?;
        let tls = tls
            .map(|config| ServerTls::load(&format!("{at}.tls"), config))
            .transpose()?
            .map(Arc::new);

        let exposed = addrs.iter().filter(|addr| !addr.ip().is_loopback());
        for addr in exposed {
            if auth.is_some() && tls.is_none() {
                warn!(
                    listener,
                    %addr,
                    "credentials are checked but cross the network in clear text: set {at}.tls"
                );
            }
        }
        Ok(Self {
            auth,
            triggers: None,
            tls,
        })
    }

    /// Adds the probes' credentials (`receivers.trigger_auth`); warns as [`Guard::load`] does.
    pub fn with_triggers(
        mut self,
        config: Option<&AuthConfig>,
        addrs: &[SocketAddr],
    ) -> Result<Self, GatewayError> {
        self.triggers = config
            .map(|config| Auth::new("otlp triggers", config))
            .transpose()?;
        if self.triggers.is_some() && self.auth.is_none() && self.tls.is_none() {
            for addr in addrs.iter().filter(|addr| !addr.ip().is_loopback()) {
                warn!(
                    listener = "otlp triggers",
                    %addr,
                    "credentials are checked but cross the network in clear text: set \
                     receivers.tls"
                );
            }
        }
        Ok(self)
    }

    /// Whether the listener checks anything about a request's credentials.
    pub fn checks_credentials(&self) -> bool {
        self.auth.is_some() || self.triggers.is_some()
    }

    /// Admits a request by its headers, or refuses it (logged, rate-limited).
    ///
    /// The probes' credentials admit a request, trigger spans included. Without them, a request
    /// needs the clients' credentials when those are set, and may carry trigger spans only
    /// when no probes' credentials are set.
    pub fn admit(&self, headers: &HeaderMap) -> Result<Admitted, Refusal> {
        let probe = self
            .triggers
            .as_ref()
            .is_some_and(|triggers| triggers.matches(headers).is_ok());
        if !probe {
            if let Some(auth) = &self.auth {
                auth.check(headers)?;
            }
        }
        Ok(Admitted {
            may_trigger: probe || self.triggers.is_none(),
        })
    }

    /// A gRPC interceptor answering `UNAUTHENTICATED` (`refused` runs for each refusal) and
    /// leaving [`Admitted`] in the request's extensions.
    pub fn interceptor(
        &self,
        refused: impl Fn() + Clone + Send + Sync + 'static,
    ) -> impl Interceptor + Clone + Send + Sync + 'static {
        let guard = self.clone();
        move |mut request: tonic::Request<()>| match guard.admit(request.metadata().as_ref()) {
            Ok(admitted) => {
                request.extensions_mut().insert(admitted);
                Ok(request)
            }
            Err(refusal) => {
                refused();
                Err(Status::unauthenticated(refusal.message()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use hyper::header::HeaderValue;
    use wbpf_config::Secret;

    use super::*;

    fn bearer(token: &str) -> AuthConfig {
        AuthConfig {
            bearer_token: Some(Secret::new(token)),
            api_key: None,
        }
    }

    fn guard(clients: Option<&str>, probes: Option<&str>) -> Guard {
        let clients = clients.map(bearer);
        let probes = probes.map(bearer);
        Guard::load("test", "receivers", clients.as_ref(), None, &[])
            .and_then(|guard| guard.with_triggers(probes.as_ref(), &[]))
            .expect("valid credentials")
    }

    fn headers(token: Option<&str>) -> HeaderMap {
        let mut map = HeaderMap::new();
        if let Some(token) = token {
            let value = HeaderValue::from_str(&format!("Bearer {token}")).expect("header");
            map.insert(hyper::header::AUTHORIZATION, value);
        }
        map
    }

    fn admit(guard: &Guard, token: Option<&str>) -> Result<bool, Refusal> {
        guard
            .admit(&headers(token))
            .map(|admitted| admitted.may_trigger)
    }

    #[test]
    fn without_probe_credentials_whoever_is_admitted_may_trigger() {
        assert_eq!(admit(&guard(None, None), None), Ok(true));
        let clients = guard(Some("client"), None);
        assert_eq!(admit(&clients, Some("client")), Ok(true));
        assert_eq!(admit(&clients, None), Err(Refusal::Missing));
    }

    #[test]
    fn with_probe_credentials_only_their_holders_may_trigger() {
        let both = guard(Some("client"), Some("probe"));
        assert_eq!(admit(&both, Some("probe")), Ok(true));
        assert_eq!(admit(&both, Some("client")), Ok(false));
        assert_eq!(admit(&both, Some("other")), Err(Refusal::Invalid));
        assert_eq!(admit(&both, None), Err(Refusal::Missing));

        // Clients without credentials are admitted, but only probes trigger.
        let probes_only = guard(None, Some("probe"));
        assert_eq!(admit(&probes_only, None), Ok(false));
        assert_eq!(admit(&probes_only, Some("client")), Ok(false));
        assert_eq!(admit(&probes_only, Some("probe")), Ok(true));
    }
}
