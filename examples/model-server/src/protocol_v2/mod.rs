//! The Open Inference Protocol (KServe V2) over REST: one input tensor per
//! feature (`FP64` for numbers, `BYTES` for categories), all of shape `[n]`.

mod fast;

use bytes::{BufMut, BytesMut};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use trainloop_contract::{FeatureSchema, FeatureSpec, FeatureType, FeatureValue, SchemaError, Violation};

use crate::error::ApiError;
use crate::json_scan::Scalar;
use crate::predict::Prediction;
use crate::rows::Rows;

#[derive(Debug, Deserialize)]
pub struct InferRequest {
    #[serde(default)]
    pub id: Option<String>,
    pub inputs: Vec<InputTensor>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct InputTensor {
    pub name: String,
    #[serde(default)]
    pub shape: Vec<i64>,
    #[serde(default)]
    pub datatype: String,
    pub data: Vec<Value>,
}

fn datatype(kind: FeatureType) -> &'static str {
    match kind {
        FeatureType::Number => "FP64",
        FeatureType::Category => "BYTES",
    }
}

/// An input tensor as either parser read it.
trait Tensor {
    type Cell;
    fn name(&self) -> &str;
    fn data(&self) -> &[Self::Cell];
    fn check(spec: &FeatureSpec, cell: &Self::Cell) -> Result<FeatureValue, Violation>;
}

impl Tensor for InputTensor {
    type Cell = Value;
    fn name(&self) -> &str {
        &self.name
    }
    fn data(&self) -> &[Value] {
        &self.data
    }
    fn check(spec: &FeatureSpec, cell: &Value) -> Result<FeatureValue, Violation> {
        spec.parse_json(cell)
    }
}

impl<'a> Tensor for fast::Tensor<'a> {
    type Cell = Scalar<'a>;
    fn name(&self) -> &str {
        self.name
    }
    fn data(&self) -> &[Scalar<'a>] {
        &self.data
    }
    fn check(spec: &FeatureSpec, cell: &Scalar<'a>) -> Result<FeatureValue, Violation> {
        cell.check(spec)
    }
}

/// Turns the tensors into rows in schema order. Inputs that are not features
/// are ignored, as with V1's extra keys. Plain, valid requests take the fast
/// path; anything else is read by serde, and the error worded from that.
pub fn parse_request(schema: &FeatureSchema, body: &[u8]) -> Result<(Option<String>, Rows), ApiError> {
    if let Some(request) = fast::parse(body)
        && let Ok(rows) = rows_of(schema, &request.inputs)
    {
        return Ok((request.id.map(str::to_string), rows));
    }
    let request: InferRequest =
        serde_json::from_slice(body).map_err(|e| ApiError::Malformed(format!("invalid inference request: {e}")))?;
    Ok((request.id, rows_of(schema, &request.inputs)?))
}

fn rows_of<T: Tensor>(schema: &FeatureSchema, inputs: &[T]) -> Result<Rows, ApiError> {
    let mut columns: Vec<&[T::Cell]> = Vec::with_capacity(schema.features().len());
    for spec in schema.features() {
        let tensor = inputs.iter().find(|t| t.name() == spec.name).ok_or_else(|| {
            ApiError::from(SchemaError::InvalidFeature { feature: spec.name.clone(), violation: Violation::Missing })
        })?;
        columns.push(tensor.data());
    }
    let rows = columns.first().map_or(0, |c| c.len());
    if let Some((spec, column)) = schema.features().iter().zip(&columns).find(|(_, c)| c.len() != rows) {
        return Err(ApiError::Malformed(format!(
            "input {:?} has {} values but {:?} has {rows}",
            spec.name,
            column.len(),
            schema.features()[0].name
        )));
    }
    // Row by row, feature by feature: the first violation reported is the
    // one `FeatureSchema::validate_values` would report.
    let mut values = Vec::with_capacity(rows * columns.len());
    for i in 0..rows {
        for (spec, column) in schema.features().iter().zip(&columns) {
            let value = T::check(spec, &column[i]).map_err(|violation| {
                ApiError::from(SchemaError::InvalidFeature { feature: spec.name.clone(), violation })
                    .at(&format!("row {i}"))
            })?;
            values.push(value);
        }
    }
    Ok(Rows { width: columns.len(), values })
}

/// The inference response, serialised directly into `buffer`. Keys in
/// alphabetical order: the order they had when the answer was built as a
/// `serde_json::Value`.
pub fn response(
    buffer: &mut BytesMut,
    model_name: &str,
    version: &str,
    id: Option<&str>,
    predictions: &[Prediction],
) -> Result<(), ApiError> {
    #[derive(Serialize)]
    struct Response<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a str>,
        model_name: &'a str,
        model_version: &'a str,
        outputs: (Output<Probabilities<'a>>, Output<Labels<'a>>),
    }
    #[derive(Serialize)]
    struct Output<D> {
        data: D,
        datatype: &'static str,
        name: &'static str,
        shape: [usize; 1],
    }
    struct Probabilities<'a>(&'a [Prediction<'a>]);
    impl Serialize for Probabilities<'_> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_seq(self.0.iter().map(|p| p.probability))
        }
    }
    struct Labels<'a>(&'a [Prediction<'a>]);
    impl Serialize for Labels<'_> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_seq(self.0.iter().map(|p| p.label))
        }
    }
    let shape = [predictions.len()];
    let body = Response {
        id,
        model_name,
        model_version: version,
        outputs: (
            Output { data: Probabilities(predictions), datatype: "FP64", name: "probability", shape },
            Output { data: Labels(predictions), datatype: "BYTES", name: "label", shape },
        ),
    };
    serde_json::to_writer(buffer.writer(), &body).map_err(|e| ApiError::Internal(e.to_string()))
}

/// `GET /v2/models/{name}`: the feature inputs a client must send.
pub fn metadata(model_name: &str, version: &str, schema: &FeatureSchema) -> Value {
    json!({
        "name": model_name,
        "versions": [version],
        "platform": "trainloop-logistic-regression",
        "inputs": schema.features().iter().map(|f| json!({
            "name": f.name, "datatype": datatype(f.kind), "shape": [-1]
        })).collect::<Vec<_>>(),
        "outputs": [
            {"name": "probability", "datatype": "FP64", "shape": [-1]},
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> FeatureSchema {
        FeatureSchema::from_json(
            r#"[{"name":"x","type":"number","max":10},{"name":"k","type":"category","values":["a","b"]}]"#,
        )
        .unwrap()
    }

    #[test]
    fn reads_one_tensor_per_feature() {
        let body = br#"{"id":"r1","inputs":[
            {"name":"k","shape":[2],"datatype":"BYTES","data":["a","b"]},
            {"name":"x","shape":[2],"datatype":"FP64","data":[1.0,2.5]}]}"#;
        let (id, rows) = parse_request(&schema(), body).unwrap();
        assert_eq!(id.as_deref(), Some("r1"));
        assert_eq!(rows.row(1).unwrap(), [FeatureValue::Number(2.5), FeatureValue::Category("b".into())]);
    }

    #[test]
    fn the_answer_is_the_json_it_always_was() {
        let predictions = [
            Prediction { class: 1, label: "yes", probability: 0.75 },
            Prediction { class: 0, label: "no", probability: 0.125 },
        ];
        for id in [None, Some("r\"1")] {
            let mut tree = json!({
                "model_name": "m",
                "model_version": "sha256:00",
                "outputs": [
                    {"name": "probability", "datatype": "FP64", "shape": [2], "data": [0.75, 0.125]},
                    {"name": "label", "datatype": "BYTES", "shape": [2], "data": ["yes", "no"]},
                ]
            });
            if let Some(id) = id {
                tree["id"] = Value::from(id);
            }
            let mut bytes = BytesMut::new();
            response(&mut bytes, "m", "sha256:00", id, &predictions).unwrap();
            assert_eq!(String::from_utf8(bytes.to_vec()).unwrap(), tree.to_string());
        }
    }

    #[test]
    fn a_missing_or_bad_feature_is_named() {
        let body = br#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":[1]}]}"#;
        let err = parse_request(&schema(), body).unwrap_err();
        assert!(matches!(&err, ApiError::Schema { feature, .. } if feature == "k"), "{err}");
        let body = br#"{"inputs":[{"name":"x","data":[1, 20]},{"name":"k","data":["a","a"]}]}"#;
        let err = parse_request(&schema(), body).unwrap_err();
        assert!(err.to_string().contains("row 1") && err.to_string().contains("\"x\""), "{err}");
    }

    /// What serde makes of a body, and the rows from it.
    fn serde_rows(schema: &FeatureSchema, body: &[u8]) -> Result<(Option<String>, Rows), String> {
        let request: InferRequest =
            serde_json::from_slice(body).map_err(|e| format!("invalid inference request: {e}"))?;
        let rows = rows_of(schema, &request.inputs).map_err(|e| e.to_string())?;
        Ok((request.id, rows))
    }

    /// Whatever the fast path reads, serde reads alike; and `parse_request`
    /// always answers what serde alone would (rows or error message).
    fn assert_agrees(schema: &FeatureSchema, body: &[u8]) -> bool {
        let expected = serde_rows(schema, body);
        let fast = fast::parse(body).map(|request| {
            (request.id.map(str::to_string), rows_of(schema, &request.inputs).map_err(|e| e.to_string()))
        });
        if let Some((id, rows)) = &fast {
            let serde_read = serde_json::from_slice::<InferRequest>(body);
            assert!(serde_read.is_ok(), "fast path took what serde refuses: {}", String::from_utf8_lossy(body));
            if let Ok(rows) = rows {
                assert_eq!(expected, Ok((id.clone(), rows.clone())), "{}", String::from_utf8_lossy(body));
            }
        }
        let answered = parse_request(schema, body).map_err(|e| {
            // serde's error is the malformed one; keep the wording `parse_request` gives.
            e.to_string()
        });
        assert_eq!(answered, expected, "{}", String::from_utf8_lossy(body));
        fast.is_some_and(|(_, rows)| rows.is_ok())
    }

    #[test]
    fn the_fast_path_takes_plain_requests_and_agrees_with_serde() {
        let schema = schema();
        let plain = [
            r#"{"id":"r1","inputs":[{"name":"k","shape":[2],"datatype":"BYTES","data":["a","b"]},
                {"name":"x","shape":[2],"datatype":"FP64","data":[1.0,-0]}]}"#,
            r#"{"inputs":[{"data":[1e-3],"name":"x"},{"name":"k","data":["a"]},{"name":"x","data":[5]}]}"#,
            r#"{"inputs":[{"name":"x","data":[]},{"name":"k","data":[]}]}"#,
        ];
        for body in plain {
            assert!(assert_agrees(&schema, body.as_bytes()), "the fast path left {body}");
        }
        let other = [
            r#"{"inputs":[{"name":"x","data":[1]},{"name":"k","data":["a"]}],"parameters":{}}"#,
            r#"{"id":null,"inputs":[{"name":"x","data":[1]},{"name":"k","data":["a"]}]}"#,
            r#"{"inputs":[{"name":"x","data":[1],"data":[2]},{"name":"k","data":["a"]}]}"#,
            r#"{"inputs":[{"name":"x","shape":[1.5],"data":[1]},{"name":"k","data":["a"]}]}"#,
            r#"{"inputs":[{"name":"x","shape":[9223372036854775808],"data":[1]},{"name":"k","data":["a"]}]}"#,
            r#"{"inputs":[{"name":"x","data":[20]},{"name":"k","data":["a"]}]}"#,
            r#"{"inputs":[{"name":"x","data":[1]}]}"#,
            r#"{"inputs":[{"name":"x","data":[1,2]},{"name":"k","data":["a"]}]}"#,
            r#"{"inputs":[{"name":"x","data":[true]},{"name":"k","data":["a"]}]}"#,
            r#"{"inputs":[{"name":"x"}]}"#,
            r#"{}"#,
        ];
        for body in other {
            assert_agrees(&schema, body.as_bytes());
        }
    }

    /// Randomly broken variants of plain requests.
    #[test]
    fn the_fast_path_agrees_on_broken_requests() {
        let schema = schema();
        let bodies = [
            r#"{"id":"r","inputs":[{"name":"x","shape":[2],"datatype":"FP64","data":[1,2.5]},{"name":"k","data":["a","b"]}]}"#,
            r#"{"inputs":[{"name":"k","data":["b"]},{"data":[-0.5],"name":"x"}]}"#,
        ];
        crate::json_scan::tests::assert_agrees_on_mutations(&bodies, |body| assert_agrees(&schema, body));
    }

    #[test]
    fn ragged_tensors_are_malformed() {
        let body = br#"{"inputs":[{"name":"x","data":[1, 2]},{"name":"k","data":["a"]}]}"#;
        assert!(matches!(parse_request(&schema(), body), Err(ApiError::Malformed(_))));
    }

    #[test]
    fn metadata_lists_the_features_with_their_datatypes() {
        let meta = metadata("m", "sha256:00", &schema());
        assert_eq!(meta["inputs"][1]["datatype"], "BYTES");
        assert_eq!(meta["inputs"][0]["name"], "x");
    }
}
