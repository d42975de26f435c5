//! TLS for the OTLP receivers and the admin port, with rustls and its ring crypto provider.
//!
//! The certificate, key and client CAs are read from PEM files once, at start; a file that
//! cannot be read, holds no usable PEM block, or a key that does not match the certificate, is
//! an error naming the file and its config key. The HTTP listeners (OTLP/HTTP, admin) terminate
//! TLS with tokio-rustls; the gRPC listener hands the same PEM to tonic, which runs rustls with
//! HTTP/2 negotiated by ALPN. With `client_ca_file`, a client must present a certificate signed
//! by one of those CAs (mTLS); the handshake fails otherwise.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::rustls::crypto::{ring, CryptoProvider};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use wbpf_config::TlsConfig;

use crate::GatewayError;

/// How long a client may take to complete the handshake before its connection is closed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A listener's certificate, key and optional client CAs, checked and ready to serve.
pub struct ServerTls {
    /// The config block, for errors.
    at: String,
    cert_file: PathBuf,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    client_ca_pem: Option<Vec<u8>>,
    http: Arc<ServerConfig>,
}

impl ServerTls {
    /// Reads and checks the files of `config`, the block at key path `at` (in errors).
    pub fn load(at: &str, config: &TlsConfig) -> Result<Self, GatewayError> {
        let provider = Arc::new(ring::default_provider());
        let cert_key = format!("{at}.cert_file");
        let key_key = format!("{at}.key_file");

        let cert_pem = read(&cert_key, &config.cert_file)?;
        let certs = certificates(&cert_key, &config.cert_file, &cert_pem)?;
        let key_pem = read(&key_key, &config.key_file)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|err| error(&key_key, &config.key_file, format!("no private key: {err}")))?;

        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|err| error(at, &config.cert_file, err.to_string()))?;
        let (builder, client_ca_pem) = match &config.client_ca_file {
            Some(path) => {
                let ca_key = format!("{at}.client_ca_file");
                let pem = read(&ca_key, path)?;
                let verifier = client_verifier(&ca_key, path, &pem, provider)?;
                (builder.with_client_cert_verifier(verifier), Some(pem))
            }
            None => (builder.with_no_client_auth(), None),
        };
        let mut http = builder.with_single_cert(certs, key).map_err(|err| {
            let message = format!("unusable with {}: {err}", config.cert_file.display());
            error(&key_key, &config.key_file, message)
        })?;
        http.alpn_protocols = vec![b"http/1.1".to_vec()];

        Ok(Self {
            at: at.to_owned(),
            cert_file: config.cert_file.clone(),
            cert_pem,
            key_pem,
            client_ca_pem,
            http: Arc::new(http),
        })
    }

    /// Terminates TLS on an HTTP/1.1 listener.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(Arc::clone(&self.http))
    }

    /// `server` serving TLS with the same certificate, key and client CAs.
    pub fn grpc_server(&self, server: Server) -> Result<Server, GatewayError> {
        let identity = Identity::from_pem(&self.cert_pem, &self.key_pem);
        let config = ServerTlsConfig::new()
            .identity(identity)
            .timeout(HANDSHAKE_TIMEOUT);
        let config = match &self.client_ca_pem {
            Some(pem) => config.client_ca_root(Certificate::from_pem(pem)),
            None => config,
        };
        server
            .tls_config(config)
            .map_err(|err| error(&self.at, &self.cert_file, format!("gRPC server: {err}")))
    }
}

fn read(key: &str, path: &Path) -> Result<Vec<u8>, GatewayError> {
    std::fs::read(path).map_err(|err| error(key, path, format!("cannot read: {err}")))
}

/// Every `CERTIFICATE` block of `pem`; at least one.
fn certificates(
    key: &str,
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, GatewayError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| error(key, path, format!("invalid PEM: {err}")))?;
    if certs.is_empty() {
        return Err(error(key, path, "no CERTIFICATE block".to_owned()));
    }
    Ok(certs)
}

/// Accepts clients whose certificate chains to a CA of `pem`, and no others.
fn client_verifier(
    key: &str,
    path: &Path,
    pem: &[u8],
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn tokio_rustls::rustls::server::danger::ClientCertVerifier>, GatewayError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(key, path, pem)? {
        roots
            .add(cert)
            .map_err(|err| error(key, path, format!("not a usable CA certificate: {err}")))?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|err| error(key, path, err.to_string()))
}

fn error(key: &str, path: &Path, message: String) -> GatewayError {
    GatewayError::Tls {
        key: key.to_owned(),
        file: path.to_path_buf(),
        message,
    }
}
