//! Parsing of request paths and query strings into what the handlers need.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::registry::{Registry, ResourceType};
use crate::server::errors::ApiError;

/// A request for a resource (or a collection of them).
#[derive(Debug, Clone)]
pub struct ResourcePath {
    /// The type the request names (its version is the one answered in).
    pub rt: Arc<ResourceType>,
    /// The type the objects are stored as: `rt` itself unless `rt` is a converted view.
    pub stored: Arc<ResourceType>,
    /// `None` for cluster-scoped types and for all-namespace collections.
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// Query parameters; empty pairs (`?&limit=500`) are ignored.
#[derive(Debug, Clone, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(q: Option<&str>) -> Self {
        let mut m = HashMap::new();
        for (k, v) in form_urlencoded::parse(q.unwrap_or("").as_bytes()) {
            if !k.is_empty() {
                m.insert(k.into_owned(), v.into_owned());
            }
        }
        Query(m)
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1"))
    }
}

/// Splits `/api/v1/...` or `/apis/<g>/<v>/...` into (group, version, rest segments).
pub fn split_group_version(path: &str) -> Option<(String, String, Vec<String>)> {
    let segs: Vec<String> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).map(percent_decode).collect();
    match segs.first().map(String::as_str) {
        Some("api") if segs.len() >= 2 => Some((String::new(), segs[1].clone(), segs[2..].to_vec())),
        Some("apis") if segs.len() >= 3 => Some((segs[1].clone(), segs[2].clone(), segs[3..].to_vec())),
        _ => None,
    }
}

fn percent_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

/// Resolves the resource segments after the group/version prefix.
pub fn resolve(
    registry: &Registry,
    group: &str,
    version: &str,
    rest: &[String],
    full_path: &str,
) -> Result<ResourcePath, ApiError> {
    let not_found = || ApiError::not_found_path(full_path);
    let lookup = |plural: &str| registry.lookup(group, version, plural);
    // /namespaces/{ns}/{plural}[/{name}[/{sub}]] when {plural} is a namespaced type.
    if rest.len() >= 3
        && rest[0] == "namespaces"
        && let Some(rt) = lookup(&rest[2]).filter(|t| t.namespaced)
    {
        if rest.len() > 5 {
            return Err(not_found());
        }
        return Ok(ResourcePath {
            stored: stored_type(registry, &rt),
            rt,
            namespace: Some(rest[1].clone()),
            name: rest.get(3).cloned(),
            subresource: rest.get(4).cloned(),
        });
    }
    if rest.is_empty() || rest.len() > 3 {
        return Err(not_found());
    }
    let rt = lookup(&rest[0]).ok_or_else(not_found)?;
    if rt.namespaced && rest.len() > 1 {
        // A namespaced object needs its namespace in the path.
        return Err(not_found());
    }
    Ok(ResourcePath {
        stored: stored_type(registry, &rt),
        rt,
        namespace: None,
        name: rest.get(1).cloned(),
        subresource: rest.get(2).cloned(),
    })
}

fn stored_type(registry: &Registry, rt: &Arc<ResourceType>) -> Arc<ResourceType> {
    rt.conversion.and_then(|c| registry.get_key(c.stored_key())).unwrap_or_else(|| rt.clone())
}

impl ResourcePath {
    /// A stored object as the requested version shows it.
    pub fn served<'v>(&self, stored: &'v Value) -> Cow<'v, Value> {
        match self.rt.conversion {
            Some(c) => Cow::Owned(c.to_served(stored)),
            None => Cow::Borrowed(stored),
        }
    }

    /// A request body (or a patched object) in the requested version, as it is stored.
    pub fn to_stored(&self, served: Value) -> Value {
        match self.rt.conversion {
            Some(c) => c.to_stored(served),
            None => served,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_paths() {
        let r = Registry::with_builtins();
        let (g, v, rest) = split_group_version("/api/v1/namespaces/default/pods/p/log").unwrap();
        let p = resolve(&r, &g, &v, &rest, "").unwrap();
        assert_eq!(
            (p.rt.plural.as_str(), p.namespace.as_deref(), p.name.as_deref(), p.subresource.as_deref()),
            ("pods", Some("default"), Some("p"), Some("log"))
        );
        let (g, v, rest) = split_group_version("/api/v1/namespaces/default").unwrap();
        let p = resolve(&r, &g, &v, &rest, "").unwrap();
        assert_eq!((p.rt.plural.as_str(), p.name.as_deref()), ("namespaces", Some("default")));
        let (g, v, rest) = split_group_version("/apis/apps/v1/deployments").unwrap();
        let p = resolve(&r, &g, &v, &rest, "").unwrap();
        assert_eq!((p.rt.kind.as_str(), p.namespace), ("Deployment", None));
        let (g, v, rest) = split_group_version("/apis/nope/v1/things").unwrap();
        assert!(resolve(&r, &g, &v, &rest, "").is_err());
        let q = Query::parse(Some("&limit=500&watch=1&fieldSelector=metadata.name%3Dw1"));
        assert!(q.flag("watch"));
        assert_eq!(q.get("fieldSelector"), Some("metadata.name=w1"));
    }
}
