//! The admin HTTP port: `GET /metrics`, `POST /v1/triggers` and `GET /v1/compare`.
//!
//! A manual trigger keeps a trace exactly as a trigger span would: `{"trace_id": "<32 hex>"}`.
//! `/v1/compare` answers the figures of `sampling.compare` as JSON (what `wbpf compare` reads).
//! The port listens on loopback by default; it is not meant for the public interface. With
//! `admin.auth` every request needs the credentials (401 otherwise); `admin.tls` serves TLS.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::WWW_AUTHENTICATE;
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::registry::Registry;
use serde::Deserialize;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};
use wbpf_storage::TraceId;

use crate::auth::Auth;
use crate::buffer::Command;
use crate::guard::Guard;
use crate::http_server::HEADER_TIMEOUT;
use crate::http_server::{json_error, respond};
use crate::{metrics, CompareReader, GatewayError};

/// Largest accepted trigger request.
const MAX_BODY: usize = 64 * 1024;

#[derive(Deserialize)]
struct TriggerRequest {
    trace_id: String,
}

#[derive(Clone)]
struct Admin {
    commands: mpsc::Sender<Command>,
    registry: Arc<Registry>,
    compare: Option<CompareReader>,
    auth: Option<Arc<Auth>>,
}

/// Binds the admin listener and serves until `stop`.
pub async fn serve(
    addr: SocketAddr,
    commands: mpsc::Sender<Command>,
    registry: Registry,
    compare: Option<CompareReader>,
    guard: &Guard,
    stop: watch::Receiver<bool>,
) -> Result<(SocketAddr, impl std::future::Future<Output = ()>), GatewayError> {
    let (listener, local) = crate::http_server::bind("admin", addr).await?;
    if !local.ip().is_loopback() && guard.auth.is_none() {
        warn!(
            addr = %local,
            "the admin port is reachable from other hosts without credentials: anyone who \
             reaches it can keep traces and read metrics; set admin.auth"
        );
    }
    let admin = Admin {
        commands,
        registry: Arc::new(registry),
        compare,
        auth: guard.auth.clone(),
    };
    let handler = move |req| handle(admin.clone(), req);
    let tls = guard.tls.as_ref().map(|tls| tls.acceptor());
    Ok((
        local,
        crate::http_server::serve_tls("admin", listener, tls, HEADER_TIMEOUT, stop, handler),
    ))
}

async fn handle(
    admin: Admin,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    if let Some(auth) = &admin.auth {
        if let Err(refusal) = auth.check(req.headers()) {
            let mut response = json_error(StatusCode::UNAUTHORIZED, refusal.message());
            let challenge = auth.challenge(refusal);
            response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
            return Ok(response);
        }
    }
    let response = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => {
            let text = metrics::render(&admin.registry);
            respond(StatusCode::OK, "text/plain; version=0.0.4", text)
        }
        (&Method::POST, "/v1/triggers") => trigger(&admin, req).await,
        (&Method::GET, "/v1/compare") => compare(&admin),
        (_, "/metrics" | "/v1/triggers" | "/v1/compare") => {
            json_error(StatusCode::METHOD_NOT_ALLOWED, "wrong method")
        }
        (_, path) => json_error(StatusCode::NOT_FOUND, &format!("no such path {path}")),
    };
    Ok(response)
}

fn compare(admin: &Admin) -> Response<Full<Bytes>> {
    let Some(reader) = &admin.compare else {
        let message = "no comparison: set sampling.compare in the gateway's config";
        return json_error(StatusCode::NOT_FOUND, message);
    };
    match serde_json::to_string(&reader.snapshot()) {
        Ok(body) => respond(StatusCode::OK, "application/json", body),
        Err(err) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string()),
    }
}

async fn trigger(admin: &Admin, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(err) => {
            return json_error(StatusCode::BAD_REQUEST, &format!("reading the body: {err}"))
        }
    };
    let request: TriggerRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => {
            let message = format!("expected {{\"trace_id\": \"<32 hex characters>\"}}: {err}");
            return json_error(StatusCode::BAD_REQUEST, &message);
        }
    };
    let trace = match parse_trace_id(&request.trace_id) {
        Ok(trace) => trace,
        Err(message) => return json_error(StatusCode::BAD_REQUEST, &message),
    };

    if admin
        .commands
        .send(Command::Trigger { trace })
        .await
        .is_err()
    {
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the gateway is shutting down",
        );
    }
    info!(%trace, "manual trigger");
    let body = serde_json::json!({ "trace_id": trace.to_string(), "status": "triggered" });
    respond(StatusCode::ACCEPTED, "application/json", body.to_string())
}

fn parse_trace_id(text: &str) -> Result<TraceId, String> {
    let bytes =
        hex::decode(text.trim()).map_err(|err| format!("trace_id {text:?} is not hex: {err}"))?;
    let trace = TraceId::from_slice(&bytes).ok_or_else(|| {
        format!(
            "trace_id must be 16 bytes (32 hex characters), got {}",
            bytes.len()
        )
    })?;
    if trace.0 == [0; 16] {
        return Err("trace_id: an all-zero id is invalid".to_owned());
    }
    Ok(trace)
}
