//! Decoding OTLP request bodies, with messages that tell a sender what to fix.
//!
//! Both decoders bound their recursion (prost at 100 nested messages, serde_json at 128 nested
//! values), so a deeply nested payload is refused as invalid rather than overflowing the stack;
//! the message then says so in words. Invalid UTF-8 in a protobuf string fails the whole decode,
//! as prost cannot skip one field.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use crate::OtlpError;

const TOO_DEEP: &str = "attribute values nested too deeply";
/// What a malformed id in OTLP/JSON is reported as: an id that is not a string, or not hex.
const HEX_ERRORS: [&str; 4] = [
    "hex-encoded bytes",
    "invalid character",
    "odd number of digits",
    "invalid string length",
];

/// Decodes an `ExportTraceServiceRequest` in protobuf.
///
/// It takes one contiguous slice: prost reads a slice several times faster than a layered
/// buffer such as tonic's `DecodeBuf`, which checks its bounds on every byte it hands out.
pub fn protobuf(body: &[u8]) -> Result<ExportTraceServiceRequest, OtlpError> {
    ExportTraceServiceRequest::decode(body).map_err(|err| {
        let err = err.to_string();
        // The error lists every enclosing field, hundreds of them for this one.
        let err = if err.ends_with("recursion limit reached") {
            format!("messages nested more than 100 deep ({TOO_DEEP})")
        } else {
            err
        };
        OtlpError::Protobuf(err)
    })
}

/// Decodes an `ExportTraceServiceRequest` in OTLP/JSON.
pub fn json(body: &[u8]) -> Result<ExportTraceServiceRequest, OtlpError> {
    serde_json::from_slice(body).map_err(|err| {
        let message = err.to_string();
        let hint = if message.starts_with("recursion limit exceeded") {
            format!(" ({TOO_DEEP})")
        } else if HEX_ERRORS.iter().any(|error| message.contains(error)) {
            " (trace and span ids are hex strings)".to_owned()
        } else {
            String::new()
        };
        OtlpError::Json { message, hint }
    })
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{
        any_value::Value, AnyValue, ArrayValue, KeyValue,
    };
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    use super::*;

    #[test]
    fn deep_protobuf_nesting_is_refused_with_a_message() {
        let mut value = AnyValue::default();
        for _ in 0..200 {
            let values = vec![value];
            value = AnyValue {
                value: Some(Value::ArrayValue(ArrayValue { values })),
            };
        }
        let span = Span {
            attributes: vec![KeyValue {
                key: "k".into(),
                value: Some(value),
                ..Default::default()
            }],
            ..Default::default()
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![span],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let body = request.encode_to_vec();
        let message = protobuf(&body[..]).expect_err("too deep").to_string();
        assert!(message.contains(TOO_DEEP), "{message}");
    }

    #[test]
    fn deep_json_nesting_is_refused_with_a_message() {
        let mut value = String::from("{}");
        for _ in 0..200 {
            value = format!(r#"{{"arrayValue":{{"values":[{value}]}}}}"#);
        }
        let span = format!(r#"{{"attributes":[{{"key":"k","value":{value}}}]}}"#);
        let body = format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{span}]}}]}}]}}"#);
        let message = json(body.as_bytes()).expect_err("too deep").to_string();
        assert!(message.contains(TOO_DEEP), "{message}");
    }

    #[test]
    fn json_doubles_decode_to_the_nearest_double() {
        // Found by the otlp_protobuf fuzz target: read back from the file exporter's JSON, this
        // value came out one unit in the last place lower.
        let text = "1.3552527156068805e-20";
        let span = format!(r#"{{"attributes":[{{"key":"d","value":{{"doubleValue":{text}}}}}]}}"#);
        let body = format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{span}]}}]}}]}}"#);
        let request = json(body.as_bytes()).expect("valid OTLP/JSON");

        let span = &request.resource_spans[0].scope_spans[0].spans[0];
        let value = span.attributes[0]
            .value
            .as_ref()
            .and_then(|v| v.value.as_ref());
        let expected: f64 = text.parse().expect("a double");
        assert_eq!(value, Some(&Value::DoubleValue(expected)));
    }

    #[test]
    fn invalid_utf8_in_a_protobuf_string_says_so() {
        // ResourceSpans { schema_url (field 3) = b"\xff" }
        let body = [0x0a, 0x03, 0x1a, 0x01, 0xff];
        let message = protobuf(&body[..]).expect_err("invalid UTF-8").to_string();
        assert!(message.contains("not UTF-8"), "{message}");
    }

    #[test]
    fn the_hex_hint_comes_only_with_an_id_that_is_not_hex() {
        let span = |trace_id: &str| {
            format!(
                r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"{trace_id}",
                "spanId":"00f067aa0ba902b7"}}]}}]}}]}}"#
            )
        };
        let base64 = json(span("S/kvNXezTaajzpKdDg5HNg==").as_bytes());
        let message = base64.expect_err("not hex").to_string();
        assert!(
            message.ends_with("(trace and span ids are hex strings)"),
            "{message}"
        );

        let message = json(br#"{"resourceSpans": 7}"#)
            .expect_err("not a list")
            .to_string();
        assert!(!message.contains("hex"), "{message}");
    }
}
