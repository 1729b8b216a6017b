//! Pure: judge the live traffic of the served model against its reference profile, feature by
//! feature, with the monitor's statistic.

use std::collections::BTreeMap;

use crate::api::{DriftMethod, FeatureDriftMonitor};
use crate::artifact::{FeatureProfile, PROFILE_FORMAT_VERSION, compare_profiles};

/// The drift of the watched features on one batch of live traffic.
#[derive(Clone, Debug, PartialEq)]
pub struct Judged {
    /// The statistic of every watched feature.
    pub values: BTreeMap<String, f64>,
    /// The feature with the largest value, and that value.
    pub feature: String,
    pub value: f64,
    /// Rows of live traffic judged.
    pub samples: u64,
}

/// The reference restricted to the monitor's `features` (all when absent), in reference order.
pub fn watched(reference: &FeatureProfile, monitor: &FeatureDriftMonitor) -> Result<FeatureProfile, String> {
    let Some(names) = &monitor.features else { return Ok(reference.clone()) };
    if let Some(unknown) = names.iter().find(|name| reference.feature(name).is_none()) {
        return Err(format!("feature {unknown:?} is not in the served model's reference profile"));
    }
    let mut restricted = reference.clone();
    restricted.features.retain(|feature| names.contains(&feature.name));
    Ok(restricted)
}

/// Add the counts of `more` into `total`; both must have the same format and bins.
pub fn add(total: &mut FeatureProfile, more: &FeatureProfile) -> Result<(), String> {
    check_format(more)?;
    let same_shape = total.features.len() == more.features.len()
        && total.features.iter().zip(&more.features).all(|(a, b)| a.name == b.name && a.bins == b.bins);
    if !same_shape {
        return Err("the server pods' profiles have different features or bins".into());
    }
    total.samples += more.samples;
    for (a, b) in total.features.iter_mut().zip(&more.features) {
        for (count, extra) in a.counts.iter_mut().zip(&b.counts) {
            *count += extra;
        }
    }
    Ok(())
}

/// A profile of a format this operator does not read is an error, never drift.
pub fn check_format(profile: &FeatureProfile) -> Result<(), String> {
    if profile.format_version != PROFILE_FORMAT_VERSION {
        return Err(format!(
            "live profile format version {} (this operator reads {PROFILE_FORMAT_VERSION})",
            profile.format_version
        ));
    }
    Ok(())
}

/// Judge `live` against the watched reference with `method`.
pub fn judge(reference: &FeatureProfile, live: &FeatureProfile, method: DriftMethod) -> Result<Judged, String> {
    check_format(live)?;
    let drifts = compare_profiles(reference, live, method).map_err(|e| e.to_string())?;
    let worst = drifts.iter().max_by(|a, b| a.value.total_cmp(&b.value)).ok_or("no feature to watch")?;
    Ok(Judged {
        feature: worst.name.clone(),
        value: worst.value,
        values: drifts.iter().map(|d| (d.name.clone(), d.value)).collect(),
        samples: live.samples,
    })
}

/// The method's name as in the API (`psi`, `ks`, ...), for reasons people read.
pub fn method_name(method: DriftMethod) -> String {
    serde_json::to_value(method).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn profile(counts: [[u64; 2]; 2]) -> FeatureProfile {
        serde_json::from_value(json!({"formatVersion": 1, "samples": counts[0][0] + counts[0][1], "features": [
            {"name": "radius", "type": "number", "edges": [1.0], "counts": counts[0]},
            {"name": "texture", "type": "number", "edges": [5.0], "counts": counts[1]}]}))
        .unwrap()
    }

    fn monitor(features: Option<Vec<&str>>) -> FeatureDriftMonitor {
        FeatureDriftMonitor {
            method: DriftMethod::Psi,
            threshold: 0.2,
            features: features.map(|f| f.into_iter().map(String::from).collect()),
            min_samples: 10,
        }
    }

    #[test]
    fn the_shifted_feature_is_named_with_its_value_and_the_others_are_kept() {
        let reference = profile([[50, 50], [50, 50]]);
        let judged = judge(&reference, &profile([[10, 90], [50, 50]]), DriftMethod::Psi).unwrap();
        assert_eq!(judged.feature, "radius");
        assert!(judged.value > 0.2, "{judged:?}");
        assert!(judged.values["texture"].abs() < 1e-12);
        assert_eq!(judged.samples, 100);
        assert_eq!(method_name(DriftMethod::Wasserstein), "wasserstein");
    }

    #[test]
    fn only_the_watched_features_are_judged_and_an_unknown_one_is_an_error() {
        let reference = profile([[50, 50], [50, 50]]);
        let texture_only = watched(&reference, &monitor(Some(vec!["texture"]))).unwrap();
        let judged = judge(&texture_only, &profile([[10, 90], [50, 50]]), DriftMethod::Psi).unwrap();
        assert_eq!((judged.feature.as_str(), judged.values.len()), ("texture", 1));
        assert_eq!(watched(&reference, &monitor(None)).unwrap(), reference);
        let error = watched(&reference, &monitor(Some(vec!["area"]))).unwrap_err();
        assert!(error.contains("\"area\""), "{error}");
    }

    #[test]
    fn pods_add_up_and_other_bins_or_formats_are_errors_never_drift() {
        let mut total = profile([[1, 2], [3, 0]]);
        add(&mut total, &profile([[10, 20], [30, 0]])).unwrap();
        assert_eq!((total.samples, total.features[0].counts.clone()), (33, vec![11, 22]));
        let mut other_bins = profile([[1, 2], [3, 0]]);
        other_bins.features[1].bins = crate::artifact::Bins::Number { edges: vec![6.0] };
        assert!(add(&mut total, &other_bins).is_err());
        assert!(judge(&profile([[5, 5], [5, 5]]), &other_bins, DriftMethod::Psi).unwrap_err().contains("texture"));
        let mut future = profile([[1, 2], [3, 0]]);
        future.format_version = 2;
        assert!(add(&mut total, &future).unwrap_err().contains("format version 2"));
        assert!(judge(&profile([[5, 5], [5, 5]]), &future, DriftMethod::Psi).is_err());
    }
}
