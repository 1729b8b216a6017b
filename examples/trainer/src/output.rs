//! Where the artifact, the profile and the termination message go.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use trainloop::artifact::TERMINATION_MESSAGE_LIMIT;

use crate::error::TrainError;
use crate::fetch::file_path;

/// File names inside an artifact directory.
pub const MODEL_FILE: &str = "model.json";
pub const PROFILE_FILE: &str = "profile.json";

/// The two files a run writes.
#[derive(Clone, Debug, PartialEq)]
pub struct ArtifactPaths {
    pub model: PathBuf,
    pub profile: PathBuf,
}

impl ArtifactPaths {
    /// A URI ending in `.json` names the model file itself, and the profile is
    /// written beside it as `<stem>.profile.json`; any other URI is a
    /// directory holding `model.json` and `profile.json`.
    pub fn from_uri(uri: &str) -> Result<Self, TrainError> {
        let path = file_path(uri).ok_or_else(|| TrainError::Write {
            path: uri.to_string(),
            reason: "only file:// artifact URIs are supported".into(),
        })?;
        let path = Path::new(path);
        if path.extension().is_some_and(|e| e == "json") {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
            Ok(ArtifactPaths {
                model: path.to_path_buf(),
                profile: path.with_file_name(format!("{stem}.profile.json")),
            })
        } else {
            Ok(ArtifactPaths { model: path.join(MODEL_FILE), profile: path.join(PROFILE_FILE) })
        }
    }

    /// Writes both files, creating the directory if needed.
    pub fn write(&self, model: &[u8], profile: &[u8]) -> Result<(), TrainError> {
        write_file(&self.model, model)?;
        write_file(&self.profile, profile)
    }
}

/// A `file://` URI for a path, absolute so the operator can hand it on as is.
pub fn file_uri(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    format!("file://{}", absolute.display())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let fail = |e: std::io::Error| TrainError::Write { path: path.display().to_string(), reason: e.to_string() };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(fail)?;
    }
    fs::write(path, bytes).map_err(fail)
}

/// Writes the termination message, cut to the size Kubernetes keeps (on a
/// character boundary).
pub fn write_termination_message(path: &Path, message: &str) -> std::io::Result<()> {
    let mut end = message.len().min(TERMINATION_MESSAGE_LIMIT);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let mut file = fs::File::create(path)?;
    file.write_all(&message.as_bytes()[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_and_file_uris() {
        let dir = ArtifactPaths::from_uri("file:///out/run-1").unwrap();
        assert_eq!(dir.model, PathBuf::from("/out/run-1/model.json"));
        assert_eq!(dir.profile, PathBuf::from("/out/run-1/profile.json"));
        let file = ArtifactPaths::from_uri("file:///out/churn.json").unwrap();
        assert_eq!(file.profile, PathBuf::from("/out/churn.profile.json"));
        assert!(ArtifactPaths::from_uri("s3://bucket/x").is_err());
    }

    #[test]
    fn termination_message_is_cut_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("termination-log");
        write_termination_message(&path, &"é".repeat(3000)).unwrap();
        let written = fs::read_to_string(&path).unwrap();
        assert!(written.len() <= TERMINATION_MESSAGE_LIMIT);
        assert!(written.len() > TERMINATION_MESSAGE_LIMIT - 2);
    }
}
