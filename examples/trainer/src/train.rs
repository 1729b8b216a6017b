//! One training run, from raw inputs to artifact bytes and trainer result.

use trainloop_contract::{
    ARTIFACT_FORMAT_VERSION, ArtifactRef, FeatureProfile, FeatureSchema, FeatureValue, LOGISTIC_REGRESSION,
    ModelArtifact, Preprocessing, Provenance, Target, TrainerResult, sha256_digest,
};

use trainloop_storage::StorageConfig;

use crate::config::Hyperparameters;
use crate::error::TrainError;
use crate::fetch::read_uri;
use crate::fit::fit_logistic;
use crate::metrics::evaluate;
use crate::output::ArtifactPaths;
use crate::split::train_test_indices;
use crate::table::Table;
use crate::trainer_env::TrainerEnv;

/// Everything a run depends on; the same inputs give the same artifact bytes.
#[derive(Clone, Debug)]
pub struct TrainInputs {
    pub data: Vec<u8>,
    pub schema: FeatureSchema,
    pub config: Hyperparameters,
    pub seed: u64,
}

#[derive(Clone, Debug)]
pub struct TrainedModel {
    pub artifact: ModelArtifact,
    /// The artifact's canonical bytes, as written to disk and digested.
    pub bytes: Vec<u8>,
    /// The reference profile alone, for the operator's drift monitors.
    pub profile_bytes: Vec<u8>,
}

/// Reads the contract's inputs, trains, writes the artifact and returns the result.
pub fn run(env: &TrainerEnv) -> Result<TrainerResult, TrainError> {
    let config = match &env.config_path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| TrainError::Fetch { uri: path.display().to_string(), reason: e.to_string() })?;
            Hyperparameters::from_json(&text)?
        }
        None => Hyperparameters::from_map(Default::default())?,
    };
    let schema = load_schema(&env.features)?;
    let data = read_uri(&env.data_uri)?;
    let trained = train(&TrainInputs { data, schema, config, seed: env.seed })?;
    let paths = ArtifactPaths::from_uri(&env.artifact_uri)?;
    paths.write(&trained.bytes, &trained.profile_bytes, &StorageConfig::from_env())?;
    // The termination message publishes the artifact: the operator learns of it only now that
    // both objects are complete.
    Ok(TrainerResult {
        metrics: trained.artifact.metrics.clone(),
        artifact: ArtifactRef { uri: paths.model, digest: sha256_digest(&trained.bytes) },
        data_digest: trained.artifact.provenance.data_digest.clone(),
        profile: paths.profile,
    })
}

/// `TRAINLOOP_FEATURES` is the schema JSON itself when it starts with `[`,
/// otherwise a path to it.
pub fn load_schema(features: &str) -> Result<FeatureSchema, TrainError> {
    let text = if features.trim_start().starts_with('[') {
        features.to_string()
    } else {
        std::fs::read_to_string(features).map_err(|e| TrainError::Schema(format!("cannot read {features}: {e}")))?
    };
    FeatureSchema::from_json(&text).map_err(TrainError::Schema)
}

/// Trains on the inputs; pure apart from the CPU time.
pub fn train(inputs: &TrainInputs) -> Result<TrainedModel, TrainError> {
    let config = &inputs.config;
    let dataset = Table::parse_csv(&inputs.data)?.into_dataset(&inputs.schema, &config.target)?;
    let target = target_classes(&dataset.labels, config)?;
    let is_positive: Vec<bool> = dataset.labels.iter().map(|l| *l == target.classes[1]).collect();

    let (train_idx, test_idx) = train_test_indices(dataset.rows.len(), config.test_split, inputs.seed);
    let pick_rows =
        |idx: &[usize]| -> Vec<Vec<FeatureValue>> { idx.iter().map(|&i| dataset.rows[i].clone()).collect() };
    let pick_labels = |idx: &[usize]| -> Vec<bool> { idx.iter().map(|&i| is_positive[i]).collect() };
    let (train_rows, test_rows) = (pick_rows(&train_idx), pick_rows(&test_idx));
    let (train_labels, test_labels) = (pick_labels(&train_idx), pick_labels(&test_idx));

    // Preprocessing and profile see the training split only: the test split
    // must stay unseen for the metrics to mean anything.
    let preprocessing = Preprocessing::fit(&inputs.schema, &train_rows);
    let train_inputs: Vec<Vec<f64>> = train_rows.iter().map(|r| preprocessing.transform(r)).collect();
    let model = fit_logistic(&train_inputs, &train_labels, config.l2, config.max_iterations)?;
    let profile = FeatureProfile::reference(&inputs.schema, &train_rows, config.profile_bins);

    let mut artifact = ModelArtifact {
        format_version: ARTIFACT_FORMAT_VERSION,
        model_type: LOGISTIC_REGRESSION.into(),
        features: inputs.schema.clone(),
        target,
        preprocessing,
        model,
        profile,
        metrics: Default::default(),
        provenance: Provenance {
            data_digest: sha256_digest(&inputs.data),
            config: config.raw.clone(),
            seed: inputs.seed,
            training_rows: train_rows.len(),
            test_rows: test_rows.len(),
        },
    };
    let probabilities: Vec<f64> = test_rows.iter().map(|r| artifact.predict_proba(r)).collect();
    artifact.metrics = evaluate(&probabilities, &test_labels);
    if artifact.metrics.values().any(|v| !v.is_finite()) {
        return Err(TrainError::Fit(format!("non-finite metrics {:?}", artifact.metrics)));
    }

    let bytes = artifact.to_bytes().map_err(|e| TrainError::Fit(e.to_string()))?;
    let mut profile_bytes = serde_json::to_vec_pretty(&artifact.profile).map_err(|e| TrainError::Fit(e.to_string()))?;
    profile_bytes.push(b'\n');
    Ok(TrainedModel { artifact, bytes, profile_bytes })
}

/// The two classes, negative first; the positive one is configured or the
/// last in sort order.
fn target_classes(labels: &[String], config: &Hyperparameters) -> Result<Target, TrainError> {
    let mut classes: Vec<&str> = labels.iter().map(String::as_str).collect();
    classes.sort_unstable();
    classes.dedup();
    let error = |reason: String| TrainError::Target { column: config.target.clone(), reason };
    let [first, second] = classes[..] else {
        return Err(error(format!("expected exactly 2 classes, found {classes:?}")));
    };
    let positive = config.positive_class.as_deref().unwrap_or(second);
    let negative = match positive {
        p if p == first => second,
        p if p == second => first,
        p => return Err(error(format!("positiveClass {p:?} is not one of {classes:?}"))),
    };
    Ok(Target { name: config.target.clone(), classes: [negative.to_string(), positive.to_string()] })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn inputs(rows: &str, seed: u64) -> TrainInputs {
        TrainInputs {
            data: rows.as_bytes().to_vec(),
            schema: FeatureSchema::from_json(
                r#"[{"name":"x","type":"number"},{"name":"k","type":"category","values":["a","b"]}]"#,
            )
            .unwrap(),
            config: Hyperparameters::from_map(BTreeMap::from([
                ("target".to_string(), "y".to_string()),
                ("testSplit".to_string(), "0.25".to_string()),
            ]))
            .unwrap(),
            seed,
        }
    }

    fn csv() -> String {
        let mut csv = String::from("x,k,y\n");
        for i in 0..40 {
            let k = if i % 3 == 0 { "a" } else { "b" };
            let y = if i >= 20 { "yes" } else { "no" };
            csv.push_str(&format!("{}.5,{k},{y}\n", i));
        }
        csv
    }

    #[test]
    fn trains_a_usable_model_with_the_category_encoded() {
        let trained = train(&inputs(&csv(), 3)).unwrap();
        let artifact = &trained.artifact;
        assert_eq!(artifact.target.classes, ["no".to_string(), "yes".to_string()]);
        assert_eq!(artifact.model.weights.len(), 3);
        assert!(artifact.metrics["accuracy"] >= 0.8, "{:?}", artifact.metrics);
        assert_eq!(artifact.provenance.test_rows, 10);
        assert_eq!(ModelArtifact::from_bytes(&trained.bytes).unwrap(), *artifact);
    }

    #[test]
    fn same_inputs_same_bytes() {
        let a = train(&inputs(&csv(), 3)).unwrap();
        let b = train(&inputs(&csv(), 3)).unwrap();
        assert_eq!(a.bytes, b.bytes);
        assert_eq!(a.profile_bytes, b.profile_bytes);
    }

    #[test]
    fn a_configured_positive_class_must_exist() {
        let mut with_bad_class = inputs(&csv(), 3);
        with_bad_class.config.positive_class = Some("maybe".into());
        let err = train(&with_bad_class).unwrap_err();
        assert!(err.to_string().contains("\"maybe\""), "{err}");
        let err = train(&inputs("x,k,y\n1,a,no\n2,b,no\n", 1)).unwrap_err();
        assert!(err.to_string().contains("exactly 2 classes"), "{err}");
    }
}
