//! Reads a URI's bytes: s3://, gs://, az://, file://, http(s):// or a plain path, with the
//! storage credentials of the process's environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`).

use std::sync::Once;

use trainloop_storage::{StorageConfig, blocking};

use crate::error::TrainError;

pub fn read_uri(uri: &str) -> Result<Vec<u8>, TrainError> {
    Ok(blocking::read(uri, &StorageConfig::from_env()).map_err(TrainError::Read)?.to_vec())
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
        assert!(err.to_string().starts_with("ObjectNotFound: cannot read http://"), "{err}");
    }

    #[test]
    fn reports_the_uri_it_cannot_read() {
        let err = read_uri("file:///nonexistent/trainloop.csv").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/trainloop.csv"));
        assert!(read_uri("ftp://host/a.csv").unwrap_err().to_string().contains("unsupported scheme"));
    }
}
