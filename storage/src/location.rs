//! Which store and which object a URI names.

use std::fmt;

use object_store::path::Path;
use url::Url;

use crate::error::{Problem, StorageError};

/// The kinds of store a URI can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    File,
    S3,
    Gcs,
    Azure,
    /// `http://` and `https://`: read-only.
    Http,
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::File => "file",
            Scheme::S3 => "s3",
            Scheme::Gcs => "gs",
            Scheme::Azure => "az",
            Scheme::Http => "http",
        })
    }
}

/// A parsed object URI: the store's URL, and the object's path inside it.
#[derive(Clone, Debug, PartialEq)]
pub struct Location {
    pub scheme: Scheme,
    pub url: Url,
    pub path: Path,
}

impl Location {
    /// `s3://bucket/key`, `gs://bucket/key`, `az://container/key`, `file:///abs/path`,
    /// `http(s)://host/path`, or a plain path (relative to the working directory).
    pub fn parse(uri: &str) -> Result<Location, StorageError> {
        let invalid = |reason: &str| StorageError::new(uri, Problem::InvalidUri(reason.to_string()));
        let url = if uri.contains("://") {
            Url::parse(uri).map_err(|e| invalid(&e.to_string()))?
        } else {
            let absolute = std::path::absolute(uri).map_err(|e| invalid(&e.to_string()))?;
            Url::from_file_path(&absolute).map_err(|()| invalid("not a usable file path"))?
        };
        let scheme = match url.scheme() {
            "file" => Scheme::File,
            "s3" => Scheme::S3,
            "gs" => Scheme::Gcs,
            "az" => Scheme::Azure,
            "http" | "https" => Scheme::Http,
            other => return Err(StorageError::new(uri, Problem::Unsupported(other.to_string()))),
        };
        if scheme == Scheme::File && url.host_str().is_some_and(|h| !h.is_empty()) {
            return Err(invalid("a file:// URI needs an absolute path, e.g. file:///data/train.csv"));
        }
        if scheme != Scheme::File && url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("the URI names no bucket or host"));
        }
        let path = Path::from_url_path(url.path()).map_err(|e| invalid(&e.to_string()))?;
        if path.as_ref().is_empty() {
            return Err(invalid("the URI names no object"));
        }
        Ok(Location { scheme, url, path })
    }
}

/// `uri` as a folder with `name` in it: `s3://b/runs/1/` + `model.json` -> `s3://b/runs/1/model.json`.
pub fn child_uri(uri: &str, name: &str) -> String {
    format!("{}/{name}", uri.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scheme_names_its_store_and_object() {
        let cases = [
            ("s3://bucket/data/train.csv", Scheme::S3, "data/train.csv"),
            ("gs://bucket/train.csv", Scheme::Gcs, "train.csv"),
            ("az://container/a/b.csv", Scheme::Azure, "a/b.csv"),
            ("file:///var/data/train.csv", Scheme::File, "var/data/train.csv"),
            ("https://example.com/data/train.csv", Scheme::Http, "data/train.csv"),
            ("http://127.0.0.1:9000/x.csv", Scheme::Http, "x.csv"),
        ];
        for (uri, scheme, path) in cases {
            let location = Location::parse(uri).unwrap();
            assert_eq!((location.scheme, location.path.as_ref()), (scheme, path), "{uri}");
        }
        let relative = Location::parse("data/train.csv").unwrap();
        assert_eq!(relative.scheme, Scheme::File);
        assert!(relative.path.as_ref().ends_with("data/train.csv"), "{}", relative.path);
    }

    #[test]
    fn bad_uris_say_what_is_wrong() {
        for (uri, expected) in [
            ("ftp://host/x", "ftp"),
            ("s3:///key", "no bucket"),
            ("s3://bucket", "no object"),
            ("s3://bucket/", "no object"),
            ("file://relative/x.csv", "absolute path"),
        ] {
            let error = Location::parse(uri).unwrap_err();
            assert!(error.to_string().contains(expected), "{uri}: {error}");
            assert!(error.to_string().contains(uri), "{uri}: {error}");
        }
    }

    #[test]
    fn children_of_a_folder_uri() {
        assert_eq!(child_uri("s3://b/runs/1/", "model.json"), "s3://b/runs/1/model.json");
        assert_eq!(child_uri("file:///a/run", "profile.json"), "file:///a/run/profile.json");
    }
}
