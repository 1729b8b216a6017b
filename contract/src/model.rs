//! The versioned model artifact: one JSON file holding the feature schema,
//! the fitted preprocessing, a linear binary classifier, the reference feature
//! profile and the provenance of the run. Serialised with a fixed field order
//! and shortest round-trip floats, so equal inputs give equal bytes.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::preprocess::{FeatureTransform, Preprocessing};
use super::profile::FeatureProfile;
use super::schema::{FeatureSchema, FeatureValue};

/// Bumped on any change a reader of the previous version would misread.
pub const ARTIFACT_FORMAT_VERSION: u32 = 1;

/// The only model kind so far.
pub const LOGISTIC_REGRESSION: &str = "logistic-regression";

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("artifact is not valid JSON for format {ARTIFACT_FORMAT_VERSION}: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("artifact format version {0} is not supported (this build reads {ARTIFACT_FORMAT_VERSION})")]
    UnsupportedVersion(u32),
    #[error("unsupported model type {0:?}")]
    UnsupportedModel(String),
    #[error("artifact is inconsistent: {0}")]
    Inconsistent(String),
}

/// The target column and its two classes; `classes[1]` is the positive class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Target {
    pub name: String,
    pub classes: [String; 2],
}

/// `P(positive) = sigmoid(intercept + weights · inputs)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LinearModel {
    pub intercept: f64,
    pub weights: Vec<f64>,
}

/// What the artifact was trained from; no run name or time, so that a re-run
/// of the same inputs yields the same bytes (factor 4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    pub data_digest: String,
    pub config: BTreeMap<String, String>,
    pub seed: u64,
    pub training_rows: usize,
    pub test_rows: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelArtifact {
    pub format_version: u32,
    pub model_type: String,
    pub features: FeatureSchema,
    pub target: Target,
    pub preprocessing: Preprocessing,
    pub model: LinearModel,
    /// Reference profile of the training split; servers bin traffic on its bins.
    pub profile: FeatureProfile,
    /// Held-out metrics, kept with the model they describe.
    pub metrics: BTreeMap<String, f64>,
    pub provenance: Provenance,
}

impl ModelArtifact {
    /// The canonical bytes: pretty JSON with a trailing newline.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ArtifactError> {
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Reads and checks an artifact: version, model type, and that the
    /// schema, preprocessing, weights and profile line up.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ArtifactError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct VersionOnly {
            format_version: u32,
        }
        let version: VersionOnly = serde_json::from_slice(bytes)?;
        if version.format_version != ARTIFACT_FORMAT_VERSION {
            return Err(ArtifactError::UnsupportedVersion(version.format_version));
        }
        let artifact: ModelArtifact = serde_json::from_slice(bytes)?;
        artifact.check()?;
        Ok(artifact)
    }

    fn check(&self) -> Result<(), ArtifactError> {
        if self.model_type != LOGISTIC_REGRESSION {
            return Err(ArtifactError::UnsupportedModel(self.model_type.clone()));
        }
        self.features.check().map_err(|e| ArtifactError::Inconsistent(e.to_string()))?;
        let names: Vec<&str> = self.features.names().collect();
        let steps: Vec<&str> = self.preprocessing.steps.iter().map(|s| s.feature.as_str()).collect();
        let profiled: Vec<&str> = self.profile.features.iter().map(|f| f.name.as_str()).collect();
        if names != steps || names != profiled {
            return Err(ArtifactError::Inconsistent(
                "features, preprocessing and profile list different features".into(),
            ));
        }
        if self.preprocessing.width() != self.model.weights.len() {
            return Err(ArtifactError::Inconsistent(format!(
                "preprocessing gives {} inputs but the model has {} weights",
                self.preprocessing.width(),
                self.model.weights.len()
            )));
        }
        if self.profile.features.iter().any(|f| f.counts.len() != f.bins.len()) {
            return Err(ArtifactError::Inconsistent("a profile feature has counts that do not match its bins".into()));
        }
        Ok(())
    }

    /// Probability of the positive class for one checked row (schema order).
    pub fn predict_proba(&self, row: &[FeatureValue]) -> f64 {
        self.predict_proba_with(row, &mut Vec::with_capacity(self.model.weights.len()))
    }

    /// [`ModelArtifact::predict_proba`] with `inputs` as the scratch space of the model's inputs,
    /// so that a caller predicting many rows allocates it once.
    pub fn predict_proba_with(&self, row: &[FeatureValue], inputs: &mut Vec<f64>) -> f64 {
        let weighted = self.standardized_sum(row).unwrap_or_else(|| {
            inputs.clear();
            self.preprocessing.transform_into(row, inputs);
            self.model.weights.iter().zip(inputs.iter()).map(|(w, x)| w * x).sum::<f64>()
        });
        sigmoid(self.model.intercept + weighted)
    }

    /// The weighted inputs' sum when every feature is one standardized
    /// number (`None` at the first that is not): the same terms, computed
    /// and summed in the same order as from the inputs, without writing the
    /// inputs out (a single-row prediction is served in a few hundred ns).
    fn standardized_sum(&self, row: &[FeatureValue]) -> Option<f64> {
        let steps = self.preprocessing.steps.iter().zip(row).zip(&self.model.weights);
        steps
            .map(|((step, value), weight)| match (&step.transform, value) {
                (FeatureTransform::Standardize { mean, scale }, FeatureValue::Number(x)) => {
                    Some(weight * ((x - mean) / scale))
                }
                _ => None,
            })
            .sum()
    }

    /// The predicted class's index in `target.classes`, at threshold 0.5.
    pub fn class_index_of(&self, probability: f64) -> usize {
        usize::from(probability >= 0.5)
    }
}

pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::FeatureValue;

    fn artifact() -> ModelArtifact {
        let features = FeatureSchema::from_json(
            r#"[{"name":"x","type":"number"},{"name":"k","type":"category","values":["a","b"]}]"#,
        )
        .unwrap();
        let rows = vec![
            vec![FeatureValue::Number(0.0), FeatureValue::Category("a".into())],
            vec![FeatureValue::Number(2.0), FeatureValue::Category("b".into())],
        ];
        ModelArtifact {
            format_version: ARTIFACT_FORMAT_VERSION,
            model_type: LOGISTIC_REGRESSION.into(),
            preprocessing: Preprocessing::fit(&features, &rows),
            profile: FeatureProfile::reference(&features, &rows, 4),
            features,
            target: Target { name: "y".into(), classes: ["no".into(), "yes".into()] },
            model: LinearModel { intercept: 0.0, weights: vec![2.0, 0.0, 0.0] },
            metrics: BTreeMap::from([("auc".into(), 1.0)]),
            provenance: Provenance {
                data_digest: "sha256:00".into(),
                config: BTreeMap::new(),
                seed: 1,
                training_rows: 2,
                test_rows: 0,
            },
        }
    }

    #[test]
    fn round_trips_through_its_canonical_bytes() {
        let artifact = artifact();
        let bytes = artifact.to_bytes().unwrap();
        assert_eq!(ModelArtifact::from_bytes(&bytes).unwrap(), artifact);
        assert_eq!(ModelArtifact::from_bytes(&bytes).unwrap().to_bytes().unwrap(), bytes);
    }

    #[test]
    fn predicts_through_its_own_preprocessing() {
        let artifact = artifact();
        // x = 2 standardises to 1 (mean 1, std 1): sigmoid(2)
        let p = artifact.predict_proba(&[FeatureValue::Number(2.0), FeatureValue::Category("b".into())]);
        assert!((p - sigmoid(2.0)).abs() < 1e-12);
        let class_of = |p| artifact.target.classes[artifact.class_index_of(p)].as_str();
        assert_eq!(class_of(p), "yes");
        assert_eq!(class_of(0.2), "no");
    }

    /// Numbers only (the sum without the inputs written out) or with a
    /// category: the same bits as from the inputs the preprocessing writes.
    #[test]
    fn predicts_the_same_bits_as_from_the_written_inputs() {
        let mut state = 7u64;
        let mut random = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 * 200.0 - 100.0
        };
        let numbers =
            FeatureSchema::from_json(r#"[{"name":"a","type":"number"},{"name":"b","type":"number"}]"#).unwrap();
        let fitted_on: Vec<Vec<FeatureValue>> =
            (0..50).map(|_| vec![FeatureValue::Number(random()), FeatureValue::Number(random())]).collect();
        let mut only_numbers = artifact();
        only_numbers.preprocessing = Preprocessing::fit(&numbers, &fitted_on);
        only_numbers.features = numbers;
        only_numbers.model.weights = vec![0.0; 2];
        for (mut artifact, with_category) in [(only_numbers, false), (artifact(), true)] {
            for _ in 0..1000 {
                artifact.model.intercept = random();
                artifact.model.weights.iter_mut().for_each(|w| *w = random() / 10.0);
                let second = match with_category {
                    true => FeatureValue::Category("b".into()),
                    false => FeatureValue::Number(random()),
                };
                let row = [FeatureValue::Number(random()), second];
                let inputs = artifact.preprocessing.transform(&row);
                let z = artifact.model.intercept
                    + artifact.model.weights.iter().zip(&inputs).map(|(w, x)| w * x).sum::<f64>();
                assert_eq!(artifact.predict_proba(&row).to_bits(), sigmoid(z).to_bits(), "{row:?}");
            }
        }
    }

    #[test]
    fn rejects_other_versions_and_inconsistent_artifacts() {
        let mut value = serde_json::to_value(artifact()).unwrap();
        value["formatVersion"] = 2.into();
        let err = ModelArtifact::from_bytes(value.to_string().as_bytes()).unwrap_err();
        assert!(matches!(err, ArtifactError::UnsupportedVersion(2)));

        let mut broken = artifact();
        broken.model.weights.pop();
        let err = ModelArtifact::from_bytes(&broken.to_bytes().unwrap()).unwrap_err();
        assert!(err.to_string().contains("3 inputs but the model has 2 weights"), "{err}");
    }
}
