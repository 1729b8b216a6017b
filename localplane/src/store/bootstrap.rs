//! The objects every cluster has from its first moment: the system namespaces, the `kubernetes`
//! Service in `default` with its Endpoints and EndpointSlice pointing at the API server, the
//! Node of localplane's kubelet (Ready, with the machine's capacity), and the default
//! ClusterRoles. They are written before the kubeconfig exists, so no client ever sees a plane
//! without them.

use serde_json::{Value, json};

use super::State;
use crate::schema::FieldValidation;

/// What every aggregated default role may read (a subset of the real aggregated rules).
const READABLE: &[&str] = &[
    "pods",
    "pods/log",
    "pods/status",
    "services",
    "endpoints",
    "configmaps",
    "persistentvolumeclaims",
    "serviceaccounts",
    "events",
    "deployments",
    "deployments/scale",
    "replicasets",
    "replicasets/scale",
    "statefulsets",
    "statefulsets/scale",
    "jobs",
    "cronjobs",
    "leases",
    "poddisruptionbudgets",
    "networkpolicies",
    "endpointslices",
];

impl State {
    /// Namespaces only: what the store holds before it knows the API server's port.
    pub(super) fn seed_namespaces(&mut self) {
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            self.seed(
                "v1",
                "Namespace",
                "",
                json!({"metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
            );
        }
    }

    /// The rest of the bootstrap objects, once the API server listens on `api_port`.
    pub fn bootstrap(&mut self, api_port: u16) {
        let https = json!([{"name": "https", "port": api_port, "protocol": "TCP"}]);
        // The first address of the service range, as on a real cluster.
        let cluster_ip = self.cluster_ips.first().to_string();
        self.seed(
            "v1",
            "Service",
            "default",
            json!({
                "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
                         "sessionAffinity": "None", "ipFamilies": ["IPv4"],
                         "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster",
                         "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": api_port}]}
            }),
        );
        self.seed(
            "v1",
            "Endpoints",
            "default",
            json!({
                "metadata": {"name": "kubernetes", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
                "subsets": [{"addresses": [{"ip": crate::controllers::kubelet::HOST_IP}], "ports": https}]
            }),
        );
        self.seed(
            "discovery.k8s.io/v1",
            "EndpointSlice",
            "default",
            json!({
                "metadata": {"name": "kubernetes", "labels": {"kubernetes.io/service-name": "kubernetes"}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": [crate::controllers::kubelet::HOST_IP], "conditions": {"ready": true}}],
                "ports": https
            }),
        );
        self.seed(
            "v1",
            "Node",
            "",
            crate::controllers::kubelet::node::object(crate::controllers::kubelet::NODE_NAME, 0),
        );
        self.seed_cluster_roles();
    }

    fn seed_cluster_roles(&mut self) {
        let defaults = |name: &str, extra: Value| {
            let mut labels = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
            if let Some(m) = extra.as_object() {
                for (k, v) in m {
                    labels[k] = v.clone();
                }
            }
            json!({"name": name, "labels": labels,
                   "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}})
        };
        let read = json!({"apiGroups": ["", "apps", "batch", "coordination.k8s.io", "policy",
                                        "networking.k8s.io", "discovery.k8s.io"],
                          "resources": READABLE, "verbs": ["get", "list", "watch"]});
        let write = json!({"apiGroups": ["", "apps", "batch", "coordination.k8s.io", "policy",
                                         "networking.k8s.io"],
                           "resources": READABLE,
                           "verbs": ["create", "delete", "deletecollection", "patch", "update"]});
        let secrets = json!({"apiGroups": [""], "resources": ["secrets"],
                             "verbs": ["get", "list", "watch", "create", "delete", "deletecollection", "patch", "update"]});
        let rbac = json!({"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"],
                          "verbs": ["get", "list", "watch", "create", "delete", "deletecollection", "patch", "update"]});
        let aggregated = |to: &str| json!({"clusterRoleSelectors": [{"matchLabels": {format!("rbac.authorization.k8s.io/aggregate-to-{to}"): "true"}}]});
        let roles = [
            json!({"metadata": defaults("cluster-admin", json!({})),
                   "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                             {"nonResourceURLs": ["*"], "verbs": ["*"]}]}),
            json!({"metadata": defaults("admin", json!({})), "aggregationRule": aggregated("admin"),
                   "rules": [read.clone(), write.clone(), secrets.clone(), rbac]}),
            json!({"metadata": defaults("edit", json!({"rbac.authorization.k8s.io/aggregate-to-admin": "true"})),
                   "aggregationRule": aggregated("edit"), "rules": [read.clone(), write, secrets]}),
            json!({"metadata": defaults("view", json!({"rbac.authorization.k8s.io/aggregate-to-edit": "true"})),
                   "aggregationRule": aggregated("view"), "rules": [read]}),
        ];
        for role in roles {
            self.seed("rbac.authorization.k8s.io/v1", "ClusterRole", "", role);
        }
        self.seed(
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            "",
            json!({
                "metadata": defaults("cluster-admin", json!({})),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}]
            }),
        );
    }

    /// Creates one bootstrap object through the ordinary create path (defaults, UID, IPs).
    fn seed(&mut self, api_version: &str, kind: &str, ns: &str, mut obj: Value) {
        let Some(rt) = self.registry.by_kind(api_version, kind) else {
            return;
        };
        obj["apiVersion"] = json!(api_version);
        obj["kind"] = json!(kind);
        if let Err(e) = self.create(&rt, ns, obj, FieldValidation::Strict, false) {
            tracing::error!(%kind, error = %e.message, "bootstrap object refused");
        }
    }
}
