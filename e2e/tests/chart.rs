//! The Helm chart (`charts/trainloop`) with the real Helm library (helm-sdkpy, Helm v4 inside):
//! lint, then install into localplane with a matrix of values and read back what Helm created,
//! and the values the schema refuses. Needs python3 with helm-sdkpy (`make test` installs it).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, api::PostParams};
use localplane::{Config, LocalPlane};
use serde_json::{Value, json};

/// What Helm answered for each case: the objects it created, or the error that refused the values.
type Answers = BTreeMap<String, Result<Vec<Value>, String>>;

/// Lint the chart and install each `(case, namespace, values)` in turn on `plane`, uninstalling
/// it again after; returns the lint result and the answers.
async fn helm(plane: &LocalPlane, cases: &[(&str, &str, Value)]) -> (Value, Answers) {
    let home = tempfile::tempdir().expect("temp dir");
    let kubeconfig = home.path().join("kubeconfig");
    std::fs::copy(plane.kubeconfig_path(), &kubeconfig).expect("copy kubeconfig");
    let input: Vec<Value> = cases
        .iter()
        .map(|(case, namespace, values)| json!({"case": case, "namespace": namespace, "values": values}))
        .collect();
    let stdout = trainloop_e2e::helm::drive(home.path(), &kubeconfig, "helm_chart.py", &[], &json!(input))
        .await
        .expect("the helm driver");
    let lines: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).expect("one JSON line per step")).collect();
    let answers = lines[1..]
        .iter()
        .map(|line| {
            let case = line["case"].as_str().expect("case").to_string();
            let answer = match line["error"].as_str() {
                Some(error) => Err(error.to_string()),
                None => Ok(serde_saphyr::from_multiple::<Value>(line["manifest"].as_str().expect("manifest"))
                    .expect("Helm's manifest is YAML")
                    .into_iter()
                    .filter(|doc| !doc.is_null())
                    .collect()),
            };
            (case, answer)
        })
        .collect();
    (lines[0]["lint"].clone(), answers)
}

fn kinds(objects: &[Value]) -> Vec<String> {
    let mut kinds: Vec<String> = objects
        .iter()
        .map(|o| {
            format!("{}/{}", o["kind"].as_str().unwrap_or_default(), o["metadata"]["name"].as_str().unwrap_or_default())
        })
        .collect();
    kinds.sort();
    kinds
}

fn one<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = objects.iter().filter(|o| o["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind} in {:?}", kinds(objects));
    found[0]
}

/// The rules a ClusterRole or Role of the chart must grant: the chart's lists of them.
fn chart_rules(file: &str) -> Value {
    let text = std::fs::read_to_string(trainloop_e2e::helm::chart_dir().join("files/rbac").join(file)).expect("rules");
    serde_saphyr::from_str(&text).expect("rules are YAML")
}

/// The secure defaults the issue lists, on the operator's pod.
fn assert_locked_down(deployment: &Value) {
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let security = &containers[0]["securityContext"];
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert!(containers[0]["resources"]["limits"]["memory"].is_string(), "{}", containers[0]["resources"]);
}

fn env(deployment: &Value) -> BTreeMap<String, Value> {
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| (e["name"].as_str().expect("name").to_string(), e["value"].clone()))
        .collect()
}

async fn create_namespace(plane: &LocalPlane, name: &str) {
    let api: Api<Namespace> = Api::all(plane.client().await.expect("client"));
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
    api.create(&PostParams::default(), &ns).await.expect("create namespace");
}

/// A stand-in for the Prometheus operator's CRD, so that the API server knows the ServiceMonitor.
async fn install_service_monitor_crd(plane: &LocalPlane) {
    let api: Api<CustomResourceDefinition> = Api::all(plane.client().await.expect("client"));
    let crd = json!({
        "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com", "scope": "Namespaced",
            "names": {"kind": "ServiceMonitor", "plural": "servicemonitors", "singular": "servicemonitor", "listKind": "ServiceMonitorList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
        }
    });
    api.create(&PostParams::default(), &serde_json::from_value(crd).expect("crd")).await.expect("create CRD");
    kube::runtime::wait::await_condition(
        api,
        "servicemonitors.monitoring.coreos.com",
        kube::runtime::wait::conditions::is_crd_established(),
    )
    .await
    .expect("established");
}

#[tokio::test]
async fn the_chart_lints_renders_every_variant_and_refuses_bad_values() {
    let plane = LocalPlane::start(Config::default()).await.expect("localplane");
    for namespace in ["team-a", "team-b"] {
        create_namespace(&plane, namespace).await;
    }
    install_service_monitor_crd(&plane).await;
    let every_optional_object = json!({
        "image": {"repository": "registry.example/trainloop", "tag": "0.1.0@sha256:0123", "pullPolicy": "Always"},
        "imagePullSecrets": [{"name": "registry"}],
        "logFormat": "text",
        "artifacts": {"root": "s3://models/trainloop", "credentialsSecret": "artifact-credentials"},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "ml", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms":
            [{"matchExpressions": [{"key": "pool", "operator": "In", "values": ["system"]}]}]}}},
        "metrics": {"serviceMonitor": {"enabled": true, "labels": {"release": "prometheus"}}},
        "alertReceiver": {"enabled": true},
        "podDisruptionBudget": {"enabled": true},
        "networkPolicy": {"enabled": true,
            "metricsFrom": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}],
            "alertReceiverFrom": [{"podSelector": {"matchLabels": {"app": "alertmanager"}}}],
            "egress": {"cidrs": ["10.0.0.1/32"]}},
        "crds": {"install": false}
    });
    let shared_volumes =
        json!({"artifacts": {"volume": "artifacts"}, "data": {"volume": "datasets", "dir": "/srv/data"}});
    let local_files = json!({"localFiles": true});
    let refused: [(&str, Value, &str); 10] = [
        ("unknown key", json!({"replica": 1}), "additional properties 'replica' not allowed"),
        ("unknown nested key", json!({"image": {"registry": "x"}}), "additional properties 'registry' not allowed"),
        ("string for a number", json!({"replicas": "1"}), "got string, want integer"),
        ("wrong type of map", json!({"nodeSelector": ["linux"]}), "got array, want object"),
        ("log format", json!({"logFormat": "xml"}), "'/logFormat'"),
        ("artifact root", json!({"artifacts": {"root": "/var/lib/trainloop"}}), "'/artifacts/root'"),
        ("data dir", json!({"data": {"volume": "datasets", "dir": "data"}}), "'/data/dir'"),
        ("namespace name", json!({"watchNamespaces": ["Team_A"]}), "'/watchNamespaces/0'"),
        ("bind address with a port", json!({"metrics": {"bindAddress": "0.0.0.0:8080"}}), "'/metrics/bindAddress'"),
        (
            "two replicas without leader election",
            json!({"replicas": 2, "leaderElection": {"enabled": false}}),
            "'/leaderElection/enabled'",
        ),
    ];
    let mut cases = vec![
        ("defaults", "trainloop-system", json!({})),
        ("namespaced", "trainloop-system", json!({"watchNamespaces": ["team-a", "team-b"]})),
        ("high availability", "trainloop-system", json!({"replicas": 2, "podDisruptionBudget": {"enabled": true}})),
        ("no election", "trainloop-system", json!({"leaderElection": {"enabled": false}})),
        ("every optional object", "trainloop-system", every_optional_object),
        ("shared volumes", "trainloop-system", shared_volumes),
        ("local files", "trainloop-system", local_files),
    ];
    cases.extend(refused.iter().map(|(case, values, _)| (*case, "trainloop-system", values.clone())));
    let (lint, answers) = helm(&plane, &cases).await;
    assert_eq!(lint["Errors"], Value::Null, "lint: {lint}");

    // Defaults: cluster-wide rules, the CRDs kept on uninstall, the metrics Service, nothing optional.
    let defaults = answers["defaults"].as_ref().expect("defaults install");
    assert_eq!(
        kinds(defaults),
        [
            "ClusterRole/trainloop",
            "ClusterRoleBinding/trainloop",
            "CustomResourceDefinition/driftpolicies.trainloop.dev",
            "CustomResourceDefinition/modeldeployments.trainloop.dev",
            "CustomResourceDefinition/trainingpipelines.trainloop.dev",
            "CustomResourceDefinition/trainingruns.trainloop.dev",
            "Deployment/trainloop",
            "Role/trainloop-leader-election",
            "RoleBinding/trainloop-leader-election",
            "Service/trainloop-metrics",
            "ServiceAccount/trainloop",
        ]
    );
    assert_eq!(one(defaults, "ClusterRole")["rules"], chart_rules("rules.yaml"));
    let lease_role = one(defaults, "Role");
    assert_eq!(lease_role["metadata"]["namespace"], "trainloop-system");
    assert_eq!(lease_role["rules"], chart_rules("leader-election-rules.yaml"));
    for crd in defaults.iter().filter(|o| o["kind"] == "CustomResourceDefinition") {
        assert_eq!(crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep");
    }
    assert_eq!(one(defaults, "ServiceAccount")["automountServiceAccountToken"], false);
    let deployment = one(defaults, "Deployment");
    assert_locked_down(deployment);
    assert_eq!(deployment["spec"]["replicas"], 1);
    let defaults_env = env(deployment);
    assert_eq!(defaults_env["TRAINLOOP_LOG_FORMAT"], "json");
    assert_eq!(defaults_env["TRAINLOOP_METRICS_ADDR"], "0.0.0.0:8080");
    let args = &deployment["spec"]["template"]["spec"]["containers"][0]["args"];
    assert_eq!(args, &json!(["run", "--service-account-dir", "/var/run/secrets/kubernetes.io/serviceaccount"]));
    assert_eq!(defaults_env["TRAINLOOP_ARTIFACT_ROOT"], "file:///var/lib/trainloop/artifacts");
    assert!(!defaults_env.contains_key("TRAINLOOP_WATCH_NAMESPACES"));
    for unset in ["TRAINLOOP_ARTIFACT_VOLUME", "TRAINLOOP_DATA_VOLUME", "TRAINLOOP_DATA_DIR", "TRAINLOOP_LOCAL_FILES"] {
        assert!(!defaults_env.contains_key(unset), "{unset}");
    }
    let shared_deployment = one(answers["shared volumes"].as_ref().expect("shared volumes install"), "Deployment");
    // The operator reads profiles and fingerprints data where its pods do: same claims, same paths.
    let pod = &shared_deployment["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["volumeMounts"],
        json!([{"name": "tmp", "mountPath": "/tmp"},
            {"name": "artifacts", "mountPath": "/var/lib/trainloop/artifacts", "readOnly": true},
            {"name": "data", "mountPath": "/srv/data", "readOnly": true}])
    );
    assert_eq!(
        pod["volumes"][1],
        json!({"name": "artifacts", "persistentVolumeClaim": {"claimName": "artifacts", "readOnly": true}})
    );
    assert_eq!(
        pod["volumes"][2],
        json!({"name": "data", "persistentVolumeClaim": {"claimName": "datasets", "readOnly": true}})
    );
    let shared = env(shared_deployment);
    assert_eq!(shared["TRAINLOOP_ARTIFACT_VOLUME"], "artifacts");
    assert_eq!(shared["TRAINLOOP_DATA_VOLUME"], "datasets");
    assert_eq!(shared["TRAINLOOP_DATA_DIR"], "/srv/data");
    let local = env(one(answers["local files"].as_ref().expect("local files install"), "Deployment"));
    assert_eq!(local["TRAINLOOP_LOCAL_FILES"], "true");
    assert_eq!(defaults_env["TRAINLOOP_LEADER_ELECTION"], "true");
    assert_eq!(defaults_env["TRAINLOOP_LEASE_NAME"], "trainloop");

    // Two replicas: both candidates for the lease, rolled one at a time, a disruption budget.
    let ha = answers["high availability"].as_ref().expect("HA install");
    let deployment = one(ha, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(deployment["spec"]["strategy"], Value::Null, "rolling update: a standby is ready at once");
    assert_eq!(one(ha, "PodDisruptionBudget")["spec"]["maxUnavailable"], 1);
    assert_eq!(env(deployment)["TRAINLOOP_LEASE_DURATION_SECONDS"], "15");

    // Without an election: no Lease rights, and never two operators at once.
    let alone = answers["no election"].as_ref().expect("no-election install");
    assert!(!alone.iter().any(|o| o["kind"] == "Role"), "{:?}", kinds(alone));
    let deployment = one(alone, "Deployment");
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    assert!(!env(deployment).contains_key("TRAINLOOP_LEADER_ELECTION"));
    assert_eq!(deployment["spec"]["template"]["spec"]["containers"][0]["image"], "ghcr.io/trainloop/trainloop:0.1.0");

    // A list of namespaces: a Role and RoleBinding in each, nothing cluster-wide.
    let namespaced = answers["namespaced"].as_ref().expect("namespaced install");
    assert!(
        !namespaced.iter().any(|o| o["kind"].as_str().is_some_and(|k| k.starts_with("Cluster"))),
        "{:?}",
        kinds(namespaced)
    );
    for kind in ["Role", "RoleBinding"] {
        let mut namespaces: Vec<&str> = namespaced
            .iter()
            .filter(|o| o["kind"] == kind)
            .filter_map(|o| o["metadata"]["namespace"].as_str())
            .collect();
        namespaces.sort();
        assert_eq!(namespaces, ["team-a", "team-b", "trainloop-system"], "{kind} (the last for the Lease)");
    }
    for role in namespaced.iter().filter(|o| o["kind"] == "Role" && o["metadata"]["namespace"] != "trainloop-system") {
        assert_eq!(role["rules"], chart_rules("rules.yaml"));
    }
    assert_eq!(env(one(namespaced, "Deployment"))["TRAINLOOP_WATCH_NAMESPACES"], "team-a,team-b");

    // Every optional object on, the CRDs left to someone else.
    let full = answers["every optional object"].as_ref().expect("full install");
    assert_eq!(
        kinds(full),
        [
            "ClusterRole/trainloop",
            "ClusterRoleBinding/trainloop",
            "Deployment/trainloop",
            "NetworkPolicy/trainloop",
            "PodDisruptionBudget/trainloop",
            "Role/trainloop-leader-election",
            "RoleBinding/trainloop-leader-election",
            "Service/trainloop-alerts",
            "Service/trainloop-metrics",
            "ServiceAccount/trainloop",
            "ServiceMonitor/trainloop",
        ]
    );
    let deployment = one(full, "Deployment");
    assert_locked_down(deployment);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["containers"][0]["image"], "registry.example/trainloop:0.1.0@sha256:0123");
    assert_eq!(pod["containers"][0]["envFrom"][0]["secretRef"]["name"], "artifact-credentials");
    assert_eq!(pod["tolerations"][0]["key"], "ml");
    assert_eq!(pod["nodeSelector"]["kubernetes.io/os"], "linux");
    assert!(pod["affinity"]["nodeAffinity"].is_object());
    assert_eq!(env(deployment)["TRAINLOOP_ARTIFACT_ROOT"], "s3://models/trainloop");
    let policy = one(full, "NetworkPolicy");
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(policy["spec"]["ingress"].as_array().map(Vec::len), Some(2));
    assert_eq!(one(full, "ServiceMonitor")["metadata"]["labels"]["release"], "prometheus");

    for (case, _, expected) in refused {
        let error = answers[case].as_ref().expect_err(case);
        assert!(error.contains("values don't meet the specifications of the schema"), "{case}: {error}");
        assert!(error.contains(expected), "{case}: expected {expected:?} in {error}");
    }

    // Uninstalling every release left the CRDs in place.
    let crds: Api<CustomResourceDefinition> = Api::all(plane.client().await.expect("client"));
    for name in ["trainingpipelines", "trainingruns", "modeldeployments", "driftpolicies"] {
        assert!(crds.get_opt(&format!("{name}.trainloop.dev")).await.expect("get").is_some(), "{name} kept");
    }
    plane.shutdown().await;
}
