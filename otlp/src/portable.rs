//! Attribute values that would not mean the same in every OTLP encoding, made portable.
//!
//! A stored span is exported over OTLP/gRPC and written by the file exporter as OTLP/JSON; both
//! must carry the same data. Two kinds of value do not survive OTLP/JSON as this gateway reads
//! and writes it, and are repaired at the receivers:
//!
//! - References into a profile's string table (`stringValueStrindex`, `keyStrindex`). OTLP
//!   shares `AnyValue` and `KeyValue` with the profiling signal, whose dictionary traces do not
//!   have; the OTLP spec asks receivers of other signals to warn and treat them as absent, so
//!   they are cleared (the JSON decoder ignores `stringValueStrindex` anyway).
//! - Doubles that are NaN or infinite. The JSON encoder of `opentelemetry-proto` writes them as
//!   `null`, which reads back as no value (and which the Collector refuses), and its decoder
//!   refuses the spec's `"NaN"` strings. They are kept as the strings `NaN`, `Infinity` and
//!   `-Infinity`: policies cannot compare them as numbers anyway, and backends that index
//!   attributes as JSON refuse them too. Once the crate encodes them as the spec says, they
//!   can be kept as doubles.

use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};

/// Repairs `attributes` and the values nested inside them; returns the first repair, as a
/// path to append to the field's path and what was done.
pub fn make_portable(attributes: &mut [KeyValue]) -> Option<String> {
    let mut first = None;
    for (i, attribute) in attributes.iter_mut().enumerate() {
        if let (None, Some(repair)) = (&first, key_value(attribute)) {
            first = Some(format!("[{i}]{repair}"));
        }
    }
    first
}

fn key_value(kv: &mut KeyValue) -> Option<String> {
    let mut first = None;
    if kv.key_strindex != 0 {
        kv.key_strindex = 0;
        first = Some(format!(".keyStrindex: {STRING_INDEX}"));
    }
    let repair = kv.value.as_mut().and_then(value);
    if let (None, Some(repair)) = (&first, repair) {
        first = Some(format!(".value{repair}"));
    }
    first
}

const STRING_INDEX: &str = "a profiles string table index, cleared";

/// Repairs `value`, which validation has bounded in depth.
fn value(value: &mut AnyValue) -> Option<String> {
    let mut first = None;
    match value.value.as_mut()? {
        Value::StringValueStrindex(_) => {
            value.value = None;
            first = Some(format!(".stringValueStrindex: {STRING_INDEX}"));
        }
        Value::DoubleValue(number) if !number.is_finite() => {
            let text = match *number {
                n if n.is_nan() => "NaN",
                n if n > 0.0 => "Infinity",
                _ => "-Infinity",
            };
            value.value = Some(Value::StringValue(text.to_owned()));
            first = Some(format!(
                ".doubleValue: not a finite number, kept as the string {text:?}"
            ));
        }
        Value::ArrayValue(array) => {
            for (i, item) in array.values.iter_mut().enumerate() {
                let repair = self::value(item);
                if let (None, Some(repair)) = (&first, repair) {
                    first = Some(format!(".arrayValue.values[{i}]{repair}"));
                }
            }
        }
        Value::KvlistValue(list) => {
            for (i, kv) in list.values.iter_mut().enumerate() {
                if let (None, Some(repair)) = (&first, key_value(kv)) {
                    first = Some(format!(".kvlistValue.values[{i}]{repair}"));
                }
            }
        }
        _ => {}
    }
    first
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

    use super::*;

    fn some(value: Value) -> Option<AnyValue> {
        Some(AnyValue { value: Some(value) })
    }

    fn attribute(key: &str, value: Value, key_strindex: i32) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: some(value),
            key_strindex,
        }
    }

    #[test]
    fn clears_string_indexes_at_any_depth_naming_the_first() {
        let list = Value::KvlistValue(KeyValueList {
            values: vec![attribute("k", Value::StringValueStrindex(3), 0)],
        });
        let array = Value::ArrayValue(ArrayValue {
            values: vec![AnyValue::default(), AnyValue { value: Some(list) }],
        });
        let mut attributes = vec![
            attribute("plain", Value::IntValue(1), 0),
            attribute("nested", array, 7),
        ];
        let before = attributes[0].clone();

        let repair = make_portable(&mut attributes).expect("two references");
        assert_eq!(
            repair,
            "[1].keyStrindex: a profiles string table index, cleared"
        );
        assert_eq!(attributes[0], before);
        assert_eq!(attributes[1].key_strindex, 0);
        let Some(Value::ArrayValue(array)) = &attributes[1].value.as_ref().unwrap().value else {
            panic!("the array stays");
        };
        let Some(Value::KvlistValue(list)) = &array.values[1].value else {
            panic!("the list stays");
        };
        assert_eq!(list.values[0].value, Some(AnyValue::default()));
    }

    #[test]
    fn names_a_nested_repair_by_its_path() {
        let list = Value::KvlistValue(KeyValueList {
            values: vec![attribute("k", Value::StringValueStrindex(1), 0)],
        });
        let mut attributes = vec![attribute("a", list, 0)];
        let repair = make_portable(&mut attributes).expect("a reference");
        assert_eq!(
            repair,
            "[0].value.kvlistValue.values[0].value.stringValueStrindex: \
             a profiles string table index, cleared"
        );
    }

    #[test]
    fn keeps_non_finite_doubles_as_strings_and_finite_ones_as_they_are() {
        let mut attributes = vec![
            attribute("finite", Value::DoubleValue(-0.5), 0),
            attribute("nan", Value::DoubleValue(f64::NAN), 0),
            attribute("up", Value::DoubleValue(f64::INFINITY), 0),
            attribute("down", Value::DoubleValue(f64::NEG_INFINITY), 0),
        ];
        let repair = make_portable(&mut attributes).expect("three repairs");
        assert_eq!(
            repair,
            "[1].value.doubleValue: not a finite number, kept as the string \"NaN\""
        );

        let values: Vec<_> = attributes.iter().map(|a| a.value.clone()).collect();
        let text = |s: &str| some(Value::StringValue(s.into()));
        let expected = [
            some(Value::DoubleValue(-0.5)),
            text("NaN"),
            text("Infinity"),
            text("-Infinity"),
        ];
        assert_eq!(values, expected);
    }
}
