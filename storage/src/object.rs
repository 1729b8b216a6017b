//! Read, write and version one object.

use bytes::Bytes;
use object_store::{ObjectStoreExt, PutPayload};

use crate::config::StorageConfig;
use crate::error::{Problem, StorageError};
use crate::location::{Location, Scheme};
use crate::store::open;

/// The whole object at `uri`.
pub async fn read(uri: &str, config: &StorageConfig) -> Result<Bytes, StorageError> {
    let location = Location::parse(uri)?;
    let store = open(uri, &location, config)?;
    let failed = |e| StorageError::from_store(uri, e);
    store.get(&location.path).await.map_err(failed)?.bytes().await.map_err(failed)
}

/// Writes `bytes` as the object at `uri`, all or nothing: an object store publishes an object
/// only when its upload completes, and a local file is written aside and renamed into place, so
/// a reader never sees half an object.
pub async fn write(uri: &str, bytes: Bytes, config: &StorageConfig) -> Result<(), StorageError> {
    let location = Location::parse(uri)?;
    if location.scheme == Scheme::Http {
        return Err(StorageError::new(uri, Problem::ReadOnly));
    }
    let store = open(uri, &location, config)?;
    store.put(&location.path, PutPayload::from_bytes(bytes)).await.map_err(|e| StorageError::from_store(uri, e))?;
    Ok(())
}

/// A token that changes when the object at `uri` changes, read without downloading it:
/// `version:<id>` where the store versions objects, else `etag:<ETag>`, else the modification
/// time and size.
pub async fn version(uri: &str, config: &StorageConfig) -> Result<String, StorageError> {
    let location = Location::parse(uri)?;
    let store = open(uri, &location, config)?;
    let meta = store.head(&location.path).await.map_err(|e| StorageError::from_store(uri, e))?;
    Ok(match (meta.version, meta.e_tag) {
        (Some(version), _) => format!("version:{version}"),
        (None, Some(etag)) => format!("etag:{etag}"),
        (None, None) => format!("modified:{}/{}", meta.last_modified.to_rfc3339(), meta.size),
    })
}

/// The same for callers without an async runtime (the trainer): each call runs on a runtime of
/// its own.
pub mod blocking {
    use super::*;

    pub fn read(uri: &str, config: &StorageConfig) -> Result<Bytes, StorageError> {
        runtime(uri)?.block_on(super::read(uri, config))
    }

    pub fn write(uri: &str, bytes: Bytes, config: &StorageConfig) -> Result<(), StorageError> {
        runtime(uri)?.block_on(super::write(uri, bytes, config))
    }

    fn runtime(uri: &str) -> Result<tokio::runtime::Runtime, StorageError> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StorageError::new(uri, Problem::Other(format!("cannot start an I/O runtime: {e}"))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_uri(path: &std::path::Path) -> String {
        format!("file://{}", path.display())
    }

    #[tokio::test]
    async fn a_file_round_trip_creates_folders_and_versions_change_with_content() {
        let dir = tempfile::tempdir().unwrap();
        let uri = file_uri(&dir.path().join("runs/1/model.json"));
        let config = StorageConfig::default();
        write(&uri, Bytes::from_static(b"one"), &config).await.unwrap();
        assert_eq!(read(&uri, &config).await.unwrap(), "one");
        let first = version(&uri, &config).await.unwrap();
        write(&uri, Bytes::from_static(b"three"), &config).await.unwrap();
        assert_eq!(read(&uri, &config).await.unwrap(), "three");
        assert_ne!(version(&uri, &config).await.unwrap(), first);
        // Nothing is left beside the object from writing it.
        let names: Vec<_> =
            std::fs::read_dir(dir.path().join("runs/1")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["model.json"]);
    }

    #[tokio::test]
    async fn a_missing_object_and_a_write_over_http_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let uri = file_uri(&dir.path().join("missing.csv"));
        let error = read(&uri, &StorageConfig::default()).await.unwrap_err();
        assert_eq!(error.reason(), "ObjectNotFound", "{error}");
        assert!(error.to_string().contains(&uri), "{error}");
        let error = write("https://example.com/x", Bytes::new(), &StorageConfig::default()).await.unwrap_err();
        assert_eq!(error.reason(), "ReadOnlyStorage", "{error}");
    }

    #[tokio::test]
    async fn reads_over_http_and_names_a_refused_connection() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).await;
            let answer = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nx,y\n1,a\n";
            stream.write_all(answer.as_bytes()).await.unwrap();
        });
        let config = StorageConfig::default();
        assert_eq!(read(&format!("http://{address}/data.csv"), &config).await.unwrap(), "x,y\n1,a\n");
        server.await.unwrap();

        // The listener is gone: nothing answers on that port now.
        let mut config = StorageConfig::default();
        config.max_retries = 0;
        let error = read(&format!("http://{address}/data.csv"), &config).await.unwrap_err();
        assert_eq!(error.reason(), "StorageUnreachable", "{error}");
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        // Accepts the connection and holds it without a word until the test ends.
        let server = tokio::spawn(async move { listener.accept().await.map(|(stream, _)| stream) });
        let mut config = StorageConfig::default();
        config.timeout = std::time::Duration::from_millis(300);
        config.max_retries = 0;
        let error = read(&format!("http://{address}/data.csv"), &config).await.unwrap_err();
        assert_eq!(error.reason(), "StorageTimeout", "{error}");
        drop(server.await.unwrap());
    }

    #[test]
    fn the_blocking_calls_work_without_a_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let uri = file_uri(&dir.path().join("a.csv"));
        blocking::write(&uri, Bytes::from_static(b"a\n1\n"), &StorageConfig::default()).unwrap();
        assert_eq!(blocking::read(&uri, &StorageConfig::default()).unwrap(), "a\n1\n");
    }
}
