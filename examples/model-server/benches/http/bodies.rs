//! The request bodies the benchmark sends, built from the shipped dataset.

use serde_json::{Map, Value, json};
use trainloop_contract::{FeatureSchema, FeatureType};

use crate::servers::BenchResult;

/// Rows per batched V2 request.
pub const BATCH_ROWS: usize = 64;

pub struct Bodies {
    /// KServe V1, one row keyed by feature name (the common client form).
    pub v1_single: String,
    /// Open Inference Protocol V2, `BATCH_ROWS` rows as one tensor per feature.
    pub v2_batch: String,
}

pub fn build(data: &[u8], schema: &FeatureSchema) -> BenchResult<Bodies> {
    let rows: Vec<Map<String, Value>> = trainloop_example_traffic::send::instances(data, schema)?;
    let first = rows.first().ok_or("the dataset has no rows")?;
    let v1_single = json!({ "instances": [first] }).to_string();
    let batch: Vec<&Map<String, Value>> = rows.iter().cycle().take(BATCH_ROWS).collect();
    let inputs: Vec<Value> = schema
        .features()
        .iter()
        .map(|spec| {
            let data: Vec<&Value> = batch.iter().filter_map(|row| row.get(&spec.name)).collect();
            let datatype = match spec.kind {
                FeatureType::Number => "FP64",
                FeatureType::Category => "BYTES",
            };
            json!({"name": spec.name, "shape": [data.len()], "datatype": datatype, "data": data})
        })
        .collect();
    let v2_batch = json!({ "inputs": inputs }).to_string();
    Ok(Bodies { v1_single, v2_batch })
}
