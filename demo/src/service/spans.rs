//! The spans every request produces, built the same way in all three services.
//!
//! Per request, across the three processes ([`super::SPANS_PER_REQUEST`] in all):
//!
//! ```text
//! frontend  GET /search            SERVER    root
//! frontend  ├─ pool.write          INTERNAL  session object
//! frontend  └─ IndexService/Lookup CLIENT
//! index        └─ IndexService/Lookup SERVER
//! index           ├─ pool.read        INTERNAL  postings object
//! index           └─ StoreService/Fetch CLIENT
//! store              └─ StoreService/Fetch SERVER
//! store                 ├─ pool.read     INTERNAL  record (carries the injected stall)
//! store                 └─ pool.write    INTERNAL  record
//! ```
//!
//! No span says whether a fault was injected: finding out is the detectors' job.

use std::net::SocketAddr;

use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracer;

use crate::context::{extract, inject, SpanAnnouncement};
use crate::error::DemoError;
use crate::pool::{Access, ObjectId, Pool};
use crate::protocol::{Downstream, Request, Response};

pub(crate) const SEARCH: &str = "GET /search";
pub(crate) const INDEX_LOOKUP: &str = "IndexService/Lookup";
pub(crate) const STORE_FETCH: &str = "StoreService/Fetch";

const RPC_SYSTEM: &str = "wbpf-line";

#[derive(Debug, Clone, Copy)]
pub(crate) enum PoolOp {
    Read,
    Write,
}

impl PoolOp {
    fn span_name(self) -> &'static str {
        match self {
            Self::Read => "pool.read",
            Self::Write => "pool.write",
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

/// Starts a SERVER span under `parent`; the returned context holds it.
pub(crate) fn start_server(
    tracer: &SdkTracer,
    name: &'static str,
    parent: &Context,
    attributes: Vec<KeyValue>,
) -> Context {
    let mut attributes = attributes;
    attributes.push(thread_id());
    let span = tracer
        .span_builder(name)
        .with_kind(SpanKind::Server)
        .with_attributes(attributes)
        .start_with_context(tracer, parent);
    parent.with_span(span)
}

/// `thread.id`: the OS thread serving the request, so a probe's trigger that carries no trace
/// context can still be matched to the request by thread and time.
fn thread_id() -> KeyValue {
    // SAFETY: gettid has no preconditions and cannot fail.
    let tid = unsafe { libc::gettid() };
    KeyValue::new("thread.id", i64::from(tid))
}

/// Attributes of an RPC server span `name` ("Service/Method") listening on `server`.
fn rpc_server_attributes(name: &'static str, server: SocketAddr) -> Vec<KeyValue> {
    let mut attributes = rpc_attributes(name);
    attributes.extend(address_attributes(server));
    attributes
}

/// Serves `request` in an RPC SERVER span `name` ("Service/Method") on `listen`, a child of
/// the caller's span, announced to the probe while `work` runs; returns the response line.
pub(crate) fn serve_rpc(
    tracer: &SdkTracer,
    name: &'static str,
    listen: SocketAddr,
    request: &Request,
    work: impl FnOnce(&Context) -> Result<u64, DemoError>,
) -> Response {
    let parent = extract(request.traceparent.as_deref());
    let attributes = rpc_server_attributes(name, listen);
    let cx = start_server(tracer, name, &parent, attributes);
    let announced = SpanAnnouncement::enter(cx.span().span_context());

    let result = work(&cx);
    drop(announced);
    end(&cx, &result);
    respond(result)
}

/// Ends the span in `cx`, with an error status if `result` failed.
pub(crate) fn end<T>(cx: &Context, result: &Result<T, DemoError>) {
    let span = cx.span();
    if let Err(error) = result {
        span.set_status(Status::error(error.to_string()));
    }
    span.end();
}

/// Runs one pool access in its own INTERNAL span. `access` returns its value and where in the
/// pool it landed.
///
/// The span is not announced to the probe: the service's SERVER span, announced for the whole
/// request, already names the trace, and each announcement is a uprobe hit (two per span).
/// A trigger during the access therefore becomes a child of the SERVER span.
pub(crate) fn pool_access<T>(
    tracer: &SdkTracer,
    cx: &Context,
    pool: &Pool,
    op: PoolOp,
    id: ObjectId,
    access: impl FnOnce(&Pool) -> Result<(T, Access), DemoError>,
) -> Result<T, DemoError> {
    let span = tracer
        .span_builder(op.span_name())
        .with_kind(SpanKind::Internal)
        .with_attributes([
            KeyValue::new("pool.name", pool.path().display().to_string()),
            KeyValue::new("pool.operation", op.as_str()),
            KeyValue::new("pool.object_id", id.raw() as i64),
            KeyValue::new("pool.slot", id.slot() as i64),
            thread_id(),
        ])
        .start_with_context(tracer, cx);
    let cx = cx.with_span(span);

    let result = access(pool);

    if let Ok((_, landed)) = &result {
        cx.span().set_attributes([
            KeyValue::new("pool.offset", landed.offset as i64),
            KeyValue::new("pool.len", landed.len as i64),
        ]);
    }
    let result = result.map(|(value, _)| value);
    end(&cx, &result);
    result
}

/// Calls the next service in a CLIENT span `name` ("Service/Method"); returns the pool bytes
/// the callee reports.
pub(crate) fn call(
    tracer: &SdkTracer,
    cx: &Context,
    name: &'static str,
    downstream: &mut Downstream,
    key: u32,
    fault: bool,
) -> Result<u64, DemoError> {
    let peer = downstream.addr();
    let mut attributes = rpc_attributes(name);
    attributes.extend(address_attributes(peer));
    attributes.push(KeyValue::new("network.transport", "tcp"));
    attributes.push(thread_id());
    let span = tracer
        .span_builder(name)
        .with_kind(SpanKind::Client)
        .with_attributes(attributes)
        .start_with_context(tracer, cx);
    let cx = cx.with_span(span);

    let request = Request {
        key,
        fault,
        traceparent: inject(&cx),
    };
    let result = downstream
        .call(&request)
        .and_then(|response| match response {
            Response::Ok { bytes } => Ok(bytes),
            Response::Err { message } => Err(DemoError::Remote { peer, message }),
        });
    end(&cx, &result);
    result
}

/// The response line for a handler's result.
pub(crate) fn respond(result: Result<u64, DemoError>) -> Response {
    match result {
        Ok(bytes) => Response::Ok { bytes },
        Err(error) => Response::Err {
            message: error.to_string(),
        },
    }
}

fn rpc_attributes(name: &'static str) -> Vec<KeyValue> {
    let (service, method) = name.split_once('/').unwrap_or((name, ""));
    vec![
        KeyValue::new("rpc.system", RPC_SYSTEM),
        KeyValue::new("rpc.service", service),
        KeyValue::new("rpc.method", method),
    ]
}

fn address_attributes(addr: SocketAddr) -> [KeyValue; 2] {
    [
        KeyValue::new("server.address", addr.ip().to_string()),
        KeyValue::new("server.port", i64::from(addr.port())),
    ]
}

pub(crate) fn http_server_attributes(server: Option<SocketAddr>, key: u32) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new("http.request.method", "GET"),
        KeyValue::new("http.route", "/search"),
        KeyValue::new("url.path", "/search"),
        KeyValue::new("url.scheme", "http"),
        KeyValue::new("url.query", format!("term={key}")),
        KeyValue::new("user_agent.original", "wbpf-workload"),
    ];
    if let Some(server) = server {
        attributes.extend(address_attributes(server));
    }
    attributes
}
