//! The traces offered: a request fanning out over a few services, tens of spans, a few KiB of
//! attributes, with a share of errors, slow requests and trigger spans.

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{status, ResourceSpans, ScopeSpans, Span, Status};
use rand::Rng;

/// How traces look.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub spans_per_trace: usize,
    /// Bytes of string attributes per span.
    pub attribute_bytes: usize,
    /// Share of traces with an ERROR span.
    pub error_share: f64,
    /// Share of traces slower than one second end to end.
    pub slow_share: f64,
    /// Share of traces carrying a `wbpf.trigger` span.
    pub trigger_share: f64,
}

const SERVICES: [&str; 4] = ["frontend", "checkout", "inventory", "pool-store"];

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

fn text(key: &str, value: String) -> KeyValue {
    kv(key, any_value::Value::StringValue(value))
}

/// One trace as one `ResourceSpans` per service, starting at `now_ns`.
pub fn trace(shape: &Shape, rng: &mut impl Rng, now_ns: u64) -> Vec<ResourceSpans> {
    let trace_id: [u8; 16] = rng.random();
    let error = rng.random_bool(shape.error_share);
    let slow = rng.random_bool(shape.slow_share);
    let trigger = rng.random_bool(shape.trigger_share);
    let duration_ns: u64 = if slow { 1_500_000_000 } else { 40_000_000 };
    let padding = "x".repeat(shape.attribute_bytes / 4);

    let mut per_service: Vec<Vec<Span>> = vec![Vec::new(); SERVICES.len()];
    let root_id: [u8; 8] = rng.random();
    for index in 0..shape.spans_per_trace {
        let span_id: [u8; 8] = if index == 0 { root_id } else { rng.random() };
        let service = index % SERVICES.len();
        let offset = (index as u64) * duration_ns / (shape.spans_per_trace as u64 * 2);
        let mut attributes = vec![
            text("http.route", format!("/api/v1/items/{}", index % 7)),
            text("pool.object", format!("obj-{:08x}", rng.random::<u32>())),
            kv(
                "pool.bytes",
                any_value::Value::IntValue(rng.random_range(64..65_536)),
            ),
            text(
                "db.statement",
                format!("SELECT * FROM items WHERE id = ?{padding}"),
            ),
            text("user.agent", format!("bench/{padding}")),
            text(
                "peer.service",
                SERVICES[(service + 1) % SERVICES.len()].to_owned(),
            ),
            text("padding", padding.clone()),
            text("padding.more", padding.clone()),
        ];
        if trigger && index == shape.spans_per_trace - 1 {
            attributes.push(kv("wbpf.trigger", any_value::Value::BoolValue(true)));
        }
        let failed = error && index == shape.spans_per_trace / 2;
        per_service[service].push(Span {
            trace_id: trace_id.to_vec(),
            span_id: span_id.to_vec(),
            parent_span_id: if index == 0 {
                Vec::new()
            } else {
                root_id.to_vec()
            },
            name: format!("{} op{}", SERVICES[service], index % 5),
            kind: if index == 0 { 2 } else { 1 },
            start_time_unix_nano: now_ns + offset,
            end_time_unix_nano: now_ns + duration_ns - offset,
            attributes,
            status: Some(Status {
                code: if failed {
                    status::StatusCode::Error as i32
                } else {
                    status::StatusCode::Ok as i32
                },
                ..Status::default()
            }),
            ..Span::default()
        });
    }
    per_service
        .into_iter()
        .enumerate()
        .filter(|(_, spans)| !spans.is_empty())
        .map(|(service, spans)| ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    text("service.name", SERVICES[service].to_owned()),
                    text("host.name", format!("node-{}", service % 2)),
                ],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        })
        .collect()
}
