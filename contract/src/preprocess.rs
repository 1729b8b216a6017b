//! Preprocessing fitted on the training split and stored in the artifact, so
//! the server turns a request into exactly the model inputs training used.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema::{FeatureSchema, FeatureType, FeatureValue};

/// How one feature becomes model inputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum FeatureTransform {
    /// One input: `(x - mean) / scale`.
    Standardize { mean: f64, scale: f64 },
    /// One input per category, 1 for the value's category; a value not listed
    /// gives all zeros.
    OneHot { categories: Vec<String> },
}

/// The transform of one named feature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TransformStep {
    pub feature: String,
    #[serde(flatten)]
    pub transform: FeatureTransform,
}

/// The transforms of all features, in schema order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Preprocessing {
    pub steps: Vec<TransformStep>,
}

impl FeatureTransform {
    fn width(&self) -> usize {
        match self {
            FeatureTransform::Standardize { .. } => 1,
            FeatureTransform::OneHot { categories } => categories.len(),
        }
    }

    fn apply(&self, value: &FeatureValue, out: &mut Vec<f64>) {
        match (self, value) {
            (FeatureTransform::Standardize { mean, scale }, FeatureValue::Number(x)) => out.push((x - mean) / scale),
            (FeatureTransform::OneHot { categories }, FeatureValue::Category(c)) => {
                out.extend(categories.iter().map(|k| if k == c { 1.0 } else { 0.0 }))
            }
            // A value of the wrong type never passes the schema check; keep the
            // width right anyway so inputs stay aligned with the weights.
            (transform, _) => out.extend(std::iter::repeat_n(0.0, transform.width())),
        }
    }
}

impl Preprocessing {
    /// Fits the transforms on training rows (schema order): mean and
    /// population standard deviation of numbers (scale 1 for a constant
    /// column), and the categories of the schema or, if none are declared,
    /// the sorted distinct values seen.
    pub fn fit(schema: &FeatureSchema, rows: &[Vec<FeatureValue>]) -> Self {
        let steps = schema
            .features()
            .iter()
            .enumerate()
            .map(|(index, spec)| {
                let transform = match spec.kind {
                    FeatureType::Number => {
                        let values: Vec<f64> = rows
                            .iter()
                            .filter_map(|row| match row.get(index) {
                                Some(FeatureValue::Number(x)) => Some(*x),
                                _ => None,
                            })
                            .collect();
                        let (mean, std) = mean_and_std(&values);
                        FeatureTransform::Standardize { mean, scale: if std > 0.0 { std } else { 1.0 } }
                    }
                    FeatureType::Category => {
                        let categories = if spec.allowed_values.is_empty() {
                            let mut seen: Vec<String> = rows
                                .iter()
                                .filter_map(|row| match row.get(index) {
                                    Some(FeatureValue::Category(c)) => Some(c.clone()),
                                    _ => None,
                                })
                                .collect();
                            seen.sort();
                            seen.dedup();
                            seen
                        } else {
                            spec.allowed_values.clone()
                        };
                        FeatureTransform::OneHot { categories }
                    }
                };
                TransformStep { feature: spec.name.clone(), transform }
            })
            .collect();
        Preprocessing { steps }
    }

    /// Number of model inputs a row becomes.
    pub fn width(&self) -> usize {
        self.steps.iter().map(|s| s.transform.width()).sum()
    }

    /// Turns one row (schema order) into model inputs, appended to `out`.
    pub fn transform_into(&self, row: &[FeatureValue], out: &mut Vec<f64>) {
        for (step, value) in self.steps.iter().zip(row) {
            step.transform.apply(value, out);
        }
    }

    pub fn transform(&self, row: &[FeatureValue]) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.width());
        self.transform_into(row, &mut out);
        out
    }
}

fn mean_and_std(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 1.0);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, variance.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> FeatureSchema {
        FeatureSchema::from_json(
            r#"[{"name":"x","type":"number"},{"name":"k","type":"category"},{"name":"flat","type":"number"}]"#,
        )
        .unwrap()
    }

    fn row(x: f64, k: &str) -> Vec<FeatureValue> {
        vec![FeatureValue::Number(x), FeatureValue::Category(k.into()), FeatureValue::Number(7.0)]
    }

    #[test]
    fn fits_on_the_given_rows_only() {
        let prep = Preprocessing::fit(&schema(), &[row(1.0, "b"), row(3.0, "a")]);
        assert_eq!(prep.steps[0].transform, FeatureTransform::Standardize { mean: 2.0, scale: 1.0 });
        assert_eq!(prep.steps[1].transform, FeatureTransform::OneHot { categories: vec!["a".into(), "b".into()] });
        // A constant column keeps scale 1 instead of dividing by zero.
        assert_eq!(prep.steps[2].transform, FeatureTransform::Standardize { mean: 7.0, scale: 1.0 });
        assert_eq!(prep.width(), 4);
    }

    #[test]
    fn transforms_rows_and_zeroes_unseen_categories() {
        let prep = Preprocessing::fit(&schema(), &[row(1.0, "b"), row(3.0, "a")]);
        assert_eq!(prep.transform(&row(4.0, "b")), vec![2.0, 0.0, 1.0, 0.0]);
        assert_eq!(prep.transform(&row(2.0, "new")), vec![0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn declared_categories_win_over_seen_ones() {
        let schema = FeatureSchema::from_json(r#"[{"name":"k","type":"category","values":["z","a"]}]"#).unwrap();
        let prep = Preprocessing::fit(&schema, &[vec![FeatureValue::Category("a".into())]]);
        assert_eq!(prep.transform(&[FeatureValue::Category("a".into())]), vec![0.0, 1.0]);
    }
}
