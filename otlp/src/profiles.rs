//! References into a profile's string table, found in trace attributes.
//!
//! OTLP shares `AnyValue` and `KeyValue` with the profiling signal, whose `stringValueStrindex`
//! and `keyStrindex` point into a dictionary only profiles carry. In traces they cannot be
//! resolved, and the OTLP spec asks receivers of other signals to warn and process the data as
//! if they were absent. They are cleared here, so that a stored span means the same in
//! protobuf and in OTLP/JSON: the JSON decoder ignores `stringValueStrindex`, and a trace the
//! file exporter wrote would otherwise read back different from what was exported over gRPC.

use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};

/// Clears the string table references in `attributes` and in the values nested inside them;
/// returns the first one found, as a path to append to the field's path.
pub fn clear_string_table_refs(attributes: &mut [KeyValue]) -> Option<String> {
    let mut first = None;
    for (i, attribute) in attributes.iter_mut().enumerate() {
        let found = clear_key_value(attribute);
        if let (None, Some(path)) = (&first, found) {
            first = Some(format!(
                "[{i}]{path}: a profiles string table index, cleared"
            ));
        }
    }
    first
}

/// Clears the references in `kv`; returns the path of the first below `kv`.
fn clear_key_value(kv: &mut KeyValue) -> Option<String> {
    let mut first = None;
    if kv.key_strindex != 0 {
        kv.key_strindex = 0;
        first = Some(".keyStrindex".to_owned());
    }
    let found = kv.value.as_mut().and_then(clear_value);
    if let (None, Some(path)) = (&first, found) {
        first = Some(format!(".value{path}"));
    }
    first
}

/// Clears the references in `value`, which validation has bounded in depth.
fn clear_value(value: &mut AnyValue) -> Option<String> {
    let mut first = None;
    match value.value.as_mut()? {
        Value::StringValueStrindex(_) => {
            value.value = None;
            first = Some(".stringValueStrindex".to_owned());
        }
        Value::ArrayValue(array) => {
            for (i, item) in array.values.iter_mut().enumerate() {
                let found = clear_value(item);
                if let (None, Some(path)) = (&first, found) {
                    first = Some(format!(".arrayValue.values[{i}]{path}"));
                }
            }
        }
        Value::KvlistValue(list) => {
            for (i, kv) in list.values.iter_mut().enumerate() {
                let found = clear_key_value(kv);
                if let (None, Some(path)) = (&first, found) {
                    first = Some(format!(".kvlistValue.values[{i}]{path}"));
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

    fn value(value: Value) -> Option<AnyValue> {
        Some(AnyValue { value: Some(value) })
    }

    #[test]
    fn clears_indexes_at_any_depth_naming_the_first() {
        let inner = KeyValue {
            key: "k".into(),
            value: value(Value::StringValueStrindex(3)),
            key_strindex: 0,
        };
        let list = Value::KvlistValue(KeyValueList {
            values: vec![inner],
        });
        let array = Value::ArrayValue(ArrayValue {
            values: vec![AnyValue::default(), AnyValue { value: Some(list) }],
        });
        let mut attributes = vec![
            KeyValue {
                key: "plain".into(),
                value: value(Value::IntValue(1)),
                key_strindex: 0,
            },
            KeyValue {
                key: "nested".into(),
                value: value(array),
                key_strindex: 7,
            },
        ];
        let before = attributes[0].clone();

        let found = clear_string_table_refs(&mut attributes).expect("two references");
        assert_eq!(
            found,
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
    fn names_a_nested_value_by_its_path() {
        let list = Value::KvlistValue(KeyValueList {
            values: vec![KeyValue {
                key: "k".into(),
                value: value(Value::StringValueStrindex(1)),
                key_strindex: 0,
            }],
        });
        let mut attributes = vec![KeyValue {
            key: "a".into(),
            value: value(list),
            key_strindex: 0,
        }];
        let found = clear_string_table_refs(&mut attributes).expect("a reference");
        assert_eq!(
            found,
            "[0].value.kvlistValue.values[0].value.stringValueStrindex: \
             a profiles string table index, cleared"
        );
    }
}
