//! The probe's admin HTTP port: `GET /metrics`, `GET /v1/detectors`, `POST /v1/reload`.
//!
//! Loopback by default (`probe.admin`); not meant for the public interface. Every request is
//! answered by the task that owns the probe, through [`Request`].

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Response, StatusCode};
use tokio::sync::{mpsc, oneshot, watch};
use wbpf_gateway::http_server::{self, json_error, respond};

use super::Request;

/// Binds the admin listener; the returned future serves until `stop`.
pub async fn serve(
    addr: SocketAddr,
    requests: mpsc::Sender<Request>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<impl Future<Output = ()>> {
    let (listener, _) = http_server::bind("probe admin", addr).await?;
    let handler = move |req| handle(requests.clone(), req);
    Ok(http_server::serve("probe admin", listener, stop, handler))
}

async fn handle(
    requests: mpsc::Sender<Request>,
    req: hyper::Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => match ask(&requests, Request::Metrics).await {
            Some(text) => respond(StatusCode::OK, "text/plain; version=0.0.4", text),
            None => stopping(),
        },
        (&Method::GET, "/v1/detectors") => match ask(&requests, Request::Detectors).await {
            Some(body) => respond(StatusCode::OK, "application/json", body.to_string()),
            None => stopping(),
        },
        (&Method::POST, "/v1/reload") => match ask(&requests, Request::Reload).await {
            Some(Ok(report)) => respond(StatusCode::OK, "application/json", report.to_string()),
            Some(Err(message)) => json_error(StatusCode::UNPROCESSABLE_ENTITY, &message),
            None => stopping(),
        },
        (_, "/metrics" | "/v1/detectors" | "/v1/reload") => {
            json_error(StatusCode::METHOD_NOT_ALLOWED, "wrong method")
        }
        (_, path) => json_error(StatusCode::NOT_FOUND, &format!("no such path {path}")),
    };
    Ok(response)
}

/// Sends a request to the probe's task and waits for the answer; `None` once it stopped.
async fn ask<T>(
    requests: &mpsc::Sender<Request>,
    request: impl FnOnce(oneshot::Sender<T>) -> Request,
) -> Option<T> {
    let (answer, answered) = oneshot::channel();
    requests.send(request(answer)).await.ok()?;
    answered.await.ok()
}

fn stopping() -> Response<Full<Bytes>> {
    json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the probe is shutting down",
    )
}
