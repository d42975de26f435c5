//! The accept loop (plaintext or TLS) and response helpers shared by the OTLP/HTTP receiver and
//! the admin ports (the gateway's, and the probe's in the `wbpf` binary).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::throttle::Throttle;
use crate::{tls, GatewayError};

/// How long a client of the admin ports may take to send a request's headers (and, on a
/// kept-alive connection, to start the next request): one that stops sending cannot hold a
/// connection open. The OTLP receiver's is `receivers.read_header_timeout`.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the accept loop waits after a failed accept before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Warnings about failed accepts: one every 10 s, with how many were left out.
static ACCEPT_FAILURES: Throttle = Throttle::new(10_000);

/// Binds a listener, so that address errors surface at start, naming the receiver.
pub async fn bind(
    receiver: &'static str,
    addr: SocketAddr,
) -> Result<(TcpListener, SocketAddr), GatewayError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| GatewayError::Bind {
            receiver,
            addr,
            source,
        })?;
    let local = listener.local_addr().unwrap_or(addr);
    info!(receiver, addr = %local, "listening");
    Ok((listener, local))
}

/// Serves HTTP/1.1 connections with `handler` until `stop`; open connections finish on their
/// own.
pub async fn serve<H, F>(
    receiver: &'static str,
    listener: TcpListener,
    stop: watch::Receiver<bool>,
    handler: H,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    serve_tls(receiver, listener, None, HEADER_TIMEOUT, stop, handler).await;
}

/// [`serve`], over TLS when `tls` is set, closing a connection whose client takes longer than
/// `header_timeout` to send a request's headers. Each handshake runs in the connection's own
/// task, bounded by [`tls::HANDSHAKE_TIMEOUT`]; a failed one closes only that connection.
pub(crate) async fn serve_tls<H, F>(
    receiver: &'static str,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    header_timeout: Duration,
    mut stop: watch::Receiver<bool>,
    handler: H,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = crate::stop::stopped(&mut stop) => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                accept_failed(receiver, &err).await;
                continue;
            }
        };
        let handler = handler.clone();
        let Some(acceptor) = tls.clone() else {
            tokio::spawn(connection(receiver, peer, stream, header_timeout, handler));
            continue;
        };
        tokio::spawn(async move {
            match tokio::time::timeout(tls::HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    connection(receiver, peer, stream, header_timeout, handler).await;
                }
                Ok(Err(err)) => debug!(receiver, %peer, error = %err, "TLS handshake failed"),
                Err(_) => debug!(receiver, %peer, "TLS handshake timed out"),
            }
        });
    }
}

/// After a failed accept: warns (once per 10 s) and waits before the next one. Out of file
/// descriptors, say, accepting again at once would fail again, in a loop that burns a core and
/// floods the log; open connections close meanwhile.
pub(crate) async fn accept_failed(receiver: &'static str, err: &std::io::Error) {
    if let Some(also_failed) = ACCEPT_FAILURES.admit() {
        warn!(receiver, error = %err, also_failed, "accept failed; pausing accepts");
    }
    tokio::time::sleep(ACCEPT_BACKOFF).await;
}

async fn connection<S, H, F>(
    receiver: &'static str,
    peer: SocketAddr,
    stream: S,
    header_timeout: Duration,
    handler: H,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(stream), service_fn(handler));
    if let Err(err) = conn.await {
        debug!(receiver, %peer, error = %err, "connection ended");
    }
}

/// A JSON error body, `{"message": ...}`.
pub fn json_error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "message": message }).to_string();
    respond(status, "application/json", body)
}

/// A response with `body` of `content_type`.
pub fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: String,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}
