//! Samples rows and sends them, one KServe V1 request per batch.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use trainloop_contract::{FeatureSchema, FeatureType};
use trainloop_example_trainer::split::SplitMix64;
use trainloop_example_trainer::table::Table;

use crate::shift::Shift;

/// A request that takes longer than this counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct TrafficOptions {
    /// Base URL of the server, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    pub model: String,
    /// The dataset as read (CSV bytes).
    pub data: Vec<u8>,
    /// The features to send; other columns (the label) are left out.
    pub schema: FeatureSchema,
    /// Rows to send in all.
    pub count: usize,
    /// Rows per request.
    pub batch: usize,
    /// Rows per second; 0 sends as fast as the server answers.
    pub rate: f64,
    pub shifts: Vec<Shift>,
    pub seed: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrafficReport {
    pub rows_sent: usize,
    pub rows_accepted: usize,
    pub requests_rejected: usize,
    /// The first rejection's status and body, to show the user why.
    pub first_error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    #[error("dataset: {0}")]
    Data(String),
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
}

/// Turns the dataset's rows into V1 instances (numbers as JSON numbers).
pub fn instances(data: &[u8], schema: &FeatureSchema) -> Result<Vec<Map<String, Value>>, TrafficError> {
    let table = Table::parse_csv(data).map_err(|e| TrafficError::Data(e.to_string()))?;
    let positions: Vec<(usize, &str, FeatureType)> = schema
        .features()
        .iter()
        .map(|spec| {
            table
                .header
                .iter()
                .position(|h| *h == spec.name)
                .map(|i| (i, spec.name.as_str(), spec.kind))
                .ok_or_else(|| TrafficError::Data(format!("column {:?} is not in the dataset", spec.name)))
        })
        .collect::<Result<_, _>>()?;
    Ok(table
        .rows
        .iter()
        .map(|row| {
            positions
                .iter()
                .map(|&(i, name, kind)| {
                    let raw = row.get(i).map(|s| s.trim()).unwrap_or("");
                    let value = match kind {
                        // Unparsable numbers go as strings: the server's 400 is the point then.
                        FeatureType::Number => raw.parse::<f64>().map_or_else(|_| Value::from(raw), Value::from),
                        FeatureType::Category => Value::from(raw),
                    };
                    (name.to_string(), value)
                })
                .collect()
        })
        .collect())
}

/// Sends `count` rows sampled (with replacement, seeded) from the dataset.
pub fn send_traffic(options: &TrafficOptions) -> Result<TrafficReport, TrafficError> {
    let rows = instances(&options.data, &options.schema)?;
    if rows.is_empty() {
        return Err(TrafficError::Data("the dataset has no rows".into()));
    }
    trainloop_example_trainer::fetch::install_crypto_provider();
    let client = reqwest::blocking::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| unreachable_error(options, e))?;
    let endpoint = format!("{}/v1/models/{}:predict", options.url.trim_end_matches('/'), options.model);
    let mut rng = SplitMix64(options.seed);
    let mut report = TrafficReport::default();
    let started = Instant::now();
    let batch = options.batch.max(1);
    while report.rows_sent < options.count {
        let size = batch.min(options.count - report.rows_sent);
        let instances: Vec<Value> = (0..size)
            .map(|_| {
                let mut instance = rows[rng.below(rows.len())].clone();
                options.shifts.iter().for_each(|shift| shift.apply(&mut instance));
                Value::Object(instance)
            })
            .collect();
        let response = client
            .post(&endpoint)
            .json(&json!({ "instances": instances }))
            .send()
            .map_err(|e| unreachable_error(options, e))?;
        report.rows_sent += size;
        let status = response.status();
        if status.is_success() {
            report.rows_accepted += size;
        } else {
            report.requests_rejected += 1;
            if report.first_error.is_none() {
                report.first_error = Some(format!("{status}: {}", response.text().unwrap_or_default()));
            }
        }
        pace(options.rate, report.rows_sent, started);
    }
    Ok(report)
}

/// Sleeps until `sent` rows fit the requested rate.
fn pace(rate: f64, sent: usize, started: Instant) {
    if rate > 0.0 {
        let due = Duration::from_secs_f64(sent as f64 / rate);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}

fn unreachable_error(options: &TrafficOptions, error: reqwest::Error) -> TrafficError {
    TrafficError::Unreachable { url: options.url.clone(), reason: error.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_instances_of_the_declared_features_only() {
        let schema =
            FeatureSchema::from_json(r#"[{"name":"x","type":"number"},{"name":"k","type":"category"}]"#).unwrap();
        let rows = instances(b"k,x,label\na,1.5,yes\nb,oops,no\n", &schema).unwrap();
        assert_eq!(Value::Object(rows[0].clone()), json!({"x": 1.5, "k": "a"}));
        assert_eq!(rows[1]["x"], json!("oops"));
        assert!(instances(b"k,label\na,yes\n", &schema).is_err());
    }
}
