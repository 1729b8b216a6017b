//! What RBAC sees of a client's requests: each request recorded as the attributes an authorizer
//! judges (API group, resource, subresource, verb), and RBAC rules matched against them.

use std::sync::{Arc, Mutex, PoisonError};

use kube::{Client, Config, client::ClientBuilder};
use serde::Deserialize;

/// One resource request as RBAC judges it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Access {
    pub group: String,
    /// With its subresource, as rules name it: `trainingruns/status`.
    pub resource: String,
    pub verb: String,
}

/// What RBAC makes of `method` on `path?query`; `None` for non-resource paths (discovery).
pub fn access(method: &http::Method, path: &str, query: Option<&str>) -> Option<Access> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return None,
    };
    let rest = match rest {
        ["namespaces", _namespace, rest @ ..] if !rest.is_empty() => rest,
        rest => rest,
    };
    let (resource, name) = match rest {
        [] => return None,
        [resource] => (resource.to_string(), None),
        [resource, name] => (resource.to_string(), Some(*name)),
        [resource, name, subresource, ..] => (format!("{resource}/{subresource}"), Some(*name)),
    };
    let watching = query.is_some_and(|q| q.split('&').any(|pair| pair == "watch=true" || pair == "watch=1"));
    let verb = match (method.as_str(), name) {
        ("GET", _) if watching => "watch",
        ("GET", Some(_)) => "get",
        ("GET", None) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", Some(_)) => "delete",
        ("DELETE", None) => "deletecollection",
        (other, _) => other,
    };
    Some(Access { group: group.to_string(), resource, verb: verb.to_string() })
}

/// Every resource request a client sent, in order.
#[derive(Clone, Default)]
pub struct Recorded(Arc<Mutex<Vec<Access>>>);

impl Recorded {
    pub fn accesses(&self) -> Vec<Access> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// A client for `config` that records what RBAC would judge of each of its requests.
pub fn recording_client(config: Config) -> anyhow::Result<(Client, Recorded)> {
    let recorded = Recorded::default();
    let sink = recorded.clone();
    let layer = tower::util::MapRequestLayer::new(move |request: http::Request<kube::client::Body>| {
        if let Some(access) = access(request.method(), request.uri().path(), request.uri().query()) {
            let mut sink = sink.0.lock().unwrap_or_else(PoisonError::into_inner);
            // A server-side apply creates its object when it is missing, and the API server then
            // authorizes `create` as well: the rules must grant both (a subresource is never created).
            if is_apply(&request) && !access.resource.contains('/') {
                sink.push(Access { verb: "create".into(), ..access.clone() });
            }
            sink.push(access);
        }
        request
    });
    Ok((ClientBuilder::try_from(config)?.with_layer(&layer).build(), recorded))
}

fn is_apply<B>(request: &http::Request<B>) -> bool {
    let content_type = request.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    request.method() == http::Method::PATCH && content_type.is_some_and(|t| t.starts_with("application/apply-patch"))
}

/// The rules of the chart's `files/rbac/<file>`.
pub fn chart_rules(file: &str) -> Vec<Rule> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/trainloop/files/rbac").join(file);
    serde_saphyr::from_str(&std::fs::read_to_string(path).expect("rules")).expect("rules are YAML")
}

/// The namespace and ServiceAccount the chart installs the operator as (by default).
pub const OPERATOR_NAMESPACE: &str = "trainloop-system";
pub const SERVICE_ACCOUNT: &str = "trainloop";

/// `admin_config`, impersonating the chart's ServiceAccount, which `admin` first binds to a
/// ClusterRole of the chart's rules: on a real API server, every request of a client made from
/// it passes real RBAC with exactly the chart's rights.
pub async fn as_chart_service_account(admin: &Client, mut admin_config: Config) -> anyhow::Result<Config> {
    use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    use kube::api::{Api, Patch, PatchParams};
    use serde_json::json;

    let rules: Vec<serde_json::Value> = chart_rules("rules.yaml")
        .into_iter()
        .map(|r| json!({"apiGroups": r.api_groups, "resources": r.resources, "verbs": r.verbs}))
        .collect();
    let apply = PatchParams::apply("trainloop-e2e");
    let role = "trainloop-e2e-chart-rules";
    Api::<Namespace>::all(admin.clone())
        .patch(
            OPERATOR_NAMESPACE,
            &apply,
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}})),
        )
        .await?;
    Api::<ServiceAccount>::namespaced(admin.clone(), OPERATOR_NAMESPACE)
        .patch(
            SERVICE_ACCOUNT,
            &apply,
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SERVICE_ACCOUNT}})),
        )
        .await?;
    let cluster_role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                              "metadata": {"name": role}, "rules": rules});
    Api::<ClusterRole>::all(admin.clone()).patch(role, &apply, &Patch::Apply(cluster_role)).await?;
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": role},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": OPERATOR_NAMESPACE}]});
    Api::<ClusterRoleBinding>::all(admin.clone()).patch(role, &apply, &Patch::Apply(binding)).await?;
    admin_config.auth_info.impersonate = Some(format!("system:serviceaccount:{OPERATOR_NAMESPACE}:{SERVICE_ACCOUNT}"));
    Ok(admin_config)
}

/// One RBAC policy rule, as the chart writes it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub verbs: Vec<String>,
}

impl Rule {
    /// Whether this rule allows `access` (no wildcards: the chart grants none).
    pub fn allows(&self, access: &Access) -> bool {
        self.api_groups.contains(&access.group)
            && self.resources.contains(&access.resource)
            && self.verbs.contains(&access.verb)
    }

    /// Every access this rule grants.
    pub fn grants(&self) -> Vec<Access> {
        let mut grants = Vec::new();
        for group in &self.api_groups {
            for resource in &self.resources {
                for verb in &self.verbs {
                    grants.push(Access { group: group.clone(), resource: resource.clone(), verb: verb.clone() });
                }
            }
        }
        grants
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(method: http::Method, uri: &str) -> Option<(String, String, String)> {
        let uri: http::Uri = uri.parse().ok()?;
        access(&method, uri.path(), uri.query()).map(|a| (a.group, a.resource, a.verb))
    }

    #[test]
    fn requests_read_as_rbac_reads_them() {
        let t = |g: &str, r: &str, v: &str| Some((g.to_string(), r.to_string(), v.to_string()));
        assert_eq!(
            judged(http::Method::GET, "/apis/trainloop.dev/v1alpha1/trainingruns?watch=true"),
            t("trainloop.dev", "trainingruns", "watch")
        );
        assert_eq!(judged(http::Method::GET, "/api/v1/namespaces/a/pods?labelSelector=x"), t("", "pods", "list"));
        assert_eq!(judged(http::Method::GET, "/apis/batch/v1/namespaces/a/jobs/j"), t("batch", "jobs", "get"));
        assert_eq!(
            judged(http::Method::PATCH, "/apis/trainloop.dev/v1alpha1/namespaces/a/trainingruns/r/status"),
            t("trainloop.dev", "trainingruns/status", "patch")
        );
        assert_eq!(judged(http::Method::DELETE, "/api/v1/namespaces/a/pods/p"), t("", "pods", "delete"));
        assert_eq!(
            judged(http::Method::POST, "/apis/events.k8s.io/v1/namespaces/a/events"),
            t("events.k8s.io", "events", "create")
        );
        assert_eq!(judged(http::Method::GET, "/api/v1/namespaces"), t("", "namespaces", "list"));
        assert_eq!(judged(http::Method::GET, "/apis/trainloop.dev/v1alpha1"), None);
        assert_eq!(judged(http::Method::GET, "/api"), None);
    }
}
