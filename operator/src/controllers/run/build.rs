//! Pure: the Job of a run, built from its frozen spec per the trainer contract.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, DownwardAPIVolumeFile, DownwardAPIVolumeSource, EnvVar, ObjectFieldSelector, PodSpec, PodTemplateSpec,
    Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::api::{StorageAccess, TrainingRun, TrainingRunSpec};
use crate::artifact::sha256_digest;
use crate::controllers::pod_options::{add_to, mount_clash};
use crate::controllers::shared_volumes::{artifact_volume, data_volume, unshared_file};
use crate::controllers::{Settings, labels};

/// Where the trainer finds its config files.
pub const CONFIG_DIR: &str = "/etc/trainloop";
/// Where the trainer writes its result (the Kubernetes default termination message path).
pub const TERMINATION_LOG: &str = "/dev/termination-log";
/// The pod volume of the config files.
const CONFIG_VOLUME: &str = "trainloop-config";
/// The container's name in the Job's pod.
pub const CONTAINER: &str = "trainer";

/// A run, checked and with everything the children need resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidatedRun {
    pub name: String,
    pub namespace: String,
    pub spec: TrainingRunSpec,
    pub owner: OwnerReference,
    /// The hyperparameter JSON the trainer reads, and its hash.
    pub config_json: String,
    pub config_hash: String,
    pub features_json: String,
    pub artifact_uri: String,
    /// The shared volumes and their mounts: artifacts (`--artifact-volume`), then data
    /// (`--data-volume`).
    pub shared_volumes: Vec<(Volume, VolumeMount)>,
}

/// Why a run cannot start as written: the field the user must fix, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{field} {problem}")]
pub struct InvalidRun {
    /// The path of the field, e.g. `spec.configHash` (or the operator's flag, e.g. `--artifact-root`).
    pub field: String,
    pub problem: String,
}

impl InvalidRun {
    fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        InvalidRun { field: field.into(), problem: problem.into() }
    }
}

/// Check a run and resolve its derived inputs.
pub fn validate(run: &TrainingRun, settings: &Settings) -> Result<ValidatedRun, InvalidRun> {
    let missing = |field| InvalidRun::new(field, "is missing");
    let name = run.metadata.name.clone().ok_or_else(|| missing("metadata.name"))?;
    let namespace = run.metadata.namespace.clone().ok_or_else(|| missing("metadata.namespace"))?;
    let owner = owner_reference(run).ok_or_else(|| missing("metadata.uid"))?;
    if run.spec.features.is_empty() {
        return Err(InvalidRun::new("spec.features", "is empty: declare the feature schema the trainer must check"));
    }
    let config_json = config_json(&run.spec.hyperparameters);
    let config_hash = sha256_digest(config_json.as_bytes());
    if let Some(declared) = &run.spec.config_hash
        && declared != &config_hash
    {
        return Err(InvalidRun::new(
            "spec.configHash",
            format!("{declared} does not match the hyperparameters ({config_hash}); remove it or fix it"),
        ));
    }
    let features_json =
        serde_json::to_string(&run.spec.features).map_err(|e| InvalidRun::new("spec.features", e.to_string()))?;
    let artifact_uri = format!("{}/{namespace}/{name}/", settings.artifact_root.trim_end_matches('/'));
    let shared_volumes: Vec<_> = artifact_volume(settings, false).into_iter().chain(data_volume(settings)).collect();
    let own_mounts = own_mounts(&shared_volumes);
    if let Some((field, problem)) = mount_clash(&run.spec.pod, &own_mounts) {
        return Err(InvalidRun::new(format!("spec.{field}"), problem));
    }
    let mounts: Vec<VolumeMount> =
        own_mounts.into_iter().chain(run.spec.pod.volume_mounts.iter().flatten().cloned()).collect();
    if let Some((field, problem)) = unshared_file(settings, &run.spec.data.uri, &mounts) {
        return Err(InvalidRun::new(field, problem));
    }
    Ok(ValidatedRun {
        name,
        namespace,
        spec: run.spec.clone(),
        owner,
        config_json,
        config_hash,
        features_json,
        artifact_uri,
        shared_volumes,
    })
}

/// The hyperparameters as the trainer reads them: a JSON object with sorted keys (a BTreeMap),
/// so that one set of hyperparameters always has one hash.
pub fn config_json(hyperparameters: &BTreeMap<String, String>) -> String {
    serde_json::to_string(hyperparameters).unwrap_or_else(|_| "{}".into())
}

fn owner_reference(run: &TrainingRun) -> Option<OwnerReference> {
    use kube::Resource;
    run.controller_owner_ref(&())
}

fn labels_of(run: &ValidatedRun) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (labels::MANAGED_BY.to_string(), "trainloop".to_string()),
        (labels::RUN.to_string(), run.name.clone()),
    ]);
    if let Some(pipeline) = &run.spec.pipeline {
        labels.insert(labels::PIPELINE.to_string(), pipeline.clone());
    }
    labels
}

fn metadata(run: &ValidatedRun, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(run.namespace.clone()),
        labels: Some(labels_of(run)),
        owner_references: Some(vec![run.owner.clone()]),
        ..ObjectMeta::default()
    }
}

/// The files the trainer reads from [`CONFIG_DIR`], each carried by a pod annotation (file name,
/// annotation, content). The Job's pod template holds them and a downward-API volume writes them
/// out: no ConfigMap to create per run (one write less, one object less).
pub fn config_files(run: &ValidatedRun) -> [(&'static str, &'static str, String); 2] {
    [
        ("config.json", "trainloop.dev/config.json", run.config_json.clone()),
        ("features.json", "trainloop.dev/features.json", run.features_json.clone()),
    ]
}

/// The volume that writes [`config_files`] into the trainer's [`CONFIG_DIR`].
fn config_volume(run: &ValidatedRun) -> Volume {
    let items = config_files(run)
        .into_iter()
        .map(|(file, annotation, _)| DownwardAPIVolumeFile {
            path: file.into(),
            field_ref: Some(ObjectFieldSelector {
                field_path: format!("metadata.annotations['{annotation}']"),
                ..ObjectFieldSelector::default()
            }),
            ..DownwardAPIVolumeFile::default()
        })
        .collect();
    Volume {
        name: CONFIG_VOLUME.into(),
        downward_api: Some(DownwardAPIVolumeSource { items: Some(items), ..DownwardAPIVolumeSource::default() }),
        ..Volume::default()
    }
}

/// Where [`config_volume`] is mounted.
fn config_mount() -> VolumeMount {
    VolumeMount {
        name: CONFIG_VOLUME.into(),
        mount_path: CONFIG_DIR.into(),
        read_only: Some(true),
        ..VolumeMount::default()
    }
}

/// The trainer's mounts of the operator's volumes: its config, then the shared volumes.
fn own_mounts(shared_volumes: &[(Volume, VolumeMount)]) -> Vec<VolumeMount> {
    std::iter::once(config_mount()).chain(shared_volumes.iter().map(|(_, mount)| mount.clone())).collect()
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar { name: name.into(), value: Some(value.into()), value_from: None }
}

/// The training Job: one pod, never restarted in place, retried up to `backoffLimit` times.
pub fn job(run: &ValidatedRun) -> Job {
    let spec = &run.spec;
    let mut environment = vec![
        env("TRAINLOOP_RUN", run.name.clone()),
        env("TRAINLOOP_DATA_URI", spec.data.uri.clone()),
        env("TRAINLOOP_ARTIFACT_URI", run.artifact_uri.clone()),
        env("TRAINLOOP_CONFIG", format!("{CONFIG_DIR}/config.json")),
        env("TRAINLOOP_CONFIG_HASH", run.config_hash.clone()),
        env("TRAINLOOP_SEED", spec.seed.to_string()),
        env("TRAINLOOP_FEATURES", format!("{CONFIG_DIR}/features.json")),
        // Where the result goes; a local runtime that relocates the file rewrites this too.
        env("TRAINLOOP_TERMINATION_LOG", TERMINATION_LOG),
    ];
    if let Some(version) = &spec.data.version {
        environment.push(env("TRAINLOOP_DATA_VERSION", version.clone()));
    }
    // The user's variables come last but may not override the contract's.
    for var in spec.env.iter().flatten() {
        if !environment.iter().any(|e| e.name == var.name) {
            environment.push(var.clone());
        }
    }
    let mut container = Container {
        name: CONTAINER.into(),
        image: Some(spec.image.clone()),
        command: spec.command.clone(),
        args: spec.args.clone(),
        env: Some(environment),
        // Storage credentials by reference: `env` above wins over the Secret's keys.
        env_from: StorageAccess::env_from(spec.storage.as_ref()),
        volume_mounts: Some(own_mounts(&run.shared_volumes)),
        termination_message_path: Some(TERMINATION_LOG.into()),
        // A trainer that crashes before writing its result still leaves its last log lines.
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Container::default()
    };
    let mut pod = PodSpec {
        restart_policy: Some("Never".into()),
        volumes: Some(
            std::iter::once(config_volume(run))
                .chain(run.shared_volumes.iter().map(|(volume, _)| volume.clone()))
                .collect(),
        ),
        ..PodSpec::default()
    };
    add_to(&spec.pod, &mut pod, &mut container);
    pod.containers = vec![container];
    let mut meta = metadata(run, run.name.clone());
    if let Some(queue) = &spec.queue_name {
        meta.labels.get_or_insert_with(BTreeMap::new).insert(labels::KUEUE_QUEUE.into(), queue.clone());
    }
    Job {
        metadata: meta,
        spec: Some(JobSpec {
            backoff_limit: Some(spec.backoff_limit.unwrap_or(0)),
            active_deadline_seconds: spec.active_deadline_seconds,
            // Kueue admits suspended Jobs; without a queue the Job starts at once.
            suspend: spec.queue_name.as_ref().map(|_| true),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels_of(run)),
                    annotations: Some(
                        config_files(run).into_iter().map(|(_, annotation, text)| (annotation.into(), text)).collect(),
                    ),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..JobSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::api::{DataSource, Evaluation, FeatureSpec, LocalRef, PodOptions, Trigger};

    pub(crate) fn sample_run() -> TrainingRun {
        let mut run = TrainingRun::new(
            "churn-3",
            TrainingRunSpec {
                pipeline: Some("churn".into()),
                trigger: Trigger::default(),
                image: "trainer:1".into(),
                command: None,
                args: None,
                env: Some(vec![env("EXTRA", "1"), env("TRAINLOOP_SEED", "999")]),
                pod: PodOptions::default(),
                hyperparameters: BTreeMap::from([("l2".into(), "0.1".into()), ("a".into(), "b".into())]),
                config_hash: None,
                features: vec![FeatureSpec { name: "age".into(), ..FeatureSpec::default() }],
                data: DataSource { uri: "file:///data.csv".into(), version: Some("v1".into()) },
                storage: Some(StorageAccess { secret_ref: LocalRef { name: "s3-credentials".into() } }),
                seed: 7,
                evaluation: Evaluation::default(),
                backoff_limit: Some(2),
                active_deadline_seconds: Some(600),
                start_timeout_seconds: None,
                queue_name: Some("team-a".into()),
            },
        );
        run.metadata.namespace = Some("ml".into());
        run.metadata.uid = Some("uid-1".into());
        run
    }

    /// Settings where pods share the operator's files, as on localplane.
    fn local(artifact_root: &str) -> Settings {
        Settings { local_files: true, ..Settings::new(artifact_root) }
    }

    #[test]
    fn on_a_cluster_file_data_on_no_volume_stalls_the_run_and_a_data_volume_covers_it() {
        let cluster = Settings { data_dir: "/data".into(), ..Settings::new("s3://models") };
        let mut run = sample_run();
        run.spec.data.uri = "file:///data/d.csv".into();
        let error = validate(&run, &cluster).unwrap_err().to_string();
        assert!(error.starts_with("spec.data.uri file:///data/d.csv is on no volume"), "{error}");
        let shared = Settings { data_volume: Some("datasets".into()), ..cluster.clone() };
        assert!(validate(&run, &shared).is_ok());
        run.spec.pod.volume_mounts = Some(vec![VolumeMount { mount_path: "/data".into(), ..VolumeMount::default() }]);
        assert!(validate(&run, &cluster).is_ok(), "the pipeline's own volume covers it");
        let error = validate(&sample_run(), &Settings::new("file:///srv/artifacts")).unwrap_err();
        assert_eq!(error.field, "--artifact-root");
        assert!(error.problem.contains("--artifact-volume CLAIM"), "{error}");
    }

    fn env_of(job: &Job) -> BTreeMap<String, String> {
        let container = &job.spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers[0];
        container.env.iter().flatten().map(|e| (e.name.clone(), e.value.clone().unwrap_or_default())).collect()
    }

    #[test]
    fn job_follows_the_trainer_contract() {
        let run = validate(&sample_run(), &local("file:///artifacts/")).unwrap();
        let job = job(&run);
        let env = env_of(&job);
        assert_eq!(env["TRAINLOOP_RUN"], "churn-3");
        assert_eq!(env["TRAINLOOP_DATA_URI"], "file:///data.csv");
        assert_eq!(env["TRAINLOOP_ARTIFACT_URI"], "file:///artifacts/ml/churn-3/");
        assert_eq!(env["TRAINLOOP_CONFIG"], "/etc/trainloop/config.json");
        assert_eq!(env["TRAINLOOP_FEATURES"], "/etc/trainloop/features.json");
        assert_eq!(env["TRAINLOOP_SEED"], "7", "a user variable cannot override the contract");
        assert_eq!(env["EXTRA"], "1");
        let spec = job.spec.as_ref().unwrap();
        assert_eq!(spec.backoff_limit, Some(2));
        assert_eq!(spec.active_deadline_seconds, Some(600));
        assert_eq!(spec.suspend, Some(true), "queued Jobs wait for Kueue");
        assert_eq!(job.metadata.labels.as_ref().unwrap()[labels::KUEUE_QUEUE], "team-a");
        assert_eq!(job.metadata.owner_references.as_ref().unwrap()[0].uid, "uid-1");
        let pod = spec.template.spec.as_ref().unwrap();
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        assert_eq!(pod.containers[0].termination_message_policy.as_deref(), Some("FallbackToLogsOnError"));
        let env_from = pod.containers[0].env_from.clone().unwrap();
        let secret = env_from[0].secret_ref.clone().unwrap();
        assert_eq!((secret.name.as_str(), secret.optional), ("s3-credentials", Some(false)));
        assert!(!serde_json::to_string(&job).unwrap().contains("AWS_"), "credentials by reference only");
        assert_eq!(pod.volumes.as_ref().unwrap().len(), 1, "no artifact volume unless one is set");
    }

    #[test]
    fn an_artifact_volume_is_mounted_read_write_at_the_root() {
        let settings = Settings { artifact_volume: Some("artifacts".into()), ..local("file:///srv/artifacts") };
        let job = job(&validate(&sample_run(), &settings).unwrap());
        let pod = job.spec.unwrap().template.spec.unwrap();
        let volume = &pod.volumes.unwrap()[1];
        assert_eq!(volume.persistent_volume_claim.as_ref().unwrap().claim_name, "artifacts");
        let mount = &pod.containers[0].volume_mounts.as_ref().unwrap()[1];
        assert_eq!((mount.mount_path.as_str(), mount.read_only), ("/srv/artifacts", Some(false)));
    }

    #[test]
    fn the_pod_options_reach_the_trainer_pod_beside_the_operators_volumes() {
        let mut run = sample_run();
        run.spec.pod = serde_json::from_value(serde_json::json!({
            "resources": {"limits": {"nvidia.com/gpu": "1"}},
            "envFrom": [{"configMapRef": {"name": "settings"}}],
            "volumes": [{"name": "data", "configMap": {"name": "data"}}],
            "volumeMounts": [{"name": "data", "mountPath": "/mnt/data", "readOnly": true}],
            "affinity": {"nodeAffinity": {}},
            "imagePullSecrets": [{"name": "registry"}],
            "priorityClassName": "training"
        }))
        .unwrap();
        let settings = Settings { artifact_volume: Some("artifacts".into()), ..local("file:///srv/artifacts") };
        let pod = job(&validate(&run, &settings).unwrap()).spec.unwrap().template.spec.unwrap();
        let volumes: Vec<&str> = pod.volumes.iter().flatten().map(|v| v.name.as_str()).collect();
        assert_eq!(volumes, ["trainloop-config", "trainloop-artifacts", "data"]);
        let container = &pod.containers[0];
        let mounts: Vec<&str> = container.volume_mounts.iter().flatten().map(|m| m.mount_path.as_str()).collect();
        assert_eq!(mounts, [CONFIG_DIR, "/srv/artifacts", "/mnt/data"]);
        let env_from = container.env_from.as_ref().unwrap();
        assert_eq!(env_from[0].secret_ref.as_ref().unwrap().name, "s3-credentials", "storage first");
        assert_eq!(env_from[1].config_map_ref.as_ref().unwrap().name, "settings");
        assert_eq!(container.resources.as_ref().unwrap().limits.as_ref().unwrap()["nvidia.com/gpu"].0, "1");
        assert_eq!(pod.priority_class_name.as_deref(), Some("training"));
        assert_eq!(pod.image_pull_secrets.unwrap()[0].name, "registry");
        assert!(pod.affinity.is_some());
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    }

    #[test]
    fn a_mount_over_the_artifact_volume_is_refused_naming_it() {
        let mut run = sample_run();
        run.spec.pod.volume_mounts = Some(vec![VolumeMount {
            name: "scratch".into(),
            mount_path: "/srv/artifacts/tmp".into(),
            ..VolumeMount::default()
        }]);
        let settings = Settings { artifact_volume: Some("artifacts".into()), ..local("file:///srv/artifacts") };
        let error = validate(&run, &settings).unwrap_err().to_string();
        assert!(error.starts_with("spec.volumeMounts[0].mountPath \"/srv/artifacts/tmp\""), "{error}");
        assert!(error.contains("trainloop-artifacts"), "{error}");
        assert!(validate(&run, &local("file:///srv/artifacts")).is_ok(), "no volume there, nothing covered");
    }

    #[test]
    fn a_data_volume_is_mounted_read_only_at_the_data_dir() {
        let settings = Settings { data_volume: Some("datasets".into()), ..local("s3://models") };
        let pod = job(&validate(&sample_run(), &settings).unwrap()).spec.unwrap().template.spec.unwrap();
        let volume = &pod.volumes.unwrap()[1];
        assert_eq!(volume.persistent_volume_claim.as_ref().unwrap().claim_name, "datasets");
        let mount = &pod.containers[0].volume_mounts.as_ref().unwrap()[1];
        assert_eq!((mount.mount_path.as_str(), mount.read_only), (crate::controllers::DEFAULT_DATA_DIR, Some(true)));
    }

    #[test]
    fn config_is_canonical_json_with_a_stable_hash() {
        let run = validate(&sample_run(), &local("file:///a")).unwrap();
        assert_eq!(run.config_json, r#"{"a":"b","l2":"0.1"}"#);
        assert_eq!(run.config_hash, sha256_digest(br#"{"a":"b","l2":"0.1"}"#));
        let [(_, _, config), (_, _, features)] = config_files(&run);
        assert_eq!(config, run.config_json);
        assert!(features.contains(r#""name":"age""#));
    }

    #[test]
    fn the_config_files_reach_the_trainer_through_its_pod_annotations() {
        let run = validate(&sample_run(), &local("file:///a")).unwrap();
        let template = job(&run).spec.unwrap().template;
        let annotations = template.metadata.unwrap().annotations.unwrap();
        let volume = &template.spec.unwrap().volumes.unwrap()[0];
        let items = volume.downward_api.as_ref().unwrap().items.as_ref().unwrap();
        let files: BTreeMap<&str, &str> = items
            .iter()
            .map(|item| {
                let path = &item.field_ref.as_ref().unwrap().field_path;
                let key = path.strip_prefix("metadata.annotations['").unwrap().strip_suffix("']").unwrap();
                (item.path.as_str(), annotations[key].as_str())
            })
            .collect();
        assert_eq!(files["config.json"], run.config_json);
        assert_eq!(files["features.json"], run.features_json);
    }

    #[test]
    fn a_wrong_declared_config_hash_is_refused() {
        let mut run = sample_run();
        run.spec.config_hash = Some(format!("sha256:{}", "0".repeat(64)));
        let error = validate(&run, &local("file:///a")).unwrap_err();
        assert_eq!(error.field, "spec.configHash");
        assert!(error.to_string().starts_with("spec.configHash sha256:000"), "{error}");
    }

    #[test]
    fn each_refusal_names_its_field() {
        let settings = local("file:///a");
        let mut no_features = sample_run();
        no_features.spec.features.clear();
        let error = validate(&no_features, &settings).unwrap_err();
        assert_eq!(error.to_string(), "spec.features is empty: declare the feature schema the trainer must check");
        let mut unstored = sample_run();
        unstored.metadata.uid = None;
        assert_eq!(validate(&unstored, &settings).unwrap_err(), InvalidRun::new("metadata.uid", "is missing"));
        let mut unplaced = sample_run();
        unplaced.metadata.namespace = None;
        assert_eq!(validate(&unplaced, &settings).unwrap_err().field, "metadata.namespace");
    }
}
