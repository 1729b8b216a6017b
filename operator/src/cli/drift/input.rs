//! What each of `--reference` and `--current` is: a feature profile (JSON,
//! as the trainer and the model server write it) or data (CSV or Parquet); and
//! where it is: a local path, read as a stream, or a URI (`s3://`, `gs://`,
//! `az://`, `http(s)://`, `file://`) fetched whole through the storage crate,
//! as the trainer reads its data.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::Serialize;
use trainloop_storage::StorageConfig;

use crate::artifact::{FeatureProfile, PROFILE_FORMAT_VERSION};

use super::csv_records::Source;
use super::error::CompareError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    Profile,
    Data,
}

/// How an input's bytes are to be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Profile,
    Csv,
    Parquet,
}

impl Format {
    pub fn kind(self) -> InputKind {
        if self == Format::Profile { InputKind::Profile } else { InputKind::Data }
    }
}

/// One input, opened.
pub struct Input {
    /// As given on the command line: how messages and the output name it.
    pub name: PathBuf,
    pub format: Format,
    pub content: Content,
}

pub enum Content {
    /// Read from the file as it is needed.
    Local(PathBuf),
    /// Fetched whole from object storage.
    Fetched(Bytes),
}

impl Input {
    /// Opens a local path, or fetches a URI, and decides its format.
    pub fn open(given: &str) -> Result<Input, CompareError> {
        let name = PathBuf::from(given);
        let content =
            if given.contains("://") { Content::Fetched(fetch(given)?) } else { Content::Local(name.clone()) };
        let mut start = [0u8; 512];
        let read = match &content {
            Content::Local(path) => std::fs::File::open(path)
                .and_then(|mut file| file.read(&mut start))
                .map_err(|e| unreadable(&name, e))?,
            Content::Fetched(bytes) => {
                let read = bytes.len().min(start.len());
                start[..read].copy_from_slice(&bytes[..read]);
                read
            }
        };
        let format = format_of(&name, &start[..read]);
        Ok(Input { name, format, content })
    }

    /// The bytes as a stream.
    pub fn source(&self) -> Result<Source, CompareError> {
        Ok(match &self.content {
            Content::Local(path) => Box::new(std::fs::File::open(path).map_err(|e| unreadable(&self.name, e))?),
            Content::Fetched(bytes) => Box::new(Cursor::new(bytes.clone())),
        })
    }

    /// The whole content.
    fn bytes(&self) -> Result<Bytes, CompareError> {
        match &self.content {
            Content::Local(path) => std::fs::read(path).map(Bytes::from).map_err(|e| unreadable(&self.name, e)),
            Content::Fetched(bytes) => Ok(bytes.clone()),
        }
    }
}

pub fn unreadable(path: &Path, error: std::io::Error) -> CompareError {
    CompareError::Unreadable { path: path.to_path_buf(), reason: error.to_string() }
}

/// Reads the object at `uri` with the storage settings of the environment (`AWS_*`,
/// `GOOGLE_*`, `AZURE_*`), on a thread of its own: the command runs inside the operator
/// binary's async `main`, where the storage crate's blocking calls may not start a runtime.
fn fetch(uri: &str) -> Result<Bytes, CompareError> {
    static INSTALL_RING: std::sync::Once = std::sync::Once::new();
    // reqwest is built without a crypto provider (the workspace uses ring only): https needs one.
    INSTALL_RING.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    let read = std::thread::scope(|scope| {
        scope.spawn(|| trainloop_storage::blocking::read(uri, &StorageConfig::from_env())).join()
    });
    let reason = match read {
        Ok(Ok(bytes)) => return Ok(bytes),
        Ok(Err(error)) => format!("{error} ({})", error.reason()),
        Err(_) => "the reading thread panicked".to_string(),
    };
    Err(CompareError::Unreadable { path: PathBuf::from(uri), reason })
}

/// Decides by extension (`.json` a profile, `.csv` CSV, `.parquet`/`.pq`
/// Parquet), else by the first bytes: Parquet starts with `PAR1`, a JSON
/// document with `{`.
fn format_of(name: &Path, start: &[u8]) -> Format {
    match name.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("json") => Format::Profile,
        Some("csv") => Format::Csv,
        Some("parquet" | "pq") => Format::Parquet,
        _ if start.starts_with(b"PAR1") => Format::Parquet,
        _ if start.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') => Format::Profile,
        _ => Format::Csv,
    }
}

/// Reads a profile, checking its format version before anything else so that
/// a newer profile is reported as such rather than as malformed.
pub fn read_profile(input: &Input) -> Result<FeatureProfile, CompareError> {
    let path = &input.name;
    let malformed = |reason: String| CompareError::MalformedProfile { path: path.clone(), reason };
    let bytes = input.bytes()?;
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
