//! OTLP/HTTP: `POST /v1/traces`, protobuf or JSON by `Content-Type`, optionally gzip-compressed.
//!
//! Answers in the request's content type: an `ExportTraceServiceResponse` on success (with
//! `partial_success` if some spans were rejected or repaired), a `google.rpc.Status` naming the
//! problem otherwise (400 for malformed input, which OTLP clients do not retry; 401 with a
//! `WWW-Authenticate` challenge without the credentials `receivers.auth` asks for; 413 above
//! the size limit; 503 while shutting down). With `receivers.tls` it serves HTTPS. With
//! `receivers.trigger_auth`, only requests carrying it may send trigger spans.

use std::io::Read;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use flate2::read::MultiGzDecoder;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_ENCODING, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tokio::sync::watch;
use tracing::warn;

use super::{Ingestor, ReadTimeouts};
use crate::auth::Refusal;
use crate::guard::Guard;
use crate::throttle::Throttle;
use crate::GatewayError;

/// Warnings about malformed requests: one every 10 s, with how many were left out.
static MALFORMED: Throttle = Throttle::new(10_000);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Protobuf,
    Json,
}

/// Binds the listener now (so address errors surface at start) and serves until `stop`.
pub async fn serve(
    addr: SocketAddr,
    ingestor: Ingestor,
    guard: &Guard,
    timeouts: ReadTimeouts,
    stop: watch::Receiver<bool>,
) -> Result<(SocketAddr, impl std::future::Future<Output = ()>), GatewayError> {
    let (listener, local) = crate::http_server::bind("otlp/http", addr).await?;
    let checks = guard.clone();
    let handler = move |req| handle(ingestor.clone(), checks.clone(), timeouts.body, req);
    let tls = guard.tls.as_ref().map(|tls| tls.acceptor());
    let server =
        crate::http_server::serve_tls("otlp/http", listener, tls, timeouts.header, stop, handler);
    Ok((local, server))
}

async fn handle(
    ingestor: Ingestor,
    guard: Guard,
    body_timeout: Duration,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let admitted = match guard.admit(req.headers()) {
        Ok(admitted) => admitted,
        Err(refusal) => return Ok(unauthorized(&guard, &ingestor, &req, refusal)),
    };
    let format = match content_type(&req) {
        Some(format) => format,
        None if req.uri().path() == "/v1/traces" && req.method() == Method::POST => {
            ingestor.count_rejected();
            let message = "unsupported Content-Type: use application/x-protobuf or \
                           application/json";
            return Ok(error(
                Format::Json,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                message,
            ));
        }
        None => Format::Json,
    };
    if req.uri().path() != "/v1/traces" {
        let message = format!("no such path {}: traces go to /v1/traces", req.uri().path());
        return Ok(error(format, StatusCode::NOT_FOUND, &message));
    }
    if req.method() != Method::POST {
        return Ok(error(format, StatusCode::METHOD_NOT_ALLOWED, "use POST"));
    }

    let result = match read_body(req, ingestor.max_request_bytes, body_timeout).await {
        Ok(body) => match decode(&body, format) {
            Ok(request) => ingestor.ingest(request, admitted).await,
            Err(err) => {
                ingestor.count_rejected();
                Err(err)
            }
        },
        Err(err) => {
            ingestor.count_rejected();
            Err(err)
        }
    };

    Ok(match result {
        Ok(report) => success(format, report.response()),
        Err(GatewayError::InvalidRequest(message)) => {
            if let Some(also_rejected) = MALFORMED.admit() {
                let receiver = "otlp/http";
                warn!(receiver, %message, also_rejected, "rejected a malformed request");
            }
            error(format, StatusCode::BAD_REQUEST, &message)
        }
        Err(GatewayError::TooLarge(message)) => {
            error(format, StatusCode::PAYLOAD_TOO_LARGE, &message)
        }
        Err(slow @ GatewayError::SlowBody(_)) => {
            error(format, StatusCode::REQUEST_TIMEOUT, &slow.to_string())
        }
        Err(other) => error(format, StatusCode::SERVICE_UNAVAILABLE, &other.to_string()),
    })
}

/// The 401 for `refusal`, in the request's format.
fn unauthorized(
    guard: &Guard,
    ingestor: &Ingestor,
    req: &Request<Incoming>,
    refusal: Refusal,
) -> Response<Full<Bytes>> {
    ingestor.count_rejected();
    let format = content_type(req).unwrap_or(Format::Json);
    let mut response = error(format, StatusCode::UNAUTHORIZED, refusal.message());
    // Only the clients' credentials refuse a request; the probes' only admit one.
    if let Some(auth) = &guard.auth {
        let challenge = auth.challenge(refusal);
        response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
    }
    response
}

fn content_type(req: &Request<Incoming>) -> Option<Format> {
    let value = req.headers().get(CONTENT_TYPE)?.to_str().ok()?;
    let mime = value.split(';').next()?.trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/x-protobuf" | "application/protobuf" => Some(Format::Protobuf),
        "application/json" => Some(Format::Json),
        _ => None,
    }
}

/// Reads the body, inflating gzip, never holding more than `limit` bytes of either form.
async fn read_body(
    req: Request<Incoming>,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>, GatewayError> {
    let encoding = req
        .headers()
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    let too_large = || GatewayError::TooLarge(format!("request body exceeds {limit} bytes"));
    // A declared Content-Length over the limit is refused before reading any of the body.
    if hyper::body::Body::size_hint(req.body()).lower() > limit as u64 {
        return Err(too_large());
    }

    let body = Limited::new(req.into_body(), limit).collect();
    let body = tokio::time::timeout(timeout, body)
        .await
        .map_err(|_| GatewayError::SlowBody(timeout))?
        .map_err(
            |err| match err.downcast::<http_body_util::LengthLimitError>() {
                Ok(_) => too_large(),
                Err(err) => GatewayError::InvalidRequest(format!("reading the body failed: {err}")),
            },
        )?
        .to_bytes();

    match encoding.as_deref() {
        None | Some("identity") => Ok(body.to_vec()),
        Some("gzip") => {
            let mut inflated = Vec::new();
            // A gzip body may hold several members; all of them are the body (RFC 1952).
            MultiGzDecoder::new(&body[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut inflated)
                .map_err(|err| GatewayError::InvalidRequest(format!("invalid gzip body: {err}")))?;
            if inflated.len() > limit {
                return Err(GatewayError::TooLarge(format!(
                    "request body exceeds {limit} bytes after decompression"
                )));
            }
            Ok(inflated)
        }
        Some(other) => Err(GatewayError::InvalidRequest(format!(
            "unsupported Content-Encoding {other:?}: use gzip or none"
        ))),
    }
}

fn decode(body: &[u8], format: Format) -> Result<ExportTraceServiceRequest, GatewayError> {
    match format {
        Format::Protobuf => wbpf_otlp::decode::protobuf(body),
        Format::Json => wbpf_otlp::decode::json(body),
    }
    .map_err(GatewayError::from)
}

fn success(format: Format, response: ExportTraceServiceResponse) -> Response<Full<Bytes>> {
    let body = match format {
        Format::Protobuf => response.encode_to_vec(),
        Format::Json => serde_json::to_vec(&response).unwrap_or_else(|_| b"{}".to_vec()),
    };
    respond(format, StatusCode::OK, body)
}

fn error(format: Format, status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let code = match status {
        StatusCode::BAD_REQUEST | StatusCode::UNSUPPORTED_MEDIA_TYPE => 3,
        StatusCode::UNAUTHORIZED => 16,
        StatusCode::NOT_FOUND => 5,
        StatusCode::PAYLOAD_TOO_LARGE => 8,
        StatusCode::METHOD_NOT_ALLOWED => 12,
        _ => 14,
    };
    let body = match format {
        Format::Protobuf => tonic_types::Status {
            code,
            message: message.to_owned(),
            details: Vec::new(),
        }
        .encode_to_vec(),
        Format::Json => serde_json::json!({ "code": code, "message": message })
            .to_string()
            .into_bytes(),
    };
    let mut response = respond(format, status, body);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(
            hyper::header::RETRY_AFTER,
            hyper::header::HeaderValue::from_static("1"),
        );
    }
    response
}

fn respond(format: Format, status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let content_type = match format {
        Format::Protobuf => "application/x-protobuf",
        Format::Json => "application/json",
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}
