//! The accept loop shared by the services: one OS thread per connection, one request at a time
//! per thread, so a thread id identifies the request being served (the probe relies on that).

use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::{debug, info, warn};

use crate::error::DemoError;
use crate::protocol::{LineReader, Request, Response};
use crate::shutdown::Shutdown;

/// How often idle loops look at the shutdown flag.
const POLL: Duration = Duration::from_millis(100);
/// Pause between accept attempts when nothing is waiting.
const ACCEPT_POLL: Duration = Duration::from_millis(10);

/// What a service does with one request.
pub(crate) trait Handler: Send + Sync + 'static {
    /// State kept for the life of one connection (e.g. the connection to the next service).
    type Session;

    fn session(&self) -> Self::Session;

    fn handle(&self, session: &mut Self::Session, request: Request) -> Response;
}

pub(crate) fn bind(addr: SocketAddr) -> Result<TcpListener, DemoError> {
    let listener = TcpListener::bind(addr).map_err(DemoError::net("listen on", addr))?;
    listener
        .set_nonblocking(true)
        .map_err(DemoError::net("configure", addr))?;
    Ok(listener)
}

/// Serves connections on `listener` until shutdown is requested, then waits for the
/// connection threads to finish the request they are serving.
pub(crate) fn serve<H: Handler>(listener: TcpListener, handler: Arc<H>, shutdown: &Shutdown) {
    let local = listener
        .local_addr()
        .map_or_else(|_| "?".to_owned(), |addr| addr.to_string());
    info!(addr = %local, "listening");
    let mut connections: Vec<JoinHandle<()>> = Vec::new();

    while !shutdown.is_requested() {
        match listener.accept() {
            Ok((stream, peer)) => {
                let handler = Arc::clone(&handler);
                let shutdown = shutdown.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("conn-{}", peer.port()))
                    .spawn(move || serve_connection(stream, peer, &*handler, &shutdown));
                match spawned {
                    Ok(thread) => connections.push(thread),
                    Err(error) => warn!(%peer, %error, "cannot start a connection thread"),
                }
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(ACCEPT_POLL);
            }
            Err(error) => {
                warn!(%error, "accept failed");
                std::thread::sleep(ACCEPT_POLL);
            }
        }
        connections.retain(|thread| !thread.is_finished());
    }

    for thread in connections {
        if thread.join().is_err() {
            warn!("a connection thread panicked");
        }
    }
    info!(addr = %local, "stopped listening");
}

fn serve_connection<H: Handler>(
    stream: TcpStream,
    peer: SocketAddr,
    handler: &H,
    shutdown: &Shutdown,
) {
    let configured = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(POLL)))
        .and_then(|()| stream.set_nodelay(true));
    if let Err(error) = configured {
        warn!(%peer, %error, "cannot configure connection");
        return;
    }
    let mut reader = LineReader::new(stream);
    let mut session = handler.session();

    loop {
        let line = match reader.read_line() {
            Ok(Some(line)) => line,
            Ok(None) => return,
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if shutdown.is_requested() {
                    return;
                }
                continue;
            }
            Err(error) => {
                debug!(%peer, %error, "connection closed");
                return;
            }
        };

        let response = match Request::parse(&line) {
            Ok(request) => handler.handle(&mut session, request),
            Err(message) => Response::Err { message },
        };
        if let Err(error) = reader.stream().write_all(response.to_line().as_bytes()) {
            debug!(%peer, %error, "cannot answer");
            return;
        }
    }
}
