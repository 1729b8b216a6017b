//! KServe V1: `POST /v1/models/{name}:predict` with `{"instances": [...]}`.
//! An instance is an object keyed by feature name, or an array in schema order.

use serde_json::{Value, json};
use trainloop::artifact::{FeatureSchema, FeatureValue};

use crate::error::ApiError;
use crate::predict::Prediction;

pub fn parse_instances(schema: &FeatureSchema, body: &[u8]) -> Result<Vec<Vec<FeatureValue>>, ApiError> {
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

pub fn response(predictions: &[Prediction]) -> Value {
    json!({
        "predictions": predictions
            .iter()
            .map(|p| json!({"label": p.label, "probability": p.probability}))
            .collect::<Vec<_>>()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> FeatureSchema {
        FeatureSchema::from_json(
            r#"[{"name":"x","type":"number","max":10},{"name":"k","type":"category","values":["a"]}]"#,
        )
        .unwrap()
    }

    #[test]
    fn accepts_objects_and_arrays() {
        let rows = parse_instances(&schema(), br#"{"instances":[{"x":1,"k":"a","id":7},[2,"a"]]}"#).unwrap();
        assert_eq!(rows[1], vec![FeatureValue::Number(2.0), FeatureValue::Category("a".into())]);
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
