//! What each of `--reference` and `--current` is: a feature profile (JSON,
//! as the trainer and the model server write it) or a data file (CSV).

use std::io::Read;
use std::path::Path;

use serde::Serialize;

use crate::artifact::{FeatureProfile, PROFILE_FORMAT_VERSION};

use super::error::CompareError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    Profile,
    Data,
}

/// Decides by extension (`.json` a profile, `.csv` data), else by the first
/// character: a JSON document starts with `{`.
pub fn kind_of(path: &Path) -> Result<InputKind, CompareError> {
    let unreadable = |e: std::io::Error| CompareError::Unreadable { path: path.to_path_buf(), reason: e.to_string() };
    let mut file = std::fs::File::open(path).map_err(unreadable)?;
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("json") => return Ok(InputKind::Profile),
        Some("csv") => return Ok(InputKind::Data),
        Some("parquet" | "pq") => return Err(CompareError::Parquet { path: path.to_path_buf() }),
        _ => {}
    }
    let mut start = [0u8; 512];
    let read = file.read(&mut start).map_err(unreadable)?;
    if start[..read].starts_with(b"PAR1") {
        return Err(CompareError::Parquet { path: path.to_path_buf() });
    }
    let first = start[..read].iter().find(|b| !b.is_ascii_whitespace());
    Ok(if first == Some(&b'{') { InputKind::Profile } else { InputKind::Data })
}

/// Reads a profile, checking its format version before anything else so that
/// a newer profile is reported as such rather than as malformed.
pub fn read_profile(path: &Path) -> Result<FeatureProfile, CompareError> {
    let malformed = |reason: String| CompareError::MalformedProfile { path: path.to_path_buf(), reason };
    let bytes = std::fs::read(path)
        .map_err(|e| CompareError::Unreadable { path: path.to_path_buf(), reason: e.to_string() })?;
    let document: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| malformed(e.to_string()))?;
    let version = document.get("formatVersion").ok_or_else(|| malformed("no formatVersion field".into()))?;
    match version.as_u64() {
        Some(v) if v == u64::from(PROFILE_FORMAT_VERSION) => {}
        Some(found) => {
            return Err(CompareError::UnsupportedProfileVersion {
                path: path.to_path_buf(),
                found,
                supported: PROFILE_FORMAT_VERSION,
            });
        }
        None => return Err(malformed(format!("formatVersion {version} is not a version number"))),
    }
    let profile: FeatureProfile = serde_json::from_value(document).map_err(|e| malformed(e.to_string()))?;
    if let Some(feature) = profile.features.iter().find(|f| f.counts.len() != f.bins.len()) {
        return Err(CompareError::CountsDoNotMatchBins {
            name: feature.name.clone(),
            which: "a profile",
            counts: feature.counts.len(),
            bins: feature.bins.len(),
        });
    }
    Ok(profile)
}
