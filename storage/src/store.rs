//! The `object_store` client for a location, set up from a [`StorageConfig`].

use std::sync::{Arc, Once};

use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::http::HttpBuilder;
use object_store::local::LocalFileSystem;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

use crate::config::StorageConfig;
use crate::error::{Problem, StorageError};
use crate::location::{Location, Scheme};

/// A cloud store built with the client options and retries, for the bucket in the URL, with
/// every setting under `prefix` that it knows: variables it does not (e.g. `AWS_PROFILE`) are
/// for other tools. The builders share no trait, hence a macro.
macro_rules! cloud_store {
    ($builder:ty, $prefix:literal, $client:expr, $retry:expr, $url:expr, $config:expr) => {{
        let mut builder = <$builder>::new().with_client_options($client).with_retry($retry).with_url($url);
        for (key, value) in $config.settings_for($prefix) {
            if let Ok(key) = key.parse() {
                builder = builder.with_config(key, value);
            }
        }
        builder.build()
    }};
}

/// The store holding `location`'s object.
pub fn open(uri: &str, location: &Location, config: &StorageConfig) -> Result<Arc<dyn ObjectStore>, StorageError> {
    install_crypto_provider();
    let client = ClientOptions::new().with_timeout(config.timeout).with_connect_timeout(config.connect_timeout);
    let retry = RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: config.max_retries,
        retry_timeout: config.retry_timeout,
    };
    // The HTTP store reads paths only: a signed query (a presigned URL) would be lost.
    if location.scheme == Scheme::Http && location.url.query().is_some() {
        return Err(StorageError::new(uri, Problem::InvalidUri("query strings are not supported".into())));
    }
    let store_url = location.url.as_str();
    let failed = |e: object_store::Error| StorageError::from_store(uri, e);
    // Each builder takes the client options first: the configured settings (e.g. AWS_ALLOW_HTTP)
    // then adjust them.
    let store: Arc<dyn ObjectStore> = match location.scheme {
        Scheme::File => Arc::new(LocalFileSystem::new()),
        Scheme::S3 => {
            Arc::new(cloud_store!(AmazonS3Builder, "aws_", client, retry, store_url, config).map_err(failed)?)
        }
        Scheme::Gcs => Arc::new(
            cloud_store!(GoogleCloudStorageBuilder, "google_", client, retry, store_url, config).map_err(failed)?,
        ),
        Scheme::Azure => {
            Arc::new(cloud_store!(MicrosoftAzureBuilder, "azure_", client, retry, store_url, config).map_err(failed)?)
        }
        Scheme::Http => {
            let origin = location.url.origin().ascii_serialization();
            let builder = HttpBuilder::new().with_client_options(client.with_allow_http(true)).with_retry(retry);
            Arc::new(builder.with_url(origin).build().map_err(failed)?)
        }
    };
    Ok(store)
}

/// reqwest is built without a bundled TLS provider so that the workspace uses ring only; it
/// panics without one, so install ring as the process default first.
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Fails only when another provider is installed already, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
