//! The bearer tokens of webhook monitors, read from their Secrets and kept briefly: a storm of
//! alerts reads each Secret once per `ttl`, not once per alert.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use subtle::ConstantTimeEq;
use tokio::time::Instant;

use crate::api::SecretKeyRef;

/// How long a token read from a Secret is trusted: a rotated token takes effect within this.
pub const TOKEN_TTL: Duration = Duration::from_secs(10);

/// Where the receiver finds a monitor's token.
pub trait TokenSource: Send + Sync + 'static {
    /// The token at `secret` in `namespace`; `None` when the Secret or its key does not exist
    /// (no sender is accepted then); an error when it could not be read now.
    fn token<'a>(
        &'a self,
        namespace: &'a str,
        secret: &'a SecretKeyRef,
    ) -> BoxFuture<'a, Result<Option<String>, String>>;
}

/// Whether `presented` is `expected`, in time independent of where they differ.
pub fn same_token(presented: &str, expected: &str) -> bool {
    bool::from(presented.as_bytes().ct_eq(expected.as_bytes()))
}

/// Tokens read from Secrets through the API.
pub struct SecretTokens {
    client: kube::Client,
    ttl: Duration,
    /// Held across a read, so concurrent alerts wait for one read of a Secret instead of
    /// sending one each.
    cache: tokio::sync::Mutex<HashMap<SecretKey, (Instant, Option<String>)>>,
}

/// Namespace, Secret name and key.
type SecretKey = (String, String, String);

impl SecretTokens {
    pub fn new(client: kube::Client) -> Self {
        SecretTokens::with_ttl(client, TOKEN_TTL)
    }

    pub fn with_ttl(client: kube::Client, ttl: Duration) -> Self {
        SecretTokens { client, ttl, cache: tokio::sync::Mutex::default() }
    }

    async fn read(&self, namespace: &str, secret: &SecretKeyRef) -> Result<Option<String>, String> {
        let key = (namespace.to_string(), secret.name.clone(), secret.key.clone());
        let mut cache = self.cache.lock().await;
        if let Some((read_at, token)) = cache.get(&key)
            && read_at.elapsed() < self.ttl
        {
            return Ok(token.clone());
        }
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let found = api
            .get_opt(&secret.name)
            .await
            .map_err(|error| format!("reading Secret {namespace}/{}: {error}", secret.name))?;
        let token = found.and_then(|s| s.data?.remove(&secret.key)).map(|bytes| token_text(&bytes.0));
        cache.insert(key, (Instant::now(), token.clone()));
        Ok(token)
    }
}

impl TokenSource for SecretTokens {
    fn token<'a>(
        &'a self,
        namespace: &'a str,
        secret: &'a SecretKeyRef,
    ) -> BoxFuture<'a, Result<Option<String>, String>> {
        Box::pin(self.read(namespace, secret))
    }
}

/// A Secret's value as a token. Surrounding whitespace is dropped, as Alertmanager does with a
/// `credentials_file`: a Secret made from a file usually ends in a newline.
fn token_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("s3cret", "s3cret"));
        assert!(!same_token("s3cret", "s3cre"));
        assert!(!same_token("s3cret", "s3cret!"));
        assert!(!same_token("", "s3cret"));
        assert!(!same_token("S3cret", "s3cret"));
    }

    #[test]
    fn a_secret_from_a_file_loses_its_newline() {
        assert_eq!(token_text(b"  s3cret\n"), "s3cret");
    }
}
