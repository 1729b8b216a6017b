//! Legacy (unaggregated) discovery documents: /version, /api, /apis, /api/v1, /apis/<g>[/<v>].
//! kubectl falls back to these when aggregated discovery is not offered.

use serde_json::{Value, json};

use crate::registry::{Registry, ResourceType};

/// The version localplane reports for itself (API server and kubelet).
pub const GIT_VERSION: &str = "v1.32.0-localplane";

pub fn version() -> Value {
    json!({
        "major": "1", "minor": "32", "gitVersion": GIT_VERSION,
        "gitCommit": "localplane", "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "rust", "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH)
    })
}

pub fn api_versions(addr: &str) -> Value {
    json!({
        "kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr}]
    })
}

fn group_entry(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> =
        versions.iter().map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v})).collect();
    json!({"name": group, "versions": vs.clone(), "preferredVersion": vs.first().cloned().unwrap_or(json!({}))})
}

pub fn api_group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> =
        registry.group_versions().iter().filter(|(g, _)| !g.is_empty()).map(|(g, vs)| group_entry(g, vs)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn api_group(registry: &Registry, group: &str) -> Option<Value> {
    let gv = registry.group_versions();
    let vs = gv.get(group)?;
    let mut g = group_entry(group, vs);
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    Some(g)
}

pub fn verbs(rt: &ResourceType) -> Vec<&'static str> {
    if rt.create_only {
        return vec!["create"];
    }
    vec!["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
        .into_iter()
        .filter(|v| *v != "deletecollection" || rt.strategy.deletes_collections())
        .collect()
}

/// A subresource as discovery lists it: its name and what it answers with.
pub struct Subresource {
    pub name: &'static str,
    /// (group, version, kind) of the response; the parent's kind for `status`.
    pub response: (String, String, String),
    pub verbs: &'static [&'static str],
}

pub fn subresources(rt: &ResourceType) -> Vec<Subresource> {
    let core = rt.group.is_empty();
    let own = || (rt.group.clone(), rt.version.clone(), rt.kind.clone());
    let other = |g: &str, v: &str, k: &str| (g.to_string(), v.to_string(), k.to_string());
    let mut out = vec![];
    if rt.status {
        out.push(Subresource { name: "status", response: own(), verbs: &["get", "patch", "update"] });
    }
    if rt.scale.is_some() {
        out.push(Subresource {
            name: "scale",
            response: other("autoscaling", "v1", "Scale"),
            verbs: &["get", "patch", "update"],
        });
    }
    if core && rt.kind == "Pod" {
        out.push(Subresource { name: "eviction", response: other("policy", "v1", "Eviction"), verbs: &["create"] });
    }
    if core && rt.kind == "ServiceAccount" {
        out.push(Subresource {
            name: "token",
            response: other("authentication.k8s.io", "v1", "TokenRequest"),
            verbs: &["create"],
        });
    }
    if rt.log {
        out.push(Subresource { name: "log", response: own(), verbs: &["get"] });
    }
    out
}

pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut resources = vec![];
    for rt in registry.all().filter(|t| t.group == group && t.version == version) {
        let mut r = json!({
            "name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
            "kind": rt.kind, "verbs": verbs(rt), "storageVersionHash": "",
        });
        if !rt.short_names.is_empty() {
            r["shortNames"] = json!(rt.short_names);
        }
        if !rt.categories.is_empty() {
            r["categories"] = json!(rt.categories);
        }
        resources.push(r);
        for sub in subresources(rt) {
            let (g, v, kind) = sub.response;
            let mut entry = json!({
                "name": format!("{}/{}", rt.plural, sub.name), "singularName": "", "namespaced": rt.namespaced,
                "kind": kind, "verbs": sub.verbs
            });
            if (g.as_str(), v.as_str()) != (rt.group.as_str(), rt.version.as_str()) {
                entry["group"] = json!(g);
                entry["version"] = json!(v);
            }
            resources.push(entry);
        }
    }
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}))
}
