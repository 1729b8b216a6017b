//! A kube client that counts the requests it sends, so the load the operator puts on the API
//! server is visible on `/metrics` (and measured by `make bench`).

use kube::{Client, Config, client::ClientBuilder};
use prometheus_client::{encoding::EncodeLabelSet, metrics::counter::Counter, metrics::family::Family};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `read` (get, list), `watch`, or `write` (create, update, patch, delete).
    pub kind: &'static str,
    /// The resource and subresource, e.g. `trainingruns/status`: where the load goes.
    pub resource: String,
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

/// The resource a request path names, with its subresource: `/api/v1/namespaces/ml/pods/p/log`
/// is `pods/log`, `/apis/trainloop.dev/v1alpha1/trainingruns` is `trainingruns`.
pub fn request_resource(path: &str) -> String {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest = match segments.as_slice() {
        ["api", _version, rest @ ..] | ["apis", _, _version, rest @ ..] => rest,
        _ => return "other".into(),
    };
    let rest = match rest {
        ["namespaces", _, rest @ ..] if !rest.is_empty() => rest,
        rest => rest,
    };
    match rest {
        [resource, _name, subresource, ..] => format!("{resource}/{subresource}"),
        [resource, ..] => resource.to_string(),
        [] => "other".into(),
    }
}

/// A client for `config` whose every request increments `requests`.
pub fn counting_client(config: Config, requests: Family<RequestLabels, Counter>) -> kube::Result<Client> {
    let layer = tower::util::MapRequestLayer::new(move |request: http::Request<kube::client::Body>| {
        let kind = request_kind(request.method(), request.uri().query());
        let resource = request_resource(request.uri().path());
        requests.get_or_create(&RequestLabels { kind, resource }).inc();
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

    #[test]
    fn requests_name_their_resource() {
        assert_eq!(request_resource("/api/v1/namespaces/ml/pods/p-1/log"), "pods/log");
        assert_eq!(
            request_resource("/apis/trainloop.dev/v1alpha1/namespaces/ml/trainingruns/r/status"),
            "trainingruns/status"
        );
        assert_eq!(request_resource("/apis/trainloop.dev/v1alpha1/trainingruns"), "trainingruns");
        assert_eq!(request_resource("/api/v1/namespaces/ml"), "namespaces");
        assert_eq!(request_resource("/apis/events.k8s.io/v1/namespaces/ml/events"), "events");
        assert_eq!(request_resource("/version"), "other");
    }
}
