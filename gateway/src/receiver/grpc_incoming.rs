//! The gRPC receiver's connections, handed to tonic only once their client has sent something:
//! one that connects and stays silent is closed after `receivers.read_header_timeout`, as on
//! the HTTP port, instead of holding a connection (and a file descriptor) for ever.

use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tracing::debug;

/// Connections accepted but not yet handed over, at most.
const PENDING: usize = 64;

/// Accepts on `listener` until `stop`, yielding each connection whose client sent its first
/// bytes within `timeout`.
pub fn incoming(
    listener: TcpListener,
    timeout: Duration,
    mut stop: watch::Receiver<bool>,
) -> ReceiverStream<std::io::Result<TcpStream>> {
    let (ready, connections) = mpsc::channel(PENDING);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = crate::stop::stopped(&mut stop) => break,
                _ = ready.closed() => break,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    crate::http_server::accept_failed("otlp/grpc", &err).await;
                    continue;
                }
            };
            let ready = ready.clone();
            tokio::spawn(async move {
                // `readable()` may wake without data; a peek waits for a byte (or the end).
                let mut first = [0_u8; 1];
                match tokio::time::timeout(timeout, stream.peek(&mut first)).await {
                    Ok(Ok(_)) => {
                        let _ = stream.set_nodelay(true);
                        let _ = ready.send(Ok(stream)).await;
                    }
                    Ok(Err(err)) => debug!(%peer, error = %err, "gRPC connection failed"),
                    Err(_) => debug!(%peer, "gRPC client sent nothing in time; closed"),
                }
            });
        }
    });
    ReceiverStream::new(connections)
}
