//! Credentials and endpoints, from the environment variables each cloud's own tools read
//! (`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, `GOOGLE_SERVICE_ACCOUNT`,
//! `AZURE_STORAGE_ACCOUNT_NAME`, ...). Values are kept only to hand to the store: `Debug` shows
//! the names, never a value, so a config can be logged.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// The variable prefixes each store reads its settings from.
const PREFIXES: [&str; 3] = ["AWS_", "GOOGLE_", "AZURE_"];

#[derive(Clone)]
pub struct StorageConfig {
    /// Lower-cased variable name -> value, as `object_store`'s config keys are spelled.
    settings: BTreeMap<String, String>,
    /// Limit of one request, body included: long enough for a large data set over a slow link,
    /// short enough that a stuck server fails a run instead of holding it.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Retries of a request that failed for a reason that may pass (a 5xx, a reset connection).
    pub max_retries: usize,
    /// How long retries may go on in all.
    pub retry_timeout: Duration,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            settings: BTreeMap::new(),
            timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
            max_retries: 3,
            retry_timeout: Duration::from_secs(60),
        }
    }
}

impl StorageConfig {
    /// The process's storage variables.
    pub fn from_env() -> Self {
        Self::from_vars(std::env::vars())
    }

    /// The storage variables among `vars` (others are ignored), with default limits.
    pub fn from_vars<K: AsRef<str>, V: Into<String>>(vars: impl IntoIterator<Item = (K, V)>) -> Self {
        let settings = vars
            .into_iter()
            .filter(|(name, _)| PREFIXES.iter().any(|p| name.as_ref().starts_with(p)))
            .map(|(name, value)| (name.as_ref().to_ascii_lowercase(), value.into()))
            .collect();
        StorageConfig { settings, ..StorageConfig::default() }
    }

    /// The settings whose (lower-cased) name starts with `prefix`, e.g. `aws_`.
    pub(crate) fn settings_for<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.settings.iter().filter(move |(k, _)| k.starts_with(prefix)).map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageConfig")
            .field("settings", &self.settings.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_retries", &self.max_retries)
            .field("retry_timeout", &self.retry_timeout)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_storage_variables_and_never_shows_their_values() {
        let config = StorageConfig::from_vars([
            ("AWS_SECRET_ACCESS_KEY", "very-secret"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
            ("HOME", "/root"),
        ]);
        let aws: Vec<_> = config.settings_for("aws_").collect();
        assert_eq!(aws, [("aws_endpoint_url", "http://127.0.0.1:9000"), ("aws_secret_access_key", "very-secret")]);
        assert_eq!(config.settings_for("google_").count(), 0);
        let shown = format!("{config:?}");
        assert!(shown.contains("aws_secret_access_key"), "{shown}");
        assert!(!shown.contains("very-secret"), "{shown}");
    }
}
