//! Aggregated discovery (`apidiscovery.k8s.io` v2 and v2beta1 `APIGroupDiscoveryList`): every
//! group, version and resource of `/api` or `/apis` in one document, which kubectl 1.30+ and
//! kube's `Discovery::run_aggregated` ask for first. Content negotiation follows the Accept
//! list in order, so a client that prefers the legacy documents still gets them. As on a real
//! server the answer carries an ETag, and `If-None-Match` with the current one gets 304.

use std::hash::{Hash, Hasher};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::discovery::{subresources, verbs};
use crate::registry::{Registry, ResourceType};

/// Which aggregated version the Accept header prefers, if any (`None` = legacy documents).
pub fn negotiate(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers.get(header::ACCEPT).and_then(|a| a.to_str().ok()).unwrap_or("");
    for media in accept.split(',') {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        let has = |p: &str| params.contains(&p);
        if has("as=APIGroupDiscoveryList") && has("g=apidiscovery.k8s.io") {
            if has("v=v2") {
                return Some("v2");
            }
            if has("v=v2beta1") {
                return Some("v2beta1");
            }
            continue;
        }
        let base = params.first().copied().unwrap_or("");
        if matches!(base, "application/json" | "*/*" | "application/*" | "") {
            return None;
        }
    }
    None
}

fn resource(rt: &ResourceType) -> Value {
    let mut r = json!({
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": if rt.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": rt.singular,
        "verbs": verbs(rt),
    });
    if !rt.short_names.is_empty() {
        r["shortNames"] = json!(rt.short_names);
    }
    if !rt.categories.is_empty() {
        r["categories"] = json!(rt.categories);
    }
    let subs: Vec<Value> = subresources(rt)
        .into_iter()
        .map(|s| {
            let (group, version, kind) = s.response;
            json!({"subresource": s.name, "responseKind": {"group": group, "version": version, "kind": kind},
                   "verbs": s.verbs})
        })
        .collect();
    if !subs.is_empty() {
        r["subresources"] = json!(subs);
    }
    r
}

/// The list for `/api` (`core` = true: the core group only) or `/apis` (every other group).
pub fn document(registry: &Registry, core: bool, version: &str) -> Value {
    let items: Vec<Value> = registry
        .group_versions()
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> =
                        registry.all().filter(|t| t.group == group && &t.version == v).map(|t| resource(t)).collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": format!("apidiscovery.k8s.io/{version}"),
           "metadata": {}, "items": items})
}

/// The response, with its content type and ETag (304 when the client already has it).
pub fn response(headers: &HeaderMap, doc: &Value, version: &str) -> Response {
    let body = doc.to_string();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut hasher);
    let etag = format!("\"{:016X}\"", hasher.finish());
    let cached = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str());
    let mut r = if cached { StatusCode::NOT_MODIFIED.into_response() } else { (StatusCode::OK, body).into_response() };
    let ct = format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList");
    if let Ok(v) = HeaderValue::from_str(&ct) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn negotiates_in_preference_order() {
        let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(negotiate(&accept(kubectl)), Some("v2"));
        assert_eq!(
            negotiate(&accept("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList")),
            Some("v2beta1")
        );
        assert_eq!(
            negotiate(&accept(
                "application/json, application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
            )),
            None
        );
        assert_eq!(negotiate(&HeaderMap::new()), None);
    }

    #[test]
    fn the_etag_saves_a_second_download() {
        let doc = document(&Registry::with_builtins(), true, "v2");
        let first = response(&HeaderMap::new(), &doc, "v2");
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()[header::ETAG].clone();
        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(response(&again, &doc, "v2").status(), StatusCode::NOT_MODIFIED);
    }

    #[test]
    fn lists_every_group_with_subresources() {
        let r = Registry::with_builtins();
        let apis = document(&r, false, "v2");
        let groups: Vec<&str> =
            apis["items"].as_array().unwrap().iter().map(|g| g["metadata"]["name"].as_str().unwrap()).collect();
        assert!(groups.contains(&"apps") && groups.contains(&"authentication.k8s.io") && !groups.contains(&""));
        let core = document(&r, true, "v2");
        let pods = core["items"][0]["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "pods")
            .unwrap()
            .clone();
        let subs: Vec<&str> =
            pods["subresources"].as_array().unwrap().iter().map(|s| s["subresource"].as_str().unwrap()).collect();
        assert_eq!(subs, ["status", "eviction", "log"]);
    }
}
