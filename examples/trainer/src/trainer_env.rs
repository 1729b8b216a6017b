//! The trainer contract's environment variables, read once at start.

use std::env;
use std::path::PathBuf;

use crate::error::TrainError;

/// Kubernetes reads the termination message from here by default.
pub const DEFAULT_TERMINATION_LOG: &str = "/dev/termination-log";

#[derive(Clone, Debug)]
pub struct TrainerEnv {
    /// `TRAINLOOP_DATA_URI`: s3://, gs://, az://, file://, http(s):// or a plain path.
    pub data_uri: String,
    /// `TRAINLOOP_CONFIG`: path of the hyperparameter JSON; none means defaults.
    pub config_path: Option<PathBuf>,
    /// `TRAINLOOP_SEED`: seeds the train/test split.
    pub seed: u64,
    /// `TRAINLOOP_FEATURES`: a path, or the schema JSON itself.
    pub features: String,
    /// `TRAINLOOP_ARTIFACT_URI`: a folder URI (s3://, gs://, az://, file://) or a `.json` object to write.
    pub artifact_uri: String,
    /// `TRAINLOOP_RUN`: the run's name, for logs only (never in the artifact).
    pub run: Option<String>,
    /// `TRAINLOOP_TERMINATION_LOG`: override of the termination message path.
    pub termination_log: PathBuf,
}

impl TrainerEnv {
    pub fn from_env() -> Result<Self, TrainError> {
        Self::from_lookup(|name| env::var(name).ok())
    }

    /// Reads the variables through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, TrainError> {
        let required = |name: &'static str| {
            lookup(name).filter(|v| !v.trim().is_empty()).ok_or(TrainError::Env { name, reason: "is not set".into() })
        };
        let seed = match lookup("TRAINLOOP_SEED").filter(|v| !v.trim().is_empty()) {
            None => 0,
            Some(raw) => raw.trim().parse().map_err(|_| TrainError::Env {
                name: "TRAINLOOP_SEED",
                reason: format!("{raw:?} is not an unsigned integer"),
            })?,
        };
        Ok(TrainerEnv {
            data_uri: required("TRAINLOOP_DATA_URI")?,
            config_path: lookup("TRAINLOOP_CONFIG").filter(|v| !v.trim().is_empty()).map(PathBuf::from),
            seed,
            features: required("TRAINLOOP_FEATURES")?,
            artifact_uri: required("TRAINLOOP_ARTIFACT_URI")?,
            run: lookup("TRAINLOOP_RUN"),
            termination_log: lookup("TRAINLOOP_TERMINATION_LOG")
                .filter(|v| !v.trim().is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_TERMINATION_LOG)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| vars.get(name).cloned()
    }

    #[test]
    fn reads_the_contract_with_defaults() {
        let env = TrainerEnv::from_lookup(lookup(&[
            ("TRAINLOOP_DATA_URI", "file:///d.csv"),
            ("TRAINLOOP_FEATURES", "[]"),
            ("TRAINLOOP_ARTIFACT_URI", "file:///out"),
        ]))
        .unwrap();
        assert_eq!(env.seed, 0);
        assert_eq!(env.config_path, None);
        assert_eq!(env.termination_log, PathBuf::from(DEFAULT_TERMINATION_LOG));
    }

    #[test]
    fn names_the_missing_or_bad_variable() {
        let err = TrainerEnv::from_lookup(lookup(&[("TRAINLOOP_DATA_URI", "x")])).unwrap_err();
        assert!(err.to_string().contains("TRAINLOOP_FEATURES"));
        let err = TrainerEnv::from_lookup(lookup(&[("TRAINLOOP_SEED", "-1")])).unwrap_err();
        assert!(err.to_string().contains("TRAINLOOP_SEED"));
    }
}
