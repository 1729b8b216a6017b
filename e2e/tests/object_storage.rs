//! Object storage end to end, against a real S3-compatible server on loopback (moto's, with
//! authentication on): the storage library's answers, then the example pipeline training from
//! `s3://`, writing its artifact to `s3://` and served from there, retrained when its data
//! changes in the bucket, and runs whose credentials or bucket are wrong failing with a reason.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{ObjectMeta, PostParams};
use serde_json::json;
use trainloop::api::{ModelDeployment, RunPhase, TrainingPipeline, TrainingRun, TriggerType};
use trainloop_e2e::Env;
use trainloop_e2e::s3::S3Server;
use trainloop_e2e::serving::{SERVER_IMAGE, model_deployment, pipeline, serves};
use trainloop_storage::{StorageConfig, read, version, write};

const TRAINER: &str = env!("CARGO_BIN_EXE_example-trainer");
/// A run, then server pods starting and verified.
const ROLLOUT_TIMEOUT: Duration = Duration::from_secs(120);

fn cancer_csv() -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/data/breast_cancer_wisconsin.csv");
    std::fs::read(path).expect("the example data")
}

#[tokio::test]
async fn the_storage_library_against_a_real_s3_server() {
    let s3 = S3Server::start(&["data"]).await.unwrap();
    let config = s3.config();
    let uri = "s3://data/train.csv";
    write(uri, Bytes::from_static(b"x\n1\n"), &config).await.unwrap();
    assert_eq!(read(uri, &config).await.unwrap(), "x\n1\n");
    let first = version(uri, &config).await.unwrap();
    assert!(first.starts_with("etag:"), "{first}");
    write(uri, Bytes::from_static(b"x\n1\n"), &config).await.unwrap();
    assert_eq!(version(uri, &config).await.unwrap(), first, "same content, same ETag");
    write(uri, Bytes::from_static(b"x\n2\n"), &config).await.unwrap();
    assert_ne!(version(uri, &config).await.unwrap(), first);

    let wrong = StorageConfig::from_vars(s3.variables_with_secret("not-the-secret"));
    let error = read(uri, &wrong).await.unwrap_err();
    assert_eq!(error.reason(), "StorageAccessDenied", "{error}");
    assert!(!error.to_string().contains("not-the-secret"), "{error}");
    let error = read("s3://no-such-bucket/train.csv", &config).await.unwrap_err();
    assert_eq!(error.reason(), "BucketNotFound", "{error}");
    let error = version("s3://data/missing.csv", &config).await.unwrap_err();
    assert_eq!(error.reason(), "ObjectNotFound", "{error}");
    s3.stop().await;
}

/// A Secret holding `variables`, as a platform team would create it.
async fn create_secret(env: &Env, name: &str, variables: Vec<(&str, String)>) {
    let data: BTreeMap<String, ByteString> =
        variables.into_iter().map(|(k, v)| (k.to_string(), ByteString(v.into_bytes()))).collect();
    let secret = Secret {
        metadata: ObjectMeta { name: Some(name.into()), ..ObjectMeta::default() },
        data: Some(data),
        ..Secret::default()
    };
    env.api::<Secret>().create(&PostParams::default(), &secret).await.unwrap();
}

/// The example pipeline reading `data` with the credentials of Secret `secret`.
fn s3_pipeline(name: &str, data: &str, secret: &str) -> serde_json::Value {
    let mut p = pipeline(name, TRAINER, &[]).unwrap();
    p["spec"]["data"] = json!({"uri": data});
    p["spec"]["storage"] = json!({"secretRef": {"name": secret}});
    p
}

fn finished(run: Option<&TrainingRun>) -> bool {
    run.and_then(|r| r.status.as_ref()).is_some_and(|s| matches!(s.phase, RunPhase::Succeeded | RunPhase::Failed))
}

#[tokio::test]
async fn the_example_pipeline_trains_from_s3_is_served_from_s3_and_retrains_when_the_data_changes() {
    let s3 = S3Server::start(&["data", "models"]).await.unwrap();
    let server = env!("CARGO_BIN_EXE_example-model-server");
    let storage = Some(("s3://models".to_string(), s3.config()));
    let env = Env::start_with_storage(&[(SERVER_IMAGE, server)], storage).await.unwrap();
    write("s3://data/cancer.csv", cancer_csv().into(), &s3.config()).await.unwrap();
    create_secret(&env, "s3-credentials", s3.variables()).await;

    let mut cancer = s3_pipeline("cancer", "s3://data/cancer.csv", "s3-credentials");
    cancer["spec"]["triggers"] = json!({"onDataChange": {"interval": "10s"}});
    env.create::<TrainingPipeline>(cancer).await.unwrap();
    let mut md = model_deployment("cancer", json!({"pipelineRef": {"name": "cancer"}}));
    md["spec"]["storage"] = json!({"secretRef": {"name": "s3-credentials"}});
    env.create::<ModelDeployment>(md).await.unwrap();

    let md =
        env.wait_longer::<ModelDeployment>("cancer", "serving cancer-1", ROLLOUT_TIMEOUT, serves("cancer-1")).await;
    let model = md.status.unwrap().current_model.unwrap();
    assert_eq!(model.artifact_uri, "s3://models/default/cancer-1/model.json");
    // The served digest is that of the object in the bucket.
    let artifact = read(&model.artifact_uri, &s3.config()).await.unwrap();
    assert_eq!(model.artifact_digest, trainloop::artifact::sha256_digest(&artifact));
    let run = env.api::<TrainingRun>().get("cancer-1").await.unwrap();
    assert_eq!(run.status.unwrap().profile.as_deref(), Some("s3://models/default/cancer-1/profile.json"));

    // New data in the bucket: the operator sees its ETag change and retrains, and the new
    // model is served.
    let baseline = |p: Option<&TrainingPipeline>| {
        p.and_then(|p| p.status.as_ref()).is_some_and(|s| s.handled.data_fingerprint.is_some())
    };
    let p = env.wait_for::<TrainingPipeline>("cancer", "a data baseline", baseline).await;
    let fingerprint = p.status.unwrap().handled.data_fingerprint.unwrap();
    assert_eq!(fingerprint, version("s3://data/cancer.csv", &s3.config()).await.unwrap());
    let mut fewer_rows = cancer_csv();
    fewer_rows.truncate(fewer_rows[..fewer_rows.len() - 1].iter().rposition(|b| *b == b'\n').unwrap() + 1);
    write("s3://data/cancer.csv", fewer_rows.into(), &s3.config()).await.unwrap();
    let run = env.wait_longer::<TrainingRun>("cancer-2", "finished", ROLLOUT_TIMEOUT, finished).await;
    assert_eq!(run.spec.trigger.trigger_type, TriggerType::DataChange);
    env.wait_longer::<ModelDeployment>("cancer", "serving cancer-2", ROLLOUT_TIMEOUT, serves("cancer-2")).await;
    env.shutdown().await;
    s3.stop().await;
}

/// A ConfigMap of `data`, as a team would create it.
async fn create_config_map(env: &Env, name: &str, data: Vec<(&str, String)>) {
    let config_map = ConfigMap {
        metadata: ObjectMeta { name: Some(name.into()), ..ObjectMeta::default() },
        data: Some(data.into_iter().map(|(k, v)| (k.to_string(), v)).collect()),
        ..ConfigMap::default()
    };
    env.api::<ConfigMap>().create(&PostParams::default(), &config_map).await.unwrap();
}

/// The pipeline's pod template reaches the trainer: its storage settings through `envFrom` a
/// ConfigMap (no storage Secret named), and its data through a ConfigMap volume mounted where the
/// data URI points. The run succeeds only if both arrived. The operator runs as on a real
/// cluster (no `--local-files`), so a pipeline whose `file://` data no volume covers is stalled.
#[tokio::test]
async fn the_pod_template_brings_the_trainer_its_settings_and_its_data() {
    let s3 = S3Server::start(&["models"]).await.unwrap();
    let mut env = Env::start_with_storage(&[], Some(("s3://models".to_string(), s3.config()))).await.unwrap();
    env.stop_operator().await;
    env.local_files = false;
    env.start_operator();
    create_config_map(&env, "s3-settings", s3.variables()).await;
    let csv = String::from_utf8(cancer_csv()).unwrap();
    create_config_map(&env, "cancer-data", vec![("cancer.csv", csv)]).await;
    let mut p = pipeline("mounted", TRAINER, &[]).unwrap();
    p["spec"]["data"] = json!({"uri": "file:///mnt/data/cancer.csv"});
    let template = &mut p["spec"]["template"];
    template["envFrom"] = json!([{"configMapRef": {"name": "s3-settings"}}]);
    template["volumes"] = json!([{"name": "data", "configMap": {"name": "cancer-data"}}]);
    template["volumeMounts"] = json!([{"name": "data", "mountPath": "/mnt/data", "readOnly": true}]);
    env.create::<TrainingPipeline>(p).await.unwrap();

    let run = env.wait_longer::<TrainingRun>("mounted-1", "finished", ROLLOUT_TIMEOUT, finished).await;
    let status = run.status.unwrap();
    assert_eq!(status.phase, RunPhase::Succeeded, "{:?}", status.conditions);
    assert_eq!(run.spec.pod.volume_mounts.unwrap()[0].mount_path, "/mnt/data", "frozen into the run");
    let artifact = status.artifact.unwrap();
    assert_eq!(artifact.uri, "s3://models/default/mounted-1/model.json");
    let model = read(&artifact.uri, &s3.config()).await.unwrap();
    assert_eq!(artifact.digest, trainloop::artifact::sha256_digest(&model));

    // The same pipeline reading a file of the operator's host: on a cluster no pod would see it.
    let unmounted = pipeline("unmounted", TRAINER, &[]).unwrap();
    let uri = unmounted["spec"]["data"]["uri"].as_str().unwrap().to_string();
    env.create::<TrainingPipeline>(unmounted).await.unwrap();
    let stalled = |run: Option<&TrainingRun>| {
        run.and_then(|r| r.status.as_ref()).is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Stalled"))
    };
    let run = env.wait_for::<TrainingRun>("unmounted-1", "Stalled", stalled).await;
    let status = run.status.unwrap();
    let condition = status.conditions.iter().find(|c| c.type_ == "Stalled").unwrap();
    assert_eq!((condition.status.as_str(), status.phase), ("True", RunPhase::Failed), "fails as an invalid spec does");
    assert!(condition.message.starts_with(&format!("spec.data.uri {uri} is on no volume")), "{}", condition.message);
    assert!(condition.message.contains("--data-volume CLAIM"), "{}", condition.message);
    assert!(status.job_name.is_none(), "no Job for a run that cannot read its data");
    env.shutdown().await;
    s3.stop().await;
}

#[tokio::test]
async fn wrong_credentials_or_a_missing_bucket_fail_the_run_saying_so() {
    let s3 = S3Server::start(&["data"]).await.unwrap();
    let env = Env::start_with_storage(&[], Some(("s3://data/artifacts".to_string(), s3.config()))).await.unwrap();
    write("s3://data/cancer.csv", cancer_csv().into(), &s3.config()).await.unwrap();
    create_secret(&env, "wrong-credentials", s3.variables_with_secret("not-the-secret")).await;
    create_secret(&env, "s3-credentials", s3.variables()).await;
    env.create::<TrainingPipeline>(s3_pipeline("denied", "s3://data/cancer.csv", "wrong-credentials")).await.unwrap();
    env.create::<TrainingPipeline>(s3_pipeline("nobucket", "s3://no-such-bucket/cancer.csv", "s3-credentials"))
        .await
        .unwrap();

    for (run, reason) in [("denied-1", "StorageAccessDenied"), ("nobucket-1", "BucketNotFound")] {
        let run = env.wait_longer::<TrainingRun>(run, "finished", ROLLOUT_TIMEOUT, finished).await;
        let status = run.status.unwrap();
        assert_eq!(status.phase, RunPhase::Failed);
        let ready = status.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert!(ready.message.contains(&format!("{reason}: cannot read s3://")), "{}", ready.message);
        assert!(!ready.message.contains("not-the-secret"), "{}", ready.message);
    }
    env.shutdown().await;
    s3.stop().await;
}
