//! Reads a URI's bytes: file://, http(s):// or a plain path.

use std::sync::Once;
use std::time::Duration;

use crate::error::TrainError;

/// Long enough for a large CSV over a slow link, short enough to fail a stuck run.
const HTTP_TIMEOUT: Duration = Duration::from_secs(300);

pub fn read_uri(uri: &str) -> Result<Vec<u8>, TrainError> {
    let fail = |reason: String| TrainError::Fetch { uri: uri.to_string(), reason };
    if uri.starts_with("http://") || uri.starts_with("https://") {
        install_crypto_provider();
        let client =
            reqwest::blocking::Client::builder().timeout(HTTP_TIMEOUT).build().map_err(|e| fail(e.to_string()))?;
        let response = client.get(uri).send().and_then(|r| r.error_for_status()).map_err(|e| fail(e.to_string()))?;
        return response.bytes().map(|b| b.to_vec()).map_err(|e| fail(e.to_string()));
    }
    let path = file_path(uri).ok_or_else(|| fail("only file://, http:// and https:// are supported".into()))?;
    std::fs::read(path).map_err(|e| fail(e.to_string()))
}

/// The local path of a file:// URI or plain path; `None` for other schemes.
pub fn file_path(uri: &str) -> Option<&str> {
    match uri.strip_prefix("file://") {
        Some(path) => Some(path),
        None if !uri.contains("://") => Some(uri),
        None => None,
    }
}

/// reqwest is built without a bundled crypto provider so that the workspace
/// uses ring only; install it once before the first TLS client.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Fails only if another provider is already installed, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_file_uris_and_plain_paths() {
        assert_eq!(file_path("file:///tmp/a.csv"), Some("/tmp/a.csv"));
        assert_eq!(file_path("data/a.csv"), Some("data/a.csv"));
        assert_eq!(file_path("s3://bucket/a.csv"), None);
    }

    /// Answers one HTTP request on loopback with `status` and `body`.
    fn serve_once(status: &'static str, body: &'static [u8]) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(body);
            }
        });
        format!("http://{address}/data.csv")
    }

    #[test]
    fn reads_over_http_and_fails_on_an_error_status() {
        assert_eq!(read_uri(&serve_once("200 OK", b"x,y\n1,a\n")).unwrap(), b"x,y\n1,a\n");
        let err = read_uri(&serve_once("404 Not Found", b"")).unwrap_err();
        assert!(err.to_string().contains("404"), "{err}");
    }

    #[test]
    fn reports_the_uri_it_cannot_read() {
        let err = read_uri("file:///nonexistent/trainloop.csv").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/trainloop.csv"));
        assert!(read_uri("s3://bucket/a.csv").is_err());
    }
}
