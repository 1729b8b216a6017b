//! The images file: which local executable stands in for a container image.
//!
//! A YAML (or JSON, which is YAML) map from image reference to either an executable path or an
//! object with the executable and its default args (the image's ENTRYPOINT and CMD):
//!
//! ```yaml
//! ghcr.io/example/trainer:1.0: /usr/local/bin/trainer
//! ghcr.io/example/server:
//!   path: ../target/debug/model-server   # relative paths are relative to this file
//!   args: ["--port", "8080"]             # replaced by a container's `args`
//! ```
//!
//! Lookup tries the reference as written, then without its `@sha256:...` digest, then without its
//! tag, so one entry serves every pinned version of an image. A path without a `/` is looked up on
//! the host PATH when the process starts.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// What an image runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageEntry {
    pub path: String,
    pub args: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawEntry {
    Path(String),
    Full {
        path: String,
        #[serde(default)]
        args: Vec<String>,
    },
}

/// The parsed images file.
#[derive(Debug, Clone, Default)]
pub struct Images {
    entries: BTreeMap<String, ImageEntry>,
}

impl Images {
    /// Parses the file's text; `base` is the directory relative paths are resolved against.
    pub fn parse(text: &str, base: &Path) -> Result<Images, String> {
        if text.trim().is_empty() {
            return Ok(Images::default());
        }
        let raw: BTreeMap<String, RawEntry> = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        let entries = raw
            .into_iter()
            .map(|(image, entry)| {
                let (path, args) = match entry {
                    RawEntry::Path(path) => (path, Vec::new()),
                    RawEntry::Full { path, args } => (path, args),
                };
                let path = if path.contains('/') && Path::new(&path).is_relative() {
                    base.join(&path).to_string_lossy().into_owned()
                } else {
                    path
                };
                (image, ImageEntry { path, args })
            })
            .collect();
        Ok(Images { entries })
    }

    /// Reads the file; read again for every container start so edits apply without a restart.
    pub fn load(file: Option<&Path>) -> Result<Images, String> {
        let Some(file) = file else {
            return Ok(Images::default());
        };
        let text =
            std::fs::read_to_string(file).map_err(|e| format!("cannot read images file {}: {e}", file.display()))?;
        let base = file.parent().unwrap_or(Path::new("."));
        Images::parse(&text, base).map_err(|e| format!("images file {}: {e}", file.display()))
    }

    pub fn lookup(&self, image: &str) -> Option<&ImageEntry> {
        if let Some(e) = self.entries.get(image) {
            return Some(e);
        }
        let without_digest = image.split_once('@').map_or(image, |(name, _)| name);
        if let Some(e) = self.entries.get(without_digest) {
            return Some(e);
        }
        // A tag is a `:` after the last `/` (a `:` before it belongs to a registry port).
        let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
        let repo = match without_digest[last_slash..].rfind(':') {
            Some(i) => &without_digest[..last_slash + i],
            None => without_digest,
        };
        self.entries.get(repo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms_and_matches_tags_and_digests() {
        let text = r#"
registry:5000/team/trainer: bin/trainer
server:1.0:
  path: /usr/bin/python3
  args: ["-m", "http.server"]
"#;
        let images = Images::parse(text, Path::new("/etc/lp")).unwrap();
        let trainer = images.lookup("registry:5000/team/trainer:2.1@sha256:abc").unwrap();
        assert_eq!(trainer.path, "/etc/lp/bin/trainer");
        assert!(trainer.args.is_empty());
        let server = images.lookup("server:1.0").unwrap();
        assert_eq!(server.args, vec!["-m", "http.server"]);
        assert!(images.lookup("server:2.0").is_none());
        assert!(images.lookup("registry:5000/other").is_none());
        let json = Images::parse(r#"{"a": "sh"}"#, Path::new("/")).unwrap();
        assert_eq!(json.lookup("a:latest").unwrap().path, "sh");
        assert!(Images::parse("[1, 2]", Path::new("/")).is_err());
    }
}
