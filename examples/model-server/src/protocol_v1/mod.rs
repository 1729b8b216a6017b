//! KServe V1: `POST /v1/models/{name}:predict` with `{"instances": [...]}`.
//! An instance is an object keyed by feature name, or an array in schema order.

mod fast;
mod keys;

use bytes::{BufMut, BytesMut};
pub use keys::FeatureKeys;
use serde_json::Value;
use trainloop_contract::{FeatureSchema, FeatureValue};

use crate::error::ApiError;
use crate::predict::Prediction;
use crate::rows::Rows;

/// The checked rows of a request (`keys` are the schema's). Plain, valid
/// requests take the fast path; anything else is parsed as a JSON tree, which
/// words the error.
pub fn parse_instances(schema: &FeatureSchema, keys: &FeatureKeys, body: &[u8]) -> Result<Rows, ApiError> {
    let width = schema.features().len();
    match fast::parse(schema, keys, body) {
        Some(values) => Ok(Rows { width, values }),
        None => parse_tree(schema, body).map(|rows| Rows::from_rows(width, rows)),
    }
}

fn parse_tree(schema: &FeatureSchema, body: &[u8]) -> Result<Vec<Vec<FeatureValue>>, ApiError> {
    let request: Value = serde_json::from_slice(body).map_err(|e| ApiError::Malformed(format!("invalid JSON: {e}")))?;
    let instances = request
        .get("instances")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::Malformed("expected {\"instances\": [...]}".into()))?;
    instances
        .iter()
        .enumerate()
        .map(|(index, instance)| parse_instance(schema, instance).map_err(|e| e.at(&format!("instance {index}"))))
        .collect()
}

fn parse_instance(schema: &FeatureSchema, instance: &Value) -> Result<Vec<FeatureValue>, ApiError> {
    match instance {
        Value::Object(object) => Ok(schema.validate_object(object)?),
        Value::Array(values) if values.len() == schema.features().len() => {
            Ok(schema.validate_values(&values.iter().collect::<Vec<_>>())?)
        }
        Value::Array(values) => Err(ApiError::Malformed(format!(
            "an array instance needs {} values in feature order, got {}",
            schema.features().len(),
            values.len()
        ))),
        _ => Err(ApiError::Malformed("an instance must be an object or an array".into())),
    }
}

/// The bytes of a V1 answer that depend on the predicted class only,
/// `{"label":"<class>","probability":`, per class: escaped and written once,
/// when the model loads, and copied into each answer whole.
pub struct AnswerPieces([Box<[u8]>; 2]);

impl AnswerPieces {
    pub fn new(classes: &[String; 2]) -> Self {
        AnswerPieces(classes.each_ref().map(|class| {
            let label = Value::from(class.as_str());
            format!(r#"{{"label":{label},"probability":"#).into_bytes().into_boxed_slice()
        }))
    }
}

/// `{"predictions":[{"label":…,"probability":…},…]}`, written prediction by
/// prediction: the bytes serde_json writes for the same answer.
pub struct Answer<'b> {
    buffer: &'b mut BytesMut,
    pieces: &'b AnswerPieces,
    predictions: usize,
}

impl<'b> Answer<'b> {
    pub fn start(buffer: &'b mut BytesMut, pieces: &'b AnswerPieces) -> Self {
        buffer.extend_from_slice(br#"{"predictions":["#);
        Answer { buffer, pieces, predictions: 0 }
    }

    pub fn push(&mut self, prediction: Prediction) {
        if self.predictions > 0 {
            self.buffer.put_u8(b',');
        }
        self.predictions += 1;
        self.buffer.extend_from_slice(&self.pieces.0[prediction.class]);
        write_f64(self.buffer, prediction.probability);
        self.buffer.put_u8(b'}');
    }

    pub fn finish(self) {
        self.buffer.extend_from_slice(b"]}");
    }
}

/// A number as serde_json writes it (shortest round trip; `null` if not
/// finite), without its `io::Write` layers.
fn write_f64(buffer: &mut BytesMut, number: f64) {
    match number.is_finite() {
        true => buffer.extend_from_slice(zmij::Buffer::new().format_finite(number).as_bytes()),
        false => buffer.extend_from_slice(b"null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_instances(schema: &FeatureSchema, body: &[u8]) -> Result<Rows, ApiError> {
        super::parse_instances(schema, &FeatureKeys::new(schema), body)
    }

    fn schema() -> FeatureSchema {
        FeatureSchema::from_json(
            r#"[{"name":"x","type":"number","max":10},{"name":"k","type":"category","values":["a"]}]"#,
        )
        .unwrap()
    }

    #[test]
    fn accepts_objects_and_arrays() {
        let rows = parse_instances(&schema(), br#"{"instances":[{"x":1,"k":"a","id":7},[2,"a"]]}"#).unwrap();
        assert_eq!(rows.row(1).unwrap(), [FeatureValue::Number(2.0), FeatureValue::Category("a".into())]);
        assert_eq!(rows.len(), 2);
    }

    fn tree(schema: &FeatureSchema, body: &[u8]) -> Result<Rows, String> {
        parse_tree(schema, body).map(|rows| Rows::from_rows(2, rows)).map_err(|e| e.to_string())
    }

    /// Whatever the fast path accepts, the tree parser accepts with the same
    /// values; and `parse_instances` always answers what the tree parser does.
    fn assert_agrees(schema: &FeatureSchema, body: &[u8]) -> bool {
        let expected = tree(schema, body);
        let fast = fast::parse(schema, &FeatureKeys::new(schema), body);
        if let Some(values) = &fast {
            assert_eq!(expected.as_ref().map(|rows| &rows.values), Ok(values), "{}", String::from_utf8_lossy(body));
        }
        assert_eq!(parse_instances(schema, body).map_err(|e| e.to_string()), expected);
        fast.is_some()
    }

    #[test]
    fn the_fast_path_takes_plain_requests_and_agrees_with_the_tree_parser() {
        let schema = schema();
        let plain = [
            r#"{"instances":[{"x":1,"k":"a"}]}"#,
            r#" { "instances" : [ { "k" : "a" , "x" : 1.5e0 } , [2,"a"],{"x":10,"k":"a"}] } "#,
            r#"{"instances":[{"x":-9223372036854775808,"k":"a"},{"x":-18446744073709551616,"k":"a"},{"x":-0,"k":"a"}]}"#,
            r#"{"instances":[]}"#,
        ];
        for body in plain {
            assert!(assert_agrees(&schema, body.as_bytes()), "the fast path left {body}");
        }
        let other = [
            r#"{"instances":[{"x":1,"k":"a","x":2}]}"#,
            r#"{"instances":[],"instances":[[1,"a"]]}"#,
            r#"{"instances":[{"x":1,"k":"a"}],"extra":1e999}"#,
            r#"{"id":3,"instances":[{"x":1,"k":"a","id":{"deep":[1,2]}}]}"#,
            r#"{"instances":[{"x":1,"k":"\u0061"}]}"#,
            r#"{"instances":[{"x":1,"k":"a"}]} trailing"#,
            r#"{"instances":[{"x":11,"k":"a"}]}"#,
            r#"{"instances":[{"x":1,"k":"z"}]}"#,
            r#"{"instances":[{"x":null,"k":"a"}]}"#,
            r#"{"instances":[{"x":"1","k":"a"}]}"#,
            r#"{"instances":[[1]]}"#,
            r#"{"instances":[[1,"a",3]]}"#,
            r#"{"instances":[7]}"#,
            r#"{"instances":{"x":1}}"#,
            r#"{"rows":[]}"#,
            r#"[{"x":1,"k":"a"}]"#,
            r#"{"instances":[{"x":1,"k":"a"}"#,
        ];
        for body in other {
            assert_agrees(&schema, body.as_bytes());
        }
    }

    /// Randomly broken variants of plain requests.
    #[test]
    fn the_fast_path_agrees_on_broken_requests() {
        let schema = schema();
        let bodies = [r#"{"instances":[{"x":1.25,"k":"a"},[2,"a"]]}"#, r#"{"instances":[{"k":"a","x":-3e-2}]}"#];
        crate::json_scan::tests::assert_agrees_on_mutations(&bodies, |body| assert_agrees(&schema, body));
    }

    #[test]
    fn the_answer_is_the_json_it_always_was() {
        let classes = ["yes".to_string(), "n\"o\u{e9}\n".to_string()];
        let pieces = AnswerPieces::new(&classes);
        let predictions = [
            Prediction { class: 0, label: &classes[0], probability: 0.25 },
            Prediction { class: 1, label: &classes[1], probability: 1e-300 },
            Prediction { class: 1, label: &classes[1], probability: f64::NAN },
        ];
        for count in 0..=predictions.len() {
            let tree = serde_json::json!({"predictions": predictions[..count].iter()
                .map(|p| serde_json::json!({"label": p.label, "probability": p.probability}))
                .collect::<Vec<_>>()});
            let mut buffer = BytesMut::new();
            let mut answer = Answer::start(&mut buffer, &pieces);
            predictions[..count].iter().for_each(|p| answer.push(*p));
            answer.finish();
            assert_eq!(String::from_utf8(buffer.to_vec()).unwrap(), tree.to_string());
        }
    }

    #[test]
    fn names_the_feature_and_instance_that_break_the_schema() {
        let err = parse_instances(&schema(), br#"{"instances":[{"x":1,"k":"a"},{"x":11,"k":"a"}]}"#).unwrap_err();
        let message = err.to_string();
        assert!(matches!(&err, ApiError::Schema { feature, .. } if feature == "x"));
        assert!(message.contains("feature \"x\""), "{message}");
        assert!(message.contains("instance 1"), "{message}");
    }

    #[test]
    fn malformed_bodies_are_told_apart() {
        assert!(matches!(parse_instances(&schema(), b"{"), Err(ApiError::Malformed(_))));
        assert!(matches!(parse_instances(&schema(), b"{\"rows\":[]}"), Err(ApiError::Malformed(_))));
        assert!(matches!(parse_instances(&schema(), b"{\"instances\":[[1]]}"), Err(ApiError::Malformed(_))));
    }
}
