//! A kube client that counts the requests it sends, so the load the operator puts on the API
//! server is visible on `/metrics` (and measured by `make bench`).

use kube::{Client, Config, client::ClientBuilder};
use prometheus_client::{encoding::EncodeLabelSet, metrics::counter::Counter, metrics::family::Family};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `read` (get, list), `watch`, or `write` (create, update, patch, delete).
    pub kind: &'static str,
}

/// How a request counts: reads, watches and writes load an API server very differently.
pub fn request_kind(method: &http::Method, query: Option<&str>) -> &'static str {
    let watching = query.is_some_and(|q| q.split('&').any(|pair| pair == "watch=true" || pair == "watch=1"));
    match *method {
        http::Method::GET if watching => "watch",
        http::Method::GET | http::Method::HEAD => "read",
        _ => "write",
    }
}

/// A client for `config` whose every request increments `requests`.
pub fn counting_client(config: Config, requests: Family<RequestLabels, Counter>) -> kube::Result<Client> {
    let layer = tower::util::MapRequestLayer::new(move |request: http::Request<kube::client::Body>| {
        let kind = request_kind(request.method(), request.uri().query());
        requests.get_or_create(&RequestLabels { kind }).inc();
        request
    });
    Ok(ClientBuilder::try_from(config)?.with_layer(&layer).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_classified() {
        assert_eq!(request_kind(&http::Method::GET, Some("limit=500")), "read");
        assert_eq!(request_kind(&http::Method::GET, Some("watch=true&resourceVersion=5")), "watch");
        assert_eq!(request_kind(&http::Method::PATCH, None), "write");
        assert_eq!(request_kind(&http::Method::DELETE, None), "write");
    }
}
