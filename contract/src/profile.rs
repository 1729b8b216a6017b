//! Feature profiles: per feature, fixed bins and how many values fell in each.
//!
//! The trainer builds the *reference* profile from its training split; a model
//! server bins live traffic on the very same bins (copied from the reference),
//! so drift statistics always compare identical bins.
//!
//! Bins of a number: `edges` are the strictly increasing interior cut points
//! `e_1 < … < e_k`, giving `k + 1` bins: bin 0 holds `x < e_1`, bin `i` holds
//! `e_i <= x < e_{i+1}`, the last holds `x >= e_k`. Bins of a category: one per
//! listed category in order, plus a last bin for any value not listed.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema::{FeatureSchema, FeatureType, FeatureValue};

pub const PROFILE_FORMAT_VERSION: u32 = 1;

/// The bins of one feature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Bins {
    Number { edges: Vec<f64> },
    Category { categories: Vec<String> },
}

impl Bins {
    pub fn len(&self) -> usize {
        match self {
            Bins::Number { edges } => edges.len() + 1,
            Bins::Category { categories } => categories.len() + 1,
        }
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The bin a value falls in, or `None` when the value's type does not match.
    pub fn index_of(&self, value: &FeatureValue) -> Option<usize> {
        match value {
            FeatureValue::Number(x) => self.number_index(*x),
            FeatureValue::Category(c) => self.category_index(c),
        }
    }

    /// The bin of a number (a binary search over the edges), or `None` for category bins.
    pub fn number_index(&self, x: f64) -> Option<usize> {
        match self {
            Bins::Number { edges } => Some(edges.partition_point(|e| *e <= x)),
            Bins::Category { .. } => None,
        }
    }

    /// The bin of a category, the last one when it is not listed, or `None` for number bins.
    pub fn category_index(&self, value: &str) -> Option<usize> {
        match self {
            Bins::Category { categories } => {
                Some(categories.iter().position(|k| k == value).unwrap_or(categories.len()))
            }
            Bins::Number { .. } => None,
        }
    }
}

/// One feature's bins and counts (`counts.len() == bins.len()`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FeatureBins {
    pub name: String,
    #[serde(flatten)]
    pub bins: Bins,
    pub counts: Vec<u64>,
}

/// A profile of all features of a schema, in schema order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeatureProfile {
    pub format_version: u32,
    /// Rows observed.
    pub samples: u64,
    pub features: Vec<FeatureBins>,
}

impl FeatureProfile {
    /// Builds the reference profile of `rows` (in schema order): numbers get
    /// bins at the `1/numeric_bins … (numeric_bins-1)/numeric_bins` quantiles of
    /// the rows (fewer when values repeat); categories get the schema's allowed
    /// values, or else the sorted distinct values seen.
    pub fn reference(schema: &FeatureSchema, rows: &[Vec<FeatureValue>], numeric_bins: usize) -> Self {
        let features = schema
            .features()
            .iter()
            .enumerate()
            .map(|(index, spec)| {
                let bins = match spec.kind {
                    FeatureType::Number => Bins::Number { edges: quantile_edges(numbers(rows, index), numeric_bins) },
                    FeatureType::Category => Bins::Category {
                        categories: if spec.allowed_values.is_empty() {
                            distinct_categories(rows, index)
                        } else {
                            spec.allowed_values.clone()
                        },
                    },
                };
                FeatureBins { name: spec.name.clone(), counts: vec![0; bins.len()], bins }
            })
            .collect();
        let mut profile = FeatureProfile { format_version: PROFILE_FORMAT_VERSION, samples: 0, features };
        for row in rows {
            profile.observe(row);
        }
        profile
    }

    /// The same bins with every count at zero: the start of a live profile.
    pub fn empty_like(&self) -> Self {
        let mut empty = self.clone();
        empty.samples = 0;
        for feature in &mut empty.features {
            feature.counts.iter_mut().for_each(|c| *c = 0);
        }
        empty
    }

    /// Counts one row given in schema order; values of a mismatched type are
    /// skipped (the schema check before it has already rejected them).
    pub fn observe(&mut self, row: &[FeatureValue]) {
        self.samples += 1;
        for (feature, value) in self.features.iter_mut().zip(row) {
            if let Some(count) = feature.bins.index_of(value).and_then(|i| feature.counts.get_mut(i)) {
                *count += 1;
            }
        }
    }

    pub fn feature(&self, name: &str) -> Option<&FeatureBins> {
        self.features.iter().find(|f| f.name == name)
    }
}

fn numbers(rows: &[Vec<FeatureValue>], index: usize) -> Vec<f64> {
    rows.iter()
        .filter_map(|row| match row.get(index) {
            Some(FeatureValue::Number(x)) => Some(*x),
            _ => None,
        })
        .collect()
}

fn distinct_categories(rows: &[Vec<FeatureValue>], index: usize) -> Vec<String> {
    let mut categories: Vec<String> = rows
        .iter()
        .filter_map(|row| match row.get(index) {
            Some(FeatureValue::Category(c)) => Some(c.clone()),
            _ => None,
        })
        .collect();
    categories.sort();
    categories.dedup();
    categories
}

fn quantile_edges(mut values: Vec<f64>, bins: usize) -> Vec<f64> {
    values.retain(|v| v.is_finite());
    values.sort_by(f64::total_cmp);
    quantile_edges_of_sorted(&values, bins)
}

/// Interior cut points at the empirical quantiles of finite values sorted
/// ascending, strictly increasing: the number bins of a reference profile.
/// Each edge is an observed value (the lower empirical quantile), so no float
/// interpolation can differ between platforms.
pub fn quantile_edges_of_sorted(values: &[f64], bins: usize) -> Vec<f64> {
    let n = values.len();
    if n == 0 || bins < 2 {
        return Vec::new();
    }
    let mut edges: Vec<f64> = Vec::with_capacity(bins - 1);
    for i in 1..bins {
        // The first value above the lower i/bins of the data, so that bin i-1
        // (values strictly below the edge) holds about i/bins of it.
        let rank = (i * n).div_ceil(bins);
        let edge = values[rank.min(n - 1)];
        // An edge equal to the minimum would leave bin 0 empty forever.
        if edge > values[0] && edges.last().is_none_or(|last| edge > *last) {
            edges.push(edge);
        }
    }
    edges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> FeatureSchema {
        FeatureSchema::from_json(r#"[{"name":"x","type":"number"},{"name":"c","type":"category","values":["a","b"]}]"#)
            .unwrap()
    }

    fn rows(xs: &[f64]) -> Vec<Vec<FeatureValue>> {
        xs.iter()
            .enumerate()
            .map(|(i, x)| {
                vec![FeatureValue::Number(*x), FeatureValue::Category(if i % 2 == 0 { "a" } else { "b" }.into())]
            })
            .collect()
    }

    #[test]
    fn quantile_bins_split_the_data_evenly() {
        let xs: Vec<f64> = (0..100).map(f64::from).collect();
        let profile = FeatureProfile::reference(&schema(), &rows(&xs), 4);
        let x = profile.feature("x").unwrap();
        assert_eq!(x.bins, Bins::Number { edges: vec![25.0, 50.0, 75.0] });
        assert_eq!(x.counts, vec![25, 25, 25, 25]);
        assert_eq!(profile.samples, 100);
        let c = profile.feature("c").unwrap();
        assert_eq!(c.counts, vec![50, 50, 0]);
    }

    #[test]
    fn repeated_values_give_fewer_strictly_increasing_edges() {
        let mut xs = vec![0.0; 60];
        xs.extend((1..=40).map(f64::from));
        let profile = FeatureProfile::reference(&schema(), &rows(&xs), 10);
        let Bins::Number { edges } = &profile.features[0].bins else { panic!("number bins expected") };
        assert!(edges.windows(2).all(|w| w[0] < w[1]));
        assert!(edges[0] > 0.0);
        assert_eq!(profile.features[0].counts[0], 60);
        assert_eq!(profile.features[0].counts.iter().sum::<u64>(), 100);
    }

    #[test]
    fn values_outside_the_training_range_land_in_the_end_bins() {
        let bins = Bins::Number { edges: vec![1.0, 2.0] };
        assert_eq!(bins.index_of(&FeatureValue::Number(-5.0)), Some(0));
        assert_eq!(bins.index_of(&FeatureValue::Number(1.0)), Some(1));
        assert_eq!(bins.index_of(&FeatureValue::Number(1.5)), Some(1));
        assert_eq!(bins.index_of(&FeatureValue::Number(9.0)), Some(2));
        assert_eq!(bins.index_of(&FeatureValue::Category("a".into())), None);
    }

    #[test]
    fn unknown_categories_land_in_the_last_bin() {
        let bins = Bins::Category { categories: vec!["a".into(), "b".into()] };
        assert_eq!(bins.index_of(&FeatureValue::Category("b".into())), Some(1));
        assert_eq!(bins.index_of(&FeatureValue::Category("zzz".into())), Some(2));
    }

    #[test]
    fn empty_like_keeps_bins_and_clears_counts() {
        let profile = FeatureProfile::reference(&schema(), &rows(&[1.0, 2.0, 3.0]), 3);
        let mut live = profile.empty_like();
        assert_eq!(live.samples, 0);
        assert!(live.features.iter().all(|f| f.counts.iter().all(|c| *c == 0)));
        live.observe(&rows(&[2.5])[0]);
        assert_eq!(live.features[0].bins, profile.features[0].bins);
        assert_eq!(live.samples, 1);
    }

    #[test]
    fn serialises_type_tagged_bins() {
        let profile = FeatureProfile::reference(&schema(), &rows(&[1.0, 2.0]), 2);
        let json = serde_json::to_value(&profile).unwrap();
        assert_eq!(json["features"][0]["type"], "number");
        assert_eq!(json["features"][1]["categories"][0], "a");
        assert_eq!(json["formatVersion"], 1);
        let back: FeatureProfile = serde_json::from_value(json).unwrap();
        assert_eq!(back, profile);
    }
}
