//! The resource types served: the built-in kinds plus one per established CRD.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::convert::Conversion;
use crate::strategy::{self, Strategy};

/// An `additionalPrinterColumns` entry (also used for the few built-in columns).
#[derive(Debug, Clone)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub json_path: String,
    pub description: String,
    pub priority: i64,
}

/// Where a kind keeps what its `/scale` subresource shows (dotted JSON paths, as in a CRD's
/// `subresources.scale`).
#[derive(Debug, Clone, PartialEq)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    /// A string field holding the selector (CRDs); `None` = built from `spec.selector`.
    pub label_selector: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Has a `/status` subresource: main writes keep status, status writes keep the rest.
    pub status: bool,
    /// Has a `/log` subresource (pods).
    pub log: bool,
    /// Has a `/scale` subresource.
    pub scale: Option<ScalePaths>,
    /// Only POST is served (reviews such as TokenReview: nothing is stored).
    pub create_only: bool,
    pub printer_columns: Vec<PrinterColumn>,
    /// The openAPIV3Schema of a custom resource; `None` for built-ins.
    pub schema: Option<Arc<Value>>,
    /// Set for custom resources (strategic merge is refused for them).
    pub custom: bool,
    /// Set when the objects are stored as another type and converted (events.k8s.io Events).
    pub conversion: Option<Conversion>,
    /// What the kind does beyond the generic store's rules, looked up once, here.
    pub strategy: &'static dyn Strategy,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// The store key: one version is served per group/resource.
    pub fn key(&self) -> String {
        format!("{}/{}", self.group, self.plural)
    }

    /// `widgets.example.com` or `configmaps`, as used in error messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() { self.plural.clone() } else { format!("{}.{}", self.plural, self.group) }
    }

    /// Whether metadata.generation is kept (kinds with a spec).
    pub fn tracks_generation(&self) -> bool {
        self.custom || self.status
    }
}

#[derive(Debug, Clone, Default)]
pub struct Registry {
    types: BTreeMap<String, Arc<ResourceType>>,
    /// Bumped at every change: used as the OpenAPI hash so kubectl refreshes its cache.
    pub generation: u64,
}

impl Registry {
    pub fn with_builtins() -> Self {
        let mut r = Registry::default();
        for t in builtins() {
            r.insert(t);
        }
        r
    }

    pub fn insert(&mut self, t: ResourceType) {
        self.generation += 1;
        self.types.insert(t.key(), Arc::new(t));
    }

    pub fn remove(&mut self, key: &str) -> Option<Arc<ResourceType>> {
        self.generation += 1;
        self.types.remove(key)
    }

    pub fn get_key(&self, key: &str) -> Option<Arc<ResourceType>> {
        self.types.get(key).cloned()
    }

    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types.get(&format!("{group}/{plural}")).filter(|t| t.version == version).cloned()
    }

    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.types.values().find(|t| t.kind == kind && t.api_version() == api_version).cloned()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<ResourceType>> {
        self.types.values()
    }

    /// group -> versions served, in a stable order (core group "" first).
    pub fn group_versions(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for t in self.types.values() {
            let vs = out.entry(t.group.clone()).or_default();
            if !vs.contains(&t.version) {
                vs.push(t.version.clone());
            }
        }
        out
    }
}

struct B(ResourceType);

impl B {
    fn new(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> Self {
        B(ResourceType {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            singular: kind.to_lowercase(),
            namespaced,
            short_names: vec![],
            categories: vec![],
            status: false,
            log: false,
            scale: None,
            create_only: false,
            printer_columns: vec![],
            schema: None,
            custom: false,
            conversion: None,
            strategy: strategy::builtin(group, kind),
        })
    }
    fn short(mut self, names: &[&str]) -> Self {
        self.0.short_names = names.iter().map(|s| s.to_string()).collect();
        self
    }
    fn status(mut self) -> Self {
        self.0.status = true;
        self
    }
    fn scale(mut self) -> Self {
        self.0.scale = Some(ScalePaths {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: None,
        });
        self
    }
    fn stored_as(mut self, conversion: Conversion) -> Self {
        self.0.conversion = Some(conversion);
        self
    }
    fn create_only(mut self) -> Self {
        self.0.create_only = true;
        self
    }
    fn all(mut self) -> Self {
        self.0.categories = vec!["all".into()];
        self
    }
    fn col(mut self, name: &str, type_: &str, path: &str) -> Self {
        self.0.printer_columns.push(PrinterColumn {
            name: name.into(),
            type_: type_.into(),
            format: String::new(),
            json_path: path.into(),
            description: String::new(),
            priority: 0,
        });
        self
    }
}

fn builtins() -> Vec<ResourceType> {
    let mut pods = B::new("", "v1", "Pod", "pods", true)
        .short(&["po"])
        .status()
        .all()
        .col("Status", "string", ".status.phase")
        .col("IP", "string", ".status.podIP");
    pods.0.log = true;
    vec![
        B::new("", "v1", "Namespace", "namespaces", false).short(&["ns"]).status().col(
            "Status",
            "string",
            ".status.phase",
        ),
        B::new("", "v1", "ConfigMap", "configmaps", true).short(&["cm"]),
        B::new("", "v1", "Secret", "secrets", true).col("Type", "string", ".type"),
        B::new("", "v1", "ServiceAccount", "serviceaccounts", true).short(&["sa"]),
        pods,
        B::new("", "v1", "Service", "services", true)
            .short(&["svc"])
            .status()
            .all()
            .col("Type", "string", ".spec.type")
            .col("Cluster-IP", "string", ".spec.clusterIP"),
        B::new("", "v1", "Endpoints", "endpoints", true).short(&["ep"]),
        // Its Table is computed (server/event_table.rs).
        B::new("", "v1", "Event", "events", true).short(&["ev"]),
        // kubectl's Status column is computed ("Ready", "NotReady"); the condition that is
        // True shows the same for a healthy node.
        B::new("", "v1", "Node", "nodes", false)
            .short(&["no"])
            .status()
            .col("Status", "string", ".status.conditions[?(@.status==\"True\")].type")
            .col("Age", "date", ".metadata.creationTimestamp")
            .col("Version", "string", ".status.nodeInfo.kubeletVersion"),
        B::new("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true).short(&["pvc"]).status(),
        // One storage with the core Events, as on a real server.
        B::new("events.k8s.io", "v1", "Event", "events", true).short(&["ev"]).stored_as(Conversion::EventsV1),
        B::new("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", true).col(
            "AddressType",
            "string",
            ".addressType",
        ),
        B::new("apps", "v1", "Deployment", "deployments", true)
            .short(&["deploy"])
            .status()
            .scale()
            .all()
            .col("Ready", "integer", ".status.readyReplicas")
            .col("Up-to-date", "integer", ".status.updatedReplicas")
            .col("Available", "integer", ".status.availableReplicas"),
        B::new("apps", "v1", "ReplicaSet", "replicasets", true)
            .short(&["rs"])
            .status()
            .scale()
            .all()
            .col("Desired", "integer", ".spec.replicas")
            .col("Current", "integer", ".status.replicas")
            .col("Ready", "integer", ".status.readyReplicas"),
        B::new("apps", "v1", "StatefulSet", "statefulsets", true).short(&["sts"]).status().scale().all(),
        B::new("batch", "v1", "Job", "jobs", true).status().all().col("Succeeded", "integer", ".status.succeeded").col(
            "Failed",
            "integer",
            ".status.failed",
        ),
        B::new("batch", "v1", "CronJob", "cronjobs", true).short(&["cj"]).status().all(),
        B::new("coordination.k8s.io", "v1", "Lease", "leases", true),
        B::new("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", false).create_only(),
        B::new("rbac.authorization.k8s.io", "v1", "Role", "roles", true),
        B::new("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true),
        B::new("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false),
        B::new("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", false),
        B::new("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true).short(&["pdb"]).status(),
        B::new("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true).short(&["netpol"]),
        B::new("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", false)
            .short(&["crd", "crds"])
            .status()
            .col("Created At", "date", ".metadata.creationTimestamp"),
    ]
    .into_iter()
    .map(|b| b.0)
    .collect()
}

/// The resource type a stored CRD object serves (its first served version), or why it cannot.
pub fn from_crd(crd: &Value) -> Result<ResourceType, String> {
    let spec = crd.get("spec").ok_or("spec: Required value")?;
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let group = s(spec.get("group")).ok_or("spec.group: Required value")?;
    let names = spec.get("names").ok_or("spec.names: Required value")?;
    let plural = s(names.get("plural")).ok_or("spec.names.plural: Required value")?;
    let kind = s(names.get("kind")).ok_or("spec.names.kind: Required value")?;
    let singular = s(names.get("singular")).unwrap_or_else(|| kind.to_lowercase());
    let strs = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let scope = s(spec.get("scope")).unwrap_or_else(|| "Namespaced".into());
    let versions = spec.get("versions").and_then(Value::as_array).ok_or("spec.versions: Required value")?;
    let version = versions
        .iter()
        .find(|v| v.get("served").and_then(Value::as_bool).unwrap_or(true))
        .ok_or("spec.versions: Invalid value: no served version")?;
    let vname = s(version.get("name")).ok_or("spec.versions[0].name: Required value")?;
    let schema = version
        .pointer("/schema/openAPIV3Schema")
        .or_else(|| spec.pointer("/validation/openAPIV3Schema"))
        .cloned()
        .map(Arc::new);
    let printer_columns = version
        .get("additionalPrinterColumns")
        .and_then(Value::as_array)
        .map(|cols| {
            cols.iter()
                .filter_map(|c| {
                    Some(PrinterColumn {
                        name: s(c.get("name"))?,
                        type_: s(c.get("type")).unwrap_or_else(|| "string".into()),
                        format: s(c.get("format")).unwrap_or_default(),
                        json_path: s(c.get("jsonPath"))?,
                        description: s(c.get("description")).unwrap_or_default(),
                        priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(ResourceType {
        group,
        version: vname,
        kind,
        plural,
        singular,
        namespaced: scope != "Cluster",
        short_names: strs(names.get("shortNames")),
        categories: strs(names.get("categories")),
        status: version.pointer("/subresources/status").is_some(),
        log: false,
        scale: version.pointer("/subresources/scale").map(|sc| ScalePaths {
            spec_replicas: s(sc.get("specReplicasPath")).unwrap_or_else(|| ".spec.replicas".into()),
            status_replicas: s(sc.get("statusReplicasPath")).unwrap_or_else(|| ".status.replicas".into()),
            label_selector: s(sc.get("labelSelectorPath")),
        }),
        create_only: false,
        printer_columns,
        schema,
        custom: true,
        conversion: None,
        strategy: &strategy::Generic,
    })
}
