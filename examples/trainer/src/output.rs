//! Where the artifact, the profile and the termination message go.

use std::fs;
use std::io::Write;
use std::path::Path;

use trainloop_contract::TERMINATION_MESSAGE_LIMIT;
use trainloop_storage::{Location, Scheme, StorageConfig, blocking, child_uri};

use crate::error::TrainError;

/// File names inside an artifact folder.
pub const MODEL_FILE: &str = "model.json";
pub const PROFILE_FILE: &str = "profile.json";

/// The URIs of the two objects a run writes; a local path is made an absolute `file://` URI so
/// that the operator can hand it on as is.
#[derive(Clone, Debug, PartialEq)]
pub struct ArtifactPaths {
    pub model: String,
    pub profile: String,
}

impl ArtifactPaths {
    /// A URI ending in `.json` names the model object itself, and the profile is written beside
    /// it as `<stem>.profile.json`; any other URI is a folder holding `model.json` and
    /// `profile.json`.
    pub fn from_uri(uri: &str) -> Result<Self, TrainError> {
        let location = Location::parse(uri).map_err(TrainError::Write)?;
        let uri = match location.scheme {
            Scheme::File => location.url.to_string(),
            _ => uri.to_string(),
        };
        Ok(match uri.strip_suffix(".json") {
            Some(stem) => ArtifactPaths { profile: format!("{stem}.profile.json"), model: uri },
            None => ArtifactPaths { model: child_uri(&uri, MODEL_FILE), profile: child_uri(&uri, PROFILE_FILE) },
        })
    }

    /// Writes both objects, each all or nothing; the profile first, so that a model, once
    /// there, always has its profile beside it.
    pub fn write(&self, model: &[u8], profile: &[u8], storage: &StorageConfig) -> Result<(), TrainError> {
        blocking::write(&self.profile, profile.to_vec().into(), storage).map_err(TrainError::Write)?;
        blocking::write(&self.model, model.to_vec().into(), storage).map_err(TrainError::Write)
    }
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
    fn folder_and_file_uris() {
        let dir = ArtifactPaths::from_uri("file:///out/run-1/").unwrap();
        assert_eq!(dir.model, "file:///out/run-1/model.json");
        assert_eq!(dir.profile, "file:///out/run-1/profile.json");
        let file = ArtifactPaths::from_uri("file:///out/churn.json").unwrap();
        assert_eq!(file.profile, "file:///out/churn.profile.json");
        let s3 = ArtifactPaths::from_uri("s3://bucket/ml/churn-3/").unwrap();
        assert_eq!(s3.model, "s3://bucket/ml/churn-3/model.json");
        let relative = ArtifactPaths::from_uri("out/run").unwrap();
        assert!(relative.model.starts_with("file:///") && relative.model.ends_with("/out/run/model.json"));
        assert!(ArtifactPaths::from_uri("ftp://host/x").is_err());
    }

    #[test]
    fn writes_both_files_and_refuses_a_read_only_uri() {
        let dir = tempfile::tempdir().unwrap();
        let paths = ArtifactPaths::from_uri(&format!("file://{}/run-1", dir.path().display())).unwrap();
        paths.write(b"model", b"profile", &StorageConfig::default()).unwrap();
        assert_eq!(fs::read(dir.path().join("run-1/model.json")).unwrap(), b"model");
        assert_eq!(fs::read(dir.path().join("run-1/profile.json")).unwrap(), b"profile");
        let http = ArtifactPaths::from_uri("https://example.com/run-1").unwrap();
        let error = http.write(b"m", b"p", &StorageConfig::default()).unwrap_err();
        assert!(error.to_string().starts_with("ReadOnlyStorage: cannot write https://example.com/run-1/"), "{error}");
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
