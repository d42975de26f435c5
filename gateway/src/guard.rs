//! What a listener asks of its clients: credentials ([`Auth`]) and TLS ([`ServerTls`]), each
//! optional, loaded once at start from the listener's config section.

use std::net::SocketAddr;
use std::sync::Arc;

use tracing::warn;
use wbpf_config::{AuthConfig, TlsConfig};

use crate::auth::Auth;
use crate::tls::ServerTls;
use crate::GatewayError;

/// The credentials and TLS of one config section (`receivers`, `admin`).
#[derive(Clone, Default)]
pub struct Guard {
    pub auth: Option<Arc<Auth>>,
    pub tls: Option<Arc<ServerTls>>,
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
        Ok(Self { auth, tls })
    }
}
