//! Just enough protobuf decoding to summarise an OTLP `ExportTraceServiceRequest`.

use std::time::Duration;

use super::SpanSummary;

enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32,
}

fn varint(buf: &mut &[u8]) -> u64 {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = buf.split_first().expect("truncated varint");
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
    }
    value
}

/// The fields of one message, in order.
fn fields(mut buf: &[u8]) -> Vec<(u64, Value<'_>)> {
    let mut fields = Vec::new();
    while !buf.is_empty() {
        let tag = varint(&mut buf);
        let value = match tag & 7 {
            0 => Value::Varint(varint(&mut buf)),
            1 => {
                let (bytes, rest) = buf.split_at(8);
                buf = rest;
                Value::Fixed64(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
            }
            2 => {
                let len = varint(&mut buf) as usize;
                let (bytes, rest) = buf.split_at(len);
                buf = rest;
                Value::Bytes(bytes)
            }
            5 => {
                buf = &buf[4..];
                Value::Fixed32
            }
            wire => panic!("unexpected wire type {wire}"),
        };
        fields.push((tag >> 3, value));
    }
    fields
}

fn submessages(buf: &[u8], number: u64) -> impl Iterator<Item = &[u8]> {
    fields(buf)
        .into_iter()
        .filter_map(move |(field, value)| match value {
            Value::Bytes(bytes) if field == number => Some(bytes),
            _ => None,
        })
}

fn string_field(buf: &[u8], number: u64) -> String {
    submessages(buf, number)
        .next()
        .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
        .unwrap_or_default()
}

fn fixed64_field(buf: &[u8], number: u64) -> u64 {
    fields(buf)
        .into_iter()
        .find_map(|(field, value)| match value {
            Value::Fixed64(v) if field == number => Some(v),
            Value::Varint(v) if field == number => Some(v),
            _ => None,
        })
        .unwrap_or(0)
}

/// `service.name` from a Resource message.
fn service_name(resource: &[u8]) -> String {
    submessages(resource, 1)
        .find(|attribute| string_field(attribute, 1) == "service.name")
        .and_then(|attribute| submessages(attribute, 2).next().map(|v| string_field(v, 1)))
        .unwrap_or_default()
}

/// ExportTraceServiceRequest { 1: ResourceSpans { 1: Resource, 2: ScopeSpans { 2: Span } } }
/// with Span { 1: trace_id, 5: name, 7: start fixed64, 8: end fixed64 }.
pub fn spans_of_export_request(body: &[u8]) -> Vec<SpanSummary> {
    let mut spans = Vec::new();
    for resource_spans in submessages(body, 1) {
        let service = submessages(resource_spans, 1)
            .next()
            .map(service_name)
            .unwrap_or_default();
        for scope_spans in submessages(resource_spans, 2) {
            for span in submessages(scope_spans, 2) {
                let trace_id = submessages(span, 1).next().unwrap_or_default();
                let start = fixed64_field(span, 7);
                let end = fixed64_field(span, 8);
                spans.push(SpanSummary {
                    service: service.clone(),
                    trace_id: trace_id.iter().map(|b| format!("{b:02x}")).collect(),
                    name: string_field(span, 5),
                    duration: Duration::from_nanos(end.saturating_sub(start)),
                });
            }
        }
    }
    spans
}
