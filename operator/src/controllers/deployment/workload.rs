//! The Deployment and Service that serve a ModelDeployment's model. Pure: the same deployment and
//! model always give the same objects, so a model is one pod template (one ReplicaSet), and
//! applying an earlier model's template again is a rollback to its ReplicaSet.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, Lifecycle, LifecycleHandler,
    ObjectFieldSelector, PodReadinessGate, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SeccompProfile,
    SecurityContext, Service, ServicePort, ServiceSpec, SleepAction, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};

use crate::api::{ModelDeployment, RolloutStrategy, ServedModel, StorageAccess};
use crate::controllers::pod_options::add_to;
use crate::controllers::shared_volumes::artifact_volume;
use crate::controllers::{Settings, labels};

/// The server container's name.
pub const CONTAINER: &str = "server";
/// The name of the server's port, which the Service and the probe refer to.
const PORT_NAME: &str = "http";
/// How long a stopping server pod keeps serving before its SIGTERM.
const DRAIN_SECONDS: i64 = 5;
/// The variables of the serving contract: the operator sets them, `serving.env` cannot.
const CONTRACT_ENV: [&str; 5] = ["MODEL_URI", "MODEL_DIGEST", "MODEL_NAME", "PORT", "POD_IP"];

/// The labels every child of `md` carries; the first two select its pods.
pub fn child_labels(md: &ModelDeployment) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::DEPLOYMENT.to_string(), md.name_any()),
        (labels::MANAGED_BY.to_string(), "trainloop".to_string()),
    ])
}

/// The in-cluster URL of the Service.
pub fn endpoint(md: &ModelDeployment) -> String {
    format!("http://{}.{}.svc:{}", md.name_any(), md.namespace().unwrap_or_default(), md.spec.serving.port)
}

/// The Deployment serving `model`, owned by `md` (`None` when `md` has no name or uid yet); the
/// shared artifact volume of `settings`, if any, is mounted read-only.
pub fn deployment(md: &ModelDeployment, model: &ServedModel, settings: &Settings) -> Option<Deployment> {
    let owner = md.controller_owner_ref(&())?;
    let serving = &md.spec.serving;
    let rollout = &md.spec.rollout;
    let selector = child_labels(md);
    let mut labels = selector.clone();
    labels.insert(labels::RUN.into(), model.run.clone());
    let annotations = BTreeMap::from([
        (labels::RUN.to_string(), model.run.clone()),
        (labels::ARTIFACT_DIGEST.to_string(), model.artifact_digest.clone()),
    ]);
    let strategy = match rollout.strategy {
        // No old pod goes before a new one is Ready, and Ready includes the smoke test's gate.
        RolloutStrategy::RollingUpdate => DeploymentStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateDeployment {
                max_surge: Some(IntOrString::String("25%".into())),
                max_unavailable: Some(IntOrString::Int(0)),
            }),
        },
        RolloutStrategy::Recreate => DeploymentStrategy { type_: Some("Recreate".into()), rolling_update: None },
    };
    Some(Deployment {
        metadata: ObjectMeta {
            name: Some(md.name_any()),
            namespace: md.namespace(),
            labels: Some(labels),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: DeploymentSpec {
            replicas: Some(serving.replicas),
            selector: LabelSelector { match_labels: Some(selector.clone()), ..LabelSelector::default() },
            strategy: Some(strategy),
            progress_deadline_seconds: Some(rollout.progress_deadline_seconds),
            revision_history_limit: Some(rollout.keep_previous.max(1)),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(selector),
                    annotations: Some(annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec(md, model, artifact_volume(settings, true))),
            },
            ..DeploymentSpec::default()
        },
        status: None,
    })
}

fn pod_spec(md: &ModelDeployment, model: &ServedModel, volume: Option<(Volume, VolumeMount)>) -> PodSpec {
    let (volume, mount) = volume.unzip();
    let serving = &md.spec.serving;
    let value = |name: &str, value: &str| EnvVar { name: name.into(), value: Some(value.into()), value_from: None };
    let mut env = vec![
        value("MODEL_URI", &model.artifact_uri),
        value("MODEL_DIGEST", &model.artifact_digest),
        value("MODEL_NAME", &md.name_any()),
        value("PORT", &serving.port.to_string()),
        EnvVar {
            name: "POD_IP".into(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector { field_path: "status.podIP".into(), api_version: None }),
                ..EnvVarSource::default()
            }),
        },
    ];
    env.extend(serving.env.iter().flatten().filter(|e| !CONTRACT_ENV.contains(&e.name.as_str())).cloned());
    let mut container = Container {
        name: CONTAINER.into(),
        image: Some(serving.image.clone()),
        command: serving.command.clone(),
        args: serving.args.clone(),
        env: Some(env),
        // Storage credentials by reference: `env` above wins over the Secret's keys.
        env_from: StorageAccess::env_from(md.spec.storage.as_ref()),
        volume_mounts: mount.map(|m| vec![m]),
        ports: Some(vec![ContainerPort {
            name: Some(PORT_NAME.into()),
            container_port: serving.port,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        readiness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some(md.spec.rollout.readiness_path.clone()),
                port: IntOrString::String(PORT_NAME.into()),
                ..HTTPGetAction::default()
            }),
            period_seconds: Some(2),
            failure_threshold: Some(3),
            ..Probe::default()
        }),
        // Endpoints learn of a stopping pod while it already got its signal: it keeps serving
        // that long first, so replacing pods fails no request, whatever the server does on
        // SIGTERM.
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                sleep: Some(SleepAction { seconds: DRAIN_SECONDS }),
                ..LifecycleHandler::default()
            }),
            post_start: None,
            stop_signal: None,
        }),
        // A server that refuses its model says why in its last log lines: the rollout quotes them.
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            allow_privilege_escalation: Some(false),
            privileged: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), add: None }),
            seccomp_profile: Some(runtime_default()),
            ..SecurityContext::default()
        }),
        ..Container::default()
    };
    let mut pod = PodSpec {
        volumes: volume.map(|v| vec![v]),
        readiness_gates: Some(vec![PodReadinessGate { condition_type: labels::MODEL_VERIFIED.into() }]),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            seccomp_profile: Some(runtime_default()),
            ..PodSecurityContext::default()
        }),
        ..PodSpec::default()
    };
    // The options' service account keeps its API token unmounted, as set above.
    add_to(&serving.pod, &mut pod, &mut container);
    pod.containers = vec![container];
    pod
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile { type_: "RuntimeDefault".into(), localhost_profile: None }
}

/// The Service in front of `md`'s Ready pods, owned by `md`.
pub fn service(md: &ModelDeployment) -> Option<Service> {
    let owner = md.controller_owner_ref(&())?;
    Some(Service {
        metadata: ObjectMeta {
            name: Some(md.name_any()),
            namespace: md.namespace(),
            labels: Some(child_labels(md)),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(child_labels(md)),
            ports: Some(vec![ServicePort {
                name: Some(PORT_NAME.into()),
                port: md.spec.serving.port,
                target_port: Some(IntOrString::String(PORT_NAME.into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}

/// The model a server pod (or pod template) runs, from its annotations: (run, artifact digest).
pub fn model_of(meta: &ObjectMeta) -> Option<(&str, &str)> {
    let annotations = meta.annotations.as_ref()?;
    Some((annotations.get(labels::RUN)?.as_str(), annotations.get(labels::ARTIFACT_DIGEST)?.as_str()))
}

#[cfg(test)]
pub(super) mod tests {
    use serde_json::json;

    use super::*;

    pub fn model_deployment(extra: serde_json::Value) -> ModelDeployment {
        let mut md = json!({
            "apiVersion": "trainloop.dev/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"name": "churn", "namespace": "ml", "uid": "md-uid"},
            "spec": {"source": {"pipelineRef": {"name": "churn"}},
                     "serving": {"image": "server:1", "port": 9000, "replicas": 2,
                                 "env": [{"name": "LOG", "value": "debug"}, {"name": "MODEL_URI", "value": "evil"}],
                                 "resources": {"limits": {"cpu": "1"}}},
                     "rollout": {"readinessPath": "/ready"}}
        });
        if let (Some(spec), Some(extra)) = (md["spec"].as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        serde_json::from_value(md).unwrap()
    }

    pub fn model(run: &str, digest: &str) -> ServedModel {
        ServedModel {
            run: run.into(),
            artifact_uri: format!("file:///a/{run}/model.json"),
            artifact_digest: digest.into(),
            ..ServedModel::default()
        }
    }

    fn container(d: &Deployment) -> Container {
        d.spec.template.spec.as_ref().unwrap().containers[0].clone()
    }

    #[test]
    fn the_server_gets_the_contract_env_and_user_env_cannot_override_it() {
        let d = deployment(&model_deployment(json!({})), &model("churn-3", "sha256:aa"), &Settings::new("file:///a"))
            .unwrap();
        let env: Vec<(String, Option<String>)> =
            container(&d).env.unwrap().into_iter().map(|e| (e.name, e.value)).collect();
        let get = |name: &str| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        assert_eq!(get("MODEL_URI"), Some(Some("file:///a/churn-3/model.json".into())));
        assert_eq!(get("MODEL_DIGEST"), Some(Some("sha256:aa".into())));
        assert_eq!(get("MODEL_NAME"), Some(Some("churn".into())));
        assert_eq!(get("PORT"), Some(Some("9000".into())));
        assert_eq!(get("LOG"), Some(Some("debug".into())));
        assert_eq!(env.iter().filter(|(n, _)| n == "MODEL_URI").count(), 1, "{env:?}");
        assert_eq!(container(&d).env_from, None, "no storage Secret named, none used");
        let with_secret = model_deployment(json!({"storage": {"secretRef": {"name": "s3-credentials"}}}));
        let d = deployment(&with_secret, &model("churn-3", "sha256:aa"), &Settings::new("file:///a")).unwrap();
        let secret = container(&d).env_from.unwrap()[0].secret_ref.clone().unwrap();
        assert_eq!(secret.name, "s3-credentials");
    }

    #[test]
    fn a_service_account_for_workload_identity_gets_no_api_token() {
        let mut md = model_deployment(json!({}));
        md.spec.serving.pod.service_account_name = Some("model-reader".into());
        let pod = deployment(&md, &model("churn-3", "sha256:aa"), &Settings::new("file:///a"))
            .unwrap()
            .spec
            .template
            .spec
            .unwrap();
        assert_eq!(pod.service_account_name.as_deref(), Some("model-reader"));
        assert_eq!(pod.automount_service_account_token, Some(false));
    }

    #[test]
    fn the_pod_options_reach_the_server_pod_beside_the_artifact_volume() {
        let md = model_deployment(json!({}));
        let mut md_with = md.clone();
        md_with.spec.serving.pod = serde_json::from_value(json!({
            "resources": {"limits": {"nvidia.com/gpu": "1"}},
            "envFrom": [{"secretRef": {"name": "server-settings"}}],
            "volumes": [{"name": "cache", "emptyDir": {}}],
            "volumeMounts": [{"name": "cache", "mountPath": "/cache"}],
            "nodeSelector": {"gpu": "t4"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
            "imagePullSecrets": [{"name": "registry"}],
            "priorityClassName": "serving"
        }))
        .unwrap();
        let settings = Settings { artifact_volume: Some("artifacts".into()), ..Settings::new("file:///a") };
        let d = deployment(&md_with, &model("churn-3", "sha256:aa"), &settings).unwrap();
        let pod = d.spec.template.spec.clone().unwrap();
        let volumes: Vec<&str> = pod.volumes.iter().flatten().map(|v| v.name.as_str()).collect();
        assert_eq!(volumes, ["trainloop-artifacts", "cache"]);
        let c = container(&d);
        let mounts: Vec<&str> = c.volume_mounts.iter().flatten().map(|m| m.mount_path.as_str()).collect();
        assert_eq!(mounts, ["/a", "/cache"]);
        assert_eq!(c.env_from.unwrap()[0].secret_ref.as_ref().unwrap().name, "server-settings");
        assert_eq!(c.resources.unwrap().limits.unwrap()["nvidia.com/gpu"].0, "1");
        assert_eq!(pod.node_selector.unwrap()["gpu"], "t4");
        assert_eq!(pod.tolerations.unwrap()[0].key.as_deref(), Some("nvidia.com/gpu"));
        assert_eq!(pod.image_pull_secrets.unwrap()[0].name, "registry");
        assert_eq!(pod.priority_class_name.as_deref(), Some("serving"));
        assert_eq!(pod.automount_service_account_token, Some(false), "still locked down");
        let plain = deployment(&md, &model("churn-3", "sha256:aa"), &settings).unwrap();
        assert_ne!(plain.spec.template, d.spec.template, "another pod template, another ReplicaSet");
    }

    #[test]
    fn an_artifact_volume_is_mounted_read_only_at_the_root() {
        let md = model_deployment(json!({}));
        let without = deployment(&md, &model("churn-3", "sha256:aa"), &Settings::new("file:///a")).unwrap();
        assert_eq!(container(&without).volume_mounts, None);
        let settings = Settings { artifact_volume: Some("artifacts".into()), ..Settings::new("file:///a") };
        let d = deployment(&md, &model("churn-3", "sha256:aa"), &settings).unwrap();
        let pod = d.spec.template.spec.clone().unwrap();
        assert_eq!(pod.volumes.unwrap()[0].persistent_volume_claim.as_ref().unwrap().claim_name, "artifacts");
        let mount = &container(&d).volume_mounts.unwrap()[0];
        assert_eq!((mount.mount_path.as_str(), mount.read_only), ("/a", Some(true)));
    }

    #[test]
    fn the_pod_is_locked_down_probed_and_gated_on_the_smoke_test() {
        let d = deployment(&model_deployment(json!({})), &model("churn-3", "sha256:aa"), &Settings::new("file:///a"))
            .unwrap();
        let c = container(&d);
        let security = c.security_context.clone().unwrap();
        assert_eq!(security.run_as_non_root, Some(true));
        assert_eq!(security.allow_privilege_escalation, Some(false));
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(security.capabilities.unwrap().drop, Some(vec!["ALL".to_string()]));
        assert_eq!(security.seccomp_profile.unwrap().type_, "RuntimeDefault");
        assert_eq!(c.readiness_probe.unwrap().http_get.unwrap().path.as_deref(), Some("/ready"));
        let drain = c.lifecycle.unwrap().pre_stop.unwrap().sleep.unwrap();
        assert_eq!(drain.seconds, DRAIN_SECONDS, "serves on while endpoints learn it stops");
        assert_eq!(c.ports.unwrap()[0].container_port, 9000);
        assert_eq!(c.resources.unwrap().limits.unwrap()["cpu"].0, "1");
        let pod = d.spec.template.spec.clone().unwrap();
        assert_eq!(pod.readiness_gates.unwrap()[0].condition_type, "trainloop.dev/model-verified");
        assert_eq!(pod.automount_service_account_token, Some(false));
    }

    #[test]
    fn each_model_is_its_own_template_and_the_same_model_the_same_template() {
        let md = model_deployment(json!({}));
        let a = deployment(&md, &model("churn-1", "sha256:aa"), &Settings::new("file:///a")).unwrap();
        let b = deployment(&md, &model("churn-2", "sha256:bb"), &Settings::new("file:///a")).unwrap();
        let template = |d: &Deployment| d.spec.template.clone();
        assert_ne!(template(&a), template(&b));
        assert_eq!(a, deployment(&md, &model("churn-1", "sha256:aa"), &Settings::new("file:///a")).unwrap());
        assert_eq!(model_of(template(&b).metadata.as_ref().unwrap()), Some(("churn-2", "sha256:bb")));
        assert_eq!(a.spec.selector, b.spec.selector, "the selector never changes");
        assert_eq!(a.metadata.owner_references.unwrap()[0].uid, "md-uid");
    }

    #[test]
    fn rolling_updates_never_drop_below_the_replicas_and_recreate_is_honoured() {
        let md = model_deployment(json!({}));
        let strategy = deployment(&md, &model("churn-1", "sha256:aa"), &Settings::new("file:///a"))
            .unwrap()
            .spec
            .strategy
            .unwrap();
        assert_eq!(strategy.rolling_update.unwrap().max_unavailable, Some(IntOrString::Int(0)));
        let md = model_deployment(json!({"rollout": {"strategy": "Recreate"}}));
        let strategy = deployment(&md, &model("churn-1", "sha256:aa"), &Settings::new("file:///a"))
            .unwrap()
            .spec
            .strategy
            .unwrap();
        assert_eq!(strategy.type_.as_deref(), Some("Recreate"));
    }

    #[test]
    fn the_service_selects_the_pods_by_deployment_on_the_named_port() {
        let md = model_deployment(json!({}));
        let spec = service(&md).unwrap().spec.unwrap();
        assert_eq!(spec.selector, Some(child_labels(&md)));
        assert_eq!(spec.ports.unwrap()[0].port, 9000);
        assert_eq!(endpoint(&md), "http://churn.ml.svc:9000");
    }
}
