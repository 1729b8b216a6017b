//! Hyperparameters: a JSON object of string values (the pipeline's
//! `hyperparameters` map), parsed into typed settings with defaults.

use std::collections::BTreeMap;

use crate::error::TrainError;

/// Keys this trainer understands; others are reported and ignored.
const KNOWN_KEYS: [&str; 6] = ["testSplit", "l2", "maxIterations", "target", "positiveClass", "profileBins"];

#[derive(Clone, Debug, PartialEq)]
pub struct Hyperparameters {
    /// Share of rows held out for evaluation, in (0, 1).
    pub test_split: f64,
    /// L2 regularisation strength (linfa's `alpha`).
    pub l2: f64,
    pub max_iterations: u64,
    /// Name of the label column.
    pub target: String,
    /// The class predicted as positive; defaults to the last of the two in sort order.
    pub positive_class: Option<String>,
    /// Bins per numeric feature in the reference profile.
    pub profile_bins: usize,
    /// The map as given, recorded in the artifact's provenance.
    pub raw: BTreeMap<String, String>,
}

impl Hyperparameters {
    pub fn from_json(text: &str) -> Result<Self, TrainError> {
        let raw: BTreeMap<String, serde_json::Value> = serde_json::from_str(text)
            .map_err(|e| TrainError::Config { key: "<file>".into(), reason: format!("not a JSON object: {e}") })?;
        // Values are strings by contract; accept plain numbers too, as people write them.
        let raw = raw
            .into_iter()
            .map(|(key, value)| match value {
                serde_json::Value::String(s) => Ok((key, s)),
                serde_json::Value::Number(n) => Ok((key, n.to_string())),
                other => Err(TrainError::Config { key, reason: format!("expected a string, got {other}") }),
            })
            .collect::<Result<_, _>>()?;
        Self::from_map(raw)
    }

    pub fn from_map(raw: BTreeMap<String, String>) -> Result<Self, TrainError> {
        for key in raw.keys().filter(|k| !KNOWN_KEYS.contains(&k.as_str())) {
            eprintln!("warning: hyperparameter {key:?} is not used by this trainer");
        }
        let test_split: f64 = parse(&raw, "testSplit", 0.2)?;
        if !(test_split > 0.0 && test_split < 1.0) {
            return Err(invalid("testSplit", "must be between 0 and 1 (exclusive)"));
        }
        let l2: f64 = parse(&raw, "l2", 0.1)?;
        if !(l2.is_finite() && l2 >= 0.0) {
            return Err(invalid("l2", "must be a finite number >= 0"));
        }
        let max_iterations: u64 = parse(&raw, "maxIterations", 100)?;
        if max_iterations == 0 {
            return Err(invalid("maxIterations", "must be at least 1"));
        }
        let profile_bins: usize = parse(&raw, "profileBins", 10)?;
        if !(2..=1000).contains(&profile_bins) {
            return Err(invalid("profileBins", "must be between 2 and 1000"));
        }
        Ok(Hyperparameters {
            test_split,
            l2,
            max_iterations,
            target: raw.get("target").cloned().unwrap_or_else(|| "label".into()),
            positive_class: raw.get("positiveClass").cloned(),
            profile_bins,
            raw,
        })
    }
}

fn parse<T: std::str::FromStr>(raw: &BTreeMap<String, String>, key: &str, default: T) -> Result<T, TrainError> {
    match raw.get(key) {
        None => Ok(default),
        Some(value) => value.trim().parse().map_err(|_| invalid(key, &format!("cannot parse {value:?}"))),
    }
}

fn invalid(key: &str, reason: &str) -> TrainError {
    TrainError::Config { key: key.into(), reason: reason.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_string_values_and_fills_defaults() {
        let h = Hyperparameters::from_json(r#"{"testSplit":"0.3","l2":"1","target":"diagnosis"}"#).unwrap();
        assert_eq!(h.test_split, 0.3);
        assert_eq!(h.l2, 1.0);
        assert_eq!(h.max_iterations, 100);
        assert_eq!(h.target, "diagnosis");
        assert_eq!(h.raw.len(), 3);
    }

    #[test]
    fn rejects_out_of_range_values_naming_the_key() {
        let err = Hyperparameters::from_json(r#"{"testSplit":"1.5"}"#).unwrap_err();
        assert!(err.to_string().contains("testSplit"));
        let err = Hyperparameters::from_json(r#"{"maxIterations":"many"}"#).unwrap_err();
        assert!(err.to_string().contains("maxIterations"));
        assert!(Hyperparameters::from_json("[1]").is_err());
    }
}
