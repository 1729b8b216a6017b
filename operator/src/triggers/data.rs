//! The data digest poll (`spec.triggers.onDataChange`): a fingerprint of the data at a URI that
//! changes when its content changes, so the controller starts a run only when it differs from
//! the one it recorded. Object stores answer with the object's version or ETag, never a download.

use std::io;
use std::path::PathBuf;
use std::sync::Once;
use std::time::Duration;

use reqwest::header::ETAG;
use reqwest::{Method, StatusCode, Url};
use trainloop_storage::error::error_chain;
use trainloop_storage::{StorageConfig, StorageError};

use crate::artifact::Sha256Stream;

/// A HEAD answers at once or the server is in trouble.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Hashing a body without an ETag reads all of it: long enough for a large file over a slow link,
/// short enough that a stuck server cannot hold a reconcile forever.
const GET_TIMEOUT: Duration = Duration::from_secs(300);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(
        "cannot poll data URI \"{0}\": only s3://, gs://, az://, file://, http:// and https:// URIs can be watched for changes"
    )]
    Unsupported(String),
    #[error("{reason}: cannot read the version of {0}", reason = .0.reason())]
    Storage(StorageError),
    #[error("invalid data URI \"{uri}\": {reason}")]
    InvalidUri { uri: String, reason: String },
    #[error("cannot read data at \"{uri}\": {source}")]
    Read { uri: String, source: io::Error },
    #[error("data at \"{uri}\" answered HTTP {status}")]
    Status { uri: String, status: StatusCode },
    #[error("cannot fetch data at \"{uri}\": {reason}")]
    Fetch { uri: String, reason: String },
    #[error("cannot build the HTTP client for data polling: {0}")]
    Client(String),
}

/// An HTTP client for [`fingerprint`], to build once and share.
///
/// reqwest is built without a bundled crypto provider so that the workspace uses ring only;
/// this installs ring as the process default first, because reqwest would panic without one.
pub fn http_client() -> Result<reqwest::Client, DataError> {
    static INSTALL_RING: Once = Once::new();
    INSTALL_RING.call_once(|| {
        // Fails only when another provider is installed already, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("trainloop/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| DataError::Client(error_chain(&e)))
}

/// A fingerprint of the data at `uri` that changes when its content changes:
/// file:// -> "sha256:<hex>" of the bytes (streamed, never loaded whole);
/// http(s):// -> "etag:<value>" from a HEAD request's ETag header when the server sends one, else
/// "sha256:<hex>" of a GET body; s3://, gs://, az:// -> "version:<id>" or "etag:<value>" from
/// the object's metadata, read with the operator's storage credentials (`storage`); other
/// schemes -> Err(DataError::Unsupported(..)).
/// A missing file / 404 / connection refused -> Err with a message naming the URI.
pub async fn fingerprint(client: &reqwest::Client, storage: &StorageConfig, uri: &str) -> Result<String, DataError> {
    let Ok(url) = Url::parse(uri) else {
        // No scheme at all (a bare path) lands here too: the operator cannot know what it is
        // relative to.
        return Err(DataError::Unsupported(uri.to_string()));
    };
    match url.scheme() {
        "file" => fingerprint_file(uri, &url).await,
        "http" | "https" => fingerprint_http(client, uri, url).await,
        "s3" | "gs" | "az" => trainloop_storage::version(uri, storage).await.map_err(DataError::Storage),
        _ => Err(DataError::Unsupported(uri.to_string())),
    }
}

async fn fingerprint_file(uri: &str, url: &Url) -> Result<String, DataError> {
    let path = url.to_file_path().map_err(|()| DataError::InvalidUri {
        uri: uri.to_string(),
        reason: "a file:// URI needs an absolute path, e.g. file:///data/train.csv".to_string(),
    })?;
    let read_error = |source| DataError::Read { uri: uri.to_string(), source };
    // std::io::copy streams through a small buffer; on a blocking thread, so that hashing a large
    // file does not stall the runtime's workers.
    tokio::task::spawn_blocking(move || sha256_of_file(path))
        .await
        .map_err(|e| read_error(io::Error::other(e)))?
        .map_err(read_error)
}

fn sha256_of_file(path: PathBuf) -> io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut digest = Sha256Stream::default();
    io::copy(&mut file, &mut digest)?;
    Ok(digest.finish())
}

async fn fingerprint_http(client: &reqwest::Client, uri: &str, url: Url) -> Result<String, DataError> {
    // The URI leads the message already; reqwest would repeat it.
    let fetch_error =
        |e: reqwest::Error| DataError::Fetch { uri: uri.to_string(), reason: error_chain(&e.without_url()) };
    let status_error = |status| DataError::Status { uri: uri.to_string(), status };

    let head = client.request(Method::HEAD, url.clone()).timeout(HEAD_TIMEOUT).send().await.map_err(fetch_error)?;
    match head.status() {
        status if status.is_success() => {
            if let Some(etag) = etag_of(&head) {
                return Ok(etag);
            }
        }
        // Servers that refuse HEAD may still serve GET.
        StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED => {}
        status => return Err(status_error(status)),
    }

    let mut response = client.get(url).timeout(GET_TIMEOUT).send().await.map_err(fetch_error)?;
    if !response.status().is_success() {
        return Err(status_error(response.status()));
    }
    // Some servers send an ETag on GET only; it spares reading the body.
    if let Some(etag) = etag_of(&response) {
        return Ok(etag);
    }
    let mut digest = Sha256Stream::default();
    while let Some(chunk) = response.chunk().await.map_err(fetch_error)? {
        digest.update(&chunk);
    }
    Ok(digest.finish())
}

/// The ETag as the server sent it (weak `W/` prefix and quotes included): an opaque token that
/// only needs to differ when the content does.
fn etag_of(response: &reqwest::Response) -> Option<String> {
    let value = response.headers().get(ETAG)?.to_str().ok()?.trim();
    (!value.is_empty()).then(|| format!("etag:{value}"))
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::Router;
    use axum::http::{HeaderValue, StatusCode as AxumStatus, header};
    use axum::response::IntoResponse;
    use axum::routing::get;
    use tokio::sync::oneshot;

    use super::*;

    const SHA256_OF_HELLO: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn file_uri(path: &std::path::Path) -> String {
        Url::from_file_path(path).expect("absolute temp path").to_string()
    }

    /// A tiny HTTP server on a free loopback port; dropping `stop_signal` stops it, also when a
    /// test fails half-way.
    struct TestServer {
        addr: SocketAddr,
        stop_signal: oneshot::Sender<()>,
        task: tokio::task::JoinHandle<()>,
    }

    impl TestServer {
        async fn start() -> TestServer {
            let router = Router::new()
                .route(
                    "/with-etag.csv",
                    get(|| async { ([(header::ETAG, HeaderValue::from_static("\"v1\""))], "hello") }),
                )
                .route("/plain.csv", get(|| async { "hello" }))
                .route("/no-head.csv", get(|| async { "hello" }).head(|| async { AxumStatus::METHOD_NOT_ALLOWED }))
                .route("/broken.csv", get(|| async { AxumStatus::INTERNAL_SERVER_ERROR.into_response() }));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
            let addr = listener.local_addr().expect("local address");
            let (stop, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(async move {
                let _ = axum::serve(listener, router)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
            TestServer { addr, stop_signal: stop, task }
        }

        fn uri(&self, path: &str) -> String {
            format!("http://{}{path}", self.addr)
        }

        async fn stop(self) {
            drop(self.stop_signal);
            self.task.await.expect("server task");
        }
    }

    #[tokio::test]
    async fn a_file_fingerprint_follows_its_content() {
        let client = http_client().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.csv");
        let uri = file_uri(&path);

        std::fs::write(&path, "hello").unwrap();
        let first = fingerprint(&client, &StorageConfig::default(), &uri).await.unwrap();
        assert_eq!(first, SHA256_OF_HELLO);

        std::fs::write(&path, "hello").unwrap();
        assert_eq!(
            fingerprint(&client, &StorageConfig::default(), &uri).await.unwrap(),
            first,
            "same content, same fingerprint"
        );

        std::fs::write(&path, "hello, again").unwrap();
        assert_ne!(
            fingerprint(&client, &StorageConfig::default(), &uri).await.unwrap(),
            first,
            "new content, new fingerprint"
        );
    }

    #[tokio::test]
    async fn a_file_larger_than_any_buffer_is_hashed_whole() {
        let client = http_client().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.bin");
        let mut bytes = vec![7u8; 3 * 1024 * 1024];
        std::fs::write(&path, &bytes).unwrap();
        let before = fingerprint(&client, &StorageConfig::default(), &file_uri(&path)).await.unwrap();
        assert_eq!(before, crate::artifact::sha256_digest(&bytes));

        // A change in the last byte must show.
        if let Some(last) = bytes.last_mut() {
            *last = 8;
        }
        std::fs::write(&path, &bytes).unwrap();
        assert_ne!(fingerprint(&client, &StorageConfig::default(), &file_uri(&path)).await.unwrap(), before);
    }

    #[tokio::test]
    async fn a_missing_file_is_an_error_naming_the_uri() {
        let client = http_client().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let uri = file_uri(&dir.path().join("missing.csv"));
        let err = fingerprint(&client, &StorageConfig::default(), &uri).await.unwrap_err();
        assert!(matches!(err, DataError::Read { .. }), "{err:?}");
        assert!(err.to_string().contains(&uri), "{err}");

        // A directory is not data either.
        let err = fingerprint(&client, &StorageConfig::default(), &file_uri(dir.path())).await.unwrap_err();
        assert!(matches!(err, DataError::Read { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn http_uses_the_etag_when_the_server_sends_one_else_hashes_the_body() {
        let client = http_client().unwrap();
        let server = TestServer::start().await;
        assert_eq!(
            fingerprint(&client, &StorageConfig::default(), &server.uri("/with-etag.csv")).await.unwrap(),
            "etag:\"v1\""
        );
        assert_eq!(
            fingerprint(&client, &StorageConfig::default(), &server.uri("/plain.csv")).await.unwrap(),
            SHA256_OF_HELLO
        );
        assert_eq!(
            fingerprint(&client, &StorageConfig::default(), &server.uri("/no-head.csv")).await.unwrap(),
            SHA256_OF_HELLO
        );
        server.stop().await;
    }

    #[tokio::test]
    async fn http_errors_name_the_uri_and_the_status() {
        let client = http_client().unwrap();
        let server = TestServer::start().await;

        let uri = server.uri("/missing.csv");
        let err = fingerprint(&client, &StorageConfig::default(), &uri).await.unwrap_err();
        assert!(matches!(err, DataError::Status { status: StatusCode::NOT_FOUND, .. }), "{err:?}");
        assert_eq!(err.to_string(), format!("data at \"{uri}\" answered HTTP 404 Not Found"));

        let err = fingerprint(&client, &StorageConfig::default(), &server.uri("/broken.csv")).await.unwrap_err();
        assert!(matches!(err, DataError::Status { status: StatusCode::INTERNAL_SERVER_ERROR, .. }), "{err:?}");
        server.stop().await;
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_error_naming_the_uri() {
        let client = http_client().unwrap();
        // Bind and release a port so that nothing listens on it.
        let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let uri = format!("http://{addr}/data.csv");
        let err = fingerprint(&client, &StorageConfig::default(), &uri).await.unwrap_err();
        assert!(matches!(err, DataError::Fetch { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(&uri), "{message}");
        assert!(message.to_lowercase().contains("refused"), "{message}");
    }

    #[tokio::test]
    async fn other_schemes_and_bare_paths_are_unsupported() {
        let client = http_client().unwrap();
        for uri in ["ftp://host/train.csv", "data/train.csv", "/data/train.csv", ""] {
            let err = fingerprint(&client, &StorageConfig::default(), uri).await.unwrap_err();
            assert!(matches!(&err, DataError::Unsupported(u) if u == uri), "{uri}: {err:?}");
        }
        let err = fingerprint(&client, &StorageConfig::default(), "ftp://host/train.csv").await.unwrap_err();
        assert!(err.to_string().contains("\"ftp://host/train.csv\""), "{err}");

        let err = fingerprint(&client, &StorageConfig::default(), "file://relative/train.csv").await.unwrap_err();
        assert!(matches!(err, DataError::InvalidUri { .. }), "{err:?}");
    }
}
