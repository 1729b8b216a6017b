//! End-to-end tests of the workload controllers and the process kubelet, through a real
//! localplane and kube-rs clients. Every wait is on a condition and bounded by a timeout.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::await_condition;
use kube::{Client, Resource, ResourceExt};
use localplane::{Config, LocalPlane};
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(60);

struct Plane {
    plane: LocalPlane,
    client: Client,
    work_dir: PathBuf,
}

async fn start(tag: &str) -> Plane {
    start_with_images(tag, None).await
}

/// Starts a plane; `images` is the text of an images file to pass, if any.
async fn start_with_images(tag: &str, images: Option<&str>) -> Plane {
    let work_dir = std::env::temp_dir().join(format!("lp-wl-{tag}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&work_dir).expect("work dir");
    let work_dir = std::fs::canonicalize(&work_dir).expect("canonical work dir");
    let images = images.map(|text| {
        let file = work_dir.join("images.yaml");
        std::fs::write(&file, text).expect("images file");
        file
    });
    let plane = LocalPlane::start(Config { work_dir: Some(work_dir.clone()), images, ..Default::default() })
        .await
        .expect("localplane starts");
    let client = plane.client().await.expect("client");
    Plane { plane, client, work_dir }
}

impl Plane {
    async fn stop(self) {
        self.plane.shutdown().await;
        let _ = std::fs::remove_dir_all(&self.work_dir);
    }
    fn pod_dir(&self, pod: &str) -> PathBuf {
        self.work_dir.join("pods").join("default").join(pod)
    }
}

fn obj<K: DeserializeOwned>(v: serde_json::Value) -> K {
    serde_json::from_value(v).expect("valid object")
}

/// Waits until `cond` holds for the named object, failing the test after `WAIT`.
async fn wait_for<K>(api: &Api<K>, name: &str, what: &str, cond: impl Fn(&K) -> bool) -> K
where
    K: Resource + Clone + std::fmt::Debug + DeserializeOwned + Send + 'static,
{
    let waited =
        tokio::time::timeout(WAIT, await_condition(api.clone(), name, move |o: Option<&K>| o.is_some_and(&cond))).await;
    match waited {
        Ok(Ok(Some(o))) => o,
        other => {
            let current = api.get_opt(name).await;
            panic!("timed out waiting for {name} to be {what}: {other:?}; now {current:#?}")
        }
    }
}

/// Polls a check until it holds, bounded (for things the API cannot watch: files, sockets).
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn job_condition<'a>(job: &'a Job, type_: &str) -> Option<&'a k8s_openapi::api::batch::v1::JobCondition> {
    job.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == type_ && c.status == "True")
}

fn terminated(pod: &Pod) -> k8s_openapi::api::core::v1::ContainerStateTerminated {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c[0].state.as_ref())
        .and_then(|s| s.terminated.clone())
        .expect("terminated container")
}

async fn job_pods(client: &Client, job: &str) -> Vec<Pod> {
    Api::<Pod>::default_namespaced(client.clone())
        .list(&ListParams::default().labels(&format!("job-name={job}")))
        .await
        .expect("list pods")
        .items
}

fn pid_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| stat.rsplit(") ").next().and_then(|s| s.chars().next()) != Some('Z'))
        .unwrap_or(false)
}

async fn read_pid(path: &Path) -> i32 {
    eventually("a pid file", || async { std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok()) }).await
}

#[tokio::test]
async fn job_succeeds_with_its_termination_message() {
    let lp = start("job-ok").await;
    let jobs: Api<Job> = Api::default_namespaced(lp.client.clone());
    let message = r#"{"metrics":{"auc":0.91}}"#;
    let job: Job = obj(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "train"},
        "spec": {"template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "trainer", "image": "example/trainer:1",
                "command": ["sh", "-c", format!("echo training on $HOSTNAME; echo '{message}' > /dev/termination-log")],
            }]
        }}}
    }));
    jobs.create(&PostParams::default(), &job).await.expect("create job");
    let done = wait_for(&jobs, "train", "Complete", |j| job_condition(j, "Complete").is_some()).await;
    let status = done.status.clone().unwrap();
    assert_eq!(status.succeeded, Some(1));
    assert!(status.start_time.is_some() && status.completion_time.is_some());
    let types: Vec<&str> = status.conditions.iter().flatten().map(|c| c.type_.as_str()).collect();
    assert_eq!(types, vec!["SuccessCriteriaMet", "Complete"]);

    let pods = job_pods(&lp.client, "train").await;
    assert_eq!(pods.len(), 1);
    let pod = &pods[0];
    let name = pod.name_any();
    assert!(name.starts_with("train-") && name.len() == "train-".len() + 5, "{name}");
    let labels = pod.labels();
    for key in ["batch.kubernetes.io/job-name", "job-name", "controller-uid", "batch.kubernetes.io/controller-uid"] {
        assert!(labels.contains_key(key), "label {key}");
    }
    let owner = &pod.owner_references()[0];
    assert_eq!((owner.kind.as_str(), owner.controller), ("Job", Some(true)));
    let ps = pod.status.clone().unwrap();
    assert_eq!(ps.phase.as_deref(), Some("Succeeded"));
    let ip = ps.pod_ip.clone().unwrap();
    assert!(ip.starts_with("127.0.") && ip != "127.0.0.1", "{ip}");
    let t = terminated(pod);
    assert_eq!((t.exit_code, t.reason.as_deref()), (0, Some("Completed")));
    assert_eq!(t.message.as_deref().map(str::trim), Some(message));
    assert_eq!(pod.spec.as_ref().unwrap().node_name.as_deref(), Some("localplane"));
    let log = std::fs::read_to_string(lp.pod_dir(&name).join("log")).expect("pod log");
    assert_eq!(log.trim(), format!("training on {name}"));
    lp.stop().await;
}

#[tokio::test]
async fn job_fails_after_backoff_limit_with_log_fallback_message() {
    let lp = start("job-fail").await;
    let jobs: Api<Job> = Api::default_namespaced(lp.client.clone());
    let job: Job = obj(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "flaky"},
        "spec": {"backoffLimit": 1, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "trainer", "image": "example/trainer:1",
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "command": ["sh", "-c", "echo data missing >&2; exit 3"],
            }]
        }}}
    }));
    jobs.create(&PostParams::default(), &job).await.expect("create job");
    let failed = wait_for(&jobs, "flaky", "Failed", |j| job_condition(j, "Failed").is_some()).await;
    let cond = job_condition(&failed, "Failed").unwrap();
    assert_eq!(cond.reason.as_deref(), Some("BackoffLimitExceeded"));
    assert!(job_condition(&failed, "FailureTarget").is_some());
    assert_eq!(failed.status.as_ref().unwrap().failed, Some(2));
    let pods = job_pods(&lp.client, "flaky").await;
    assert_eq!(pods.len(), 2, "one try plus one retry");
    for pod in &pods {
        assert_eq!(pod.status.as_ref().unwrap().phase.as_deref(), Some("Failed"));
        let t = terminated(pod);
        assert_eq!((t.exit_code, t.reason.as_deref()), (3, Some("Error")));
        assert_eq!(t.message.as_deref(), Some("data missing\n"));
    }
    lp.stop().await;
}

#[tokio::test]
async fn job_active_deadline_kills_its_pod() {
    let lp = start("job-deadline").await;
    let jobs: Api<Job> = Api::default_namespaced(lp.client.clone());
    let job: Job = obj(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "slow"},
        "spec": {"activeDeadlineSeconds": 2, "template": {"spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "volumes": [{"name": "scratch", "emptyDir": {}}],
            "containers": [{
                "name": "trainer", "image": "example/trainer:1",
                "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
                "command": ["sh", "-c", "sleep 300 & echo $! > /scratch/pid; wait"],
            }]
        }}}
    }));
    jobs.create(&PostParams::default(), &job).await.expect("create job");
    let pod_name =
        eventually("the job's pod", || async { job_pods(&lp.client, "slow").await.first().map(|p| p.name_any()) })
            .await;
    let pid = read_pid(&lp.pod_dir(&pod_name).join("volumes/scratch/pid")).await;
    let failed = wait_for(&jobs, "slow", "Failed", |j| job_condition(j, "Failed").is_some()).await;
    assert_eq!(job_condition(&failed, "Failed").unwrap().reason.as_deref(), Some("DeadlineExceeded"));
    eventually("the pod's processes to end", || async { (!pid_alive(pid)).then_some(()) }).await;
    lp.stop().await;
}

#[tokio::test]
async fn env_config_map_volumes_and_paths_are_per_pod() {
    let lp = start("paths").await;
    let cms: Api<ConfigMap> = Api::default_namespaced(lp.client.clone());
    let pods: Api<Pod> = Api::default_namespaced(lp.client.clone());
    let config = r#"{"learning_rate": "0.1"}"#;
    let cm: ConfigMap = obj(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "hp"},
        "data": {"config.json": config, "mode": "fast"}
    }));
    cms.create(&PostParams::default(), &cm).await.expect("create configmap");
    for name in ["run-a", "run-b"] {
        let pod: Pod = obj(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "restartPolicy": "Never",
                "volumes": [{"name": "config", "configMap": {"name": "hp"}}],
                "containers": [{
                    "name": "trainer", "image": "example/trainer:1",
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/trainloop"}],
                    "env": [
                        {"name": "TRAINLOOP_CONFIG", "value": "/etc/trainloop/config.json"},
                        {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "hp", "key": "mode"}}},
                        {"name": "ME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "GREETING", "value": "run $(ME) in $(MODE) mode"},
                    ],
                    "envFrom": [{"configMapRef": {"name": "hp"}, "prefix": "HP_"}],
                    "command": ["sh", "-c"],
                    "args": ["echo \"$GREETING hp_mode=$HP_mode ip=$POD_IP arg=$(MODE)\"; test \"$(pwd)\" != /; cat $TRAINLOOP_CONFIG; echo $ME > /dev/termination-log"],
                }]
            }
        }));
        pods.create(&PostParams::default(), &pod).await.expect("create pod");
    }
    for name in ["run-a", "run-b"] {
        let pod = wait_for(&pods, name, "Succeeded", |p| {
            p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded")
        })
        .await;
        let ip = pod.status.as_ref().unwrap().pod_ip.clone().unwrap();
        // Each pod wrote its own name to its own termination-log.
        assert_eq!(terminated(&pod).message.as_deref(), Some(format!("{name}\n").as_str()));
        let log = std::fs::read_to_string(lp.pod_dir(name).join("log")).expect("log");
        assert_eq!(log, format!("run {name} in fast mode hp_mode=fast ip={ip} arg=fast\n{config}"));
    }
    let ips: Vec<String> = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
        .collect();
    assert_eq!(ips.len(), 2);
    assert_ne!(ips[0], ips[1], "every pod has its own IP");
    lp.stop().await;
}

/// A pod with an emptyDir at `/tmp` (as read-only-root pods have) keeps the kubelet's HOME, a
/// host path that lies under `/tmp` when the plane's work dir does; what the pod names under
/// `/tmp` is still its volume.
#[tokio::test]
async fn a_tmp_volume_leaves_the_kubelets_home_alone() {
    let lp = start("tmp").await;
    assert!(lp.work_dir.starts_with("/tmp"), "the case needs a work dir under /tmp: {}", lp.work_dir.display());
    let pods: Api<Pod> = Api::default_namespaced(lp.client.clone());
    let pod: Pod = obj(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "read-only-root"},
        "spec": {
            "restartPolicy": "Never",
            "volumes": [{"name": "tmp", "emptyDir": {}}],
            "containers": [{
                "name": "main", "image": "example/app:1",
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                "env": [{"name": "SCRATCH", "value": "/tmp/scratch"}],
                "command": ["sh", "-c", "test -d \"$HOME\" && touch \"$SCRATCH\" && printf '%s' \"$HOME\" > /dev/termination-log"],
            }]
        }
    }));
    pods.create(&PostParams::default(), &pod).await.expect("create pod");
    let pod = wait_for(&pods, "read-only-root", "finished", |p| {
        matches!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
    })
    .await;
    let dir = lp.pod_dir("read-only-root");
    let home = dir.join("containers/main/work");
    assert_eq!(terminated(&pod).message.as_deref(), Some(home.to_string_lossy().as_ref()), "{:#?}", pod.status);
    assert!(dir.join("volumes/tmp/scratch").exists(), "/tmp/scratch is in the pod's volume");
    lp.stop().await;
}

#[tokio::test]
async fn bad_pods_report_why_they_cannot_run() {
    let lp = start("bad").await;
    let pods: Api<Pod> = Api::default_namespaced(lp.client.clone());
    let unmapped: Pod = obj(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "unmapped"},
        "spec": {"containers": [{"name": "c", "image": "nowhere/image:1"}]}
    }));
    let missing: Pod = obj(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "missing"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x", "command": ["no-such-program-lp"]}]}
    }));
    pods.create(&PostParams::default(), &unmapped).await.unwrap();
    pods.create(&PostParams::default(), &missing).await.unwrap();
    let waiting = wait_for(&pods, "unmapped", "waiting with ErrImagePull", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c[0].state.as_ref()?.waiting.as_ref()?.reason.clone())
            .as_deref()
            == Some("ErrImagePull")
    })
    .await;
    assert_eq!(waiting.status.unwrap().phase.as_deref(), Some("Pending"));
    let failed =
        wait_for(&pods, "missing", "Failed", |p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed"))
            .await;
    let t = terminated(&failed);
    assert_eq!((t.exit_code, t.reason.as_deref()), (128, Some("StartError")));
    assert!(t.message.unwrap().contains("executable file not found"));
    lp.stop().await;
}

#[tokio::test]
async fn graceful_deletion_sends_sigterm_then_sigkill() {
    let lp = start("delete").await;
    let pods: Api<Pod> = Api::default_namespaced(lp.client.clone());
    let pod = |name: &str, script: &str, grace: i64| -> Pod {
        obj(json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {
                "terminationGracePeriodSeconds": grace,
                "volumes": [{"name": "data", "emptyDir": {}}],
                "containers": [{
                    "name": "c", "image": "x",
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                    "command": ["sh", "-c", script],
                }]
            }
        }))
    };
    let polite = "trap 'echo bye > /data/term; exit 0' TERM; echo $$$$ > /data/pid; while true; do sleep 0.1; done";
    let stubborn = "trap '' TERM; echo $$$$ > /data/pid; while true; do sleep 0.1; done";
    pods.create(&PostParams::default(), &pod("polite", polite, 30)).await.unwrap();
    pods.create(&PostParams::default(), &pod("stubborn", stubborn, 1)).await.unwrap();
    for name in ["polite", "stubborn"] {
        wait_for(&pods, name, "Running and Ready", |p| {
            p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        })
        .await;
    }
    let polite_pid = read_pid(&lp.pod_dir("polite").join("volumes/data/pid")).await;
    let stubborn_pid = read_pid(&lp.pod_dir("stubborn").join("volumes/data/pid")).await;

    pods.delete("polite", &DeleteParams::default()).await.unwrap();
    let term_file = lp.pod_dir("polite").join("volumes/data/term");
    let said = eventually("the SIGTERM handler to run", || async { std::fs::read_to_string(&term_file).ok() }).await;
    assert_eq!(said, "bye\n");
    eventually("the polite process to end", || async { (!pid_alive(polite_pid)).then_some(()) }).await;

    let deleted_at = Instant::now();
    pods.delete("stubborn", &DeleteParams::default()).await.unwrap();
    eventually("the stubborn process to be killed", || async { (!pid_alive(stubborn_pid)).then_some(()) }).await;
    assert!(deleted_at.elapsed() >= Duration::from_millis(800), "SIGKILL came only after the grace period");
    lp.stop().await;
}

/// One HTTP GET over a raw socket; Some(body) on a 200.
async fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await.ok()?.ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).await.ok()?;
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out)).await.ok()?.ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200").then(|| body.to_string())
}

#[tokio::test]
async fn deployment_is_reached_through_its_service() {
    let python = std::process::Command::new("python3").arg("--version").output();
    assert!(
        python.is_ok_and(|o| o.status.success()),
        "python3 is required (its http.server is the pod's server): install it (Debian: python3)"
    );
    let lp = start("deploy").await;
    let client = lp.client.clone();
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    let services: Api<Service> = Api::default_namespaced(client.clone());
    let cm: ConfigMap = obj(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "site"},
        "data": {"index.html": "hello from localplane\n"}
    }));
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let deployment = |version: &str| -> Deployment {
        obj(json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "terminationGracePeriodSeconds": 2,
                        "volumes": [{"name": "site", "configMap": {"name": "site"}}],
                        "containers": [{
                            "name": "server", "image": "example/server:1",
                            "env": [{"name": "VERSION", "value": version}],
                            "command": ["python3", "-m", "http.server", "8000", "--bind", "$(POD_IP)", "--directory", "/srv/www"],
                            "ports": [{"name": "http", "containerPort": 8000}],
                            "volumeMounts": [{"name": "site", "mountPath": "/srv/www"}],
                            "readinessProbe": {"httpGet": {"path": "/index.html", "port": "http"}, "periodSeconds": 1},
                        }]
                    }
                }
            }
        }))
    };
    deployments.create(&PostParams::default(), &deployment("1")).await.unwrap();
    let svc: Service = obj(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 8080, "targetPort": "http"}]}
    }));
    services.create(&PostParams::default(), &svc).await.unwrap();

    let rolled_out = |generation: i64| {
        move |d: &Deployment| {
            let Some(s) = d.status.as_ref() else { return false };
            let progressed = s.conditions.iter().flatten().any(|c| {
                c.type_.as_deref() == Some("Progressing") && c.reason.as_deref() == Some("NewReplicaSetAvailable")
            });
            let available = s
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True"));
            progressed
                && available
                && s.observed_generation.unwrap_or(generation) >= generation
                && s.available_replicas == Some(2)
                && s.ready_replicas == Some(2)
                && s.updated_replicas == Some(2)
                && s.replicas == Some(2)
        }
    };
    let d = wait_for(&deployments, "web", "rolled out", rolled_out(1)).await;
    let generation = d.metadata.generation.unwrap_or(1);

    let svc = services.get("web").await.unwrap();
    let ip = svc.spec.unwrap().cluster_ip.unwrap();
    assert!(ip.starts_with("127."), "{ip}");
    let addr = format!("{ip}:8080");
    let body = eventually("an HTTP answer through the Service", || http_get(&addr, "/index.html")).await;
    assert_eq!(body, "hello from localplane\n");

    // A template change rolls over to a new ReplicaSet, still serving through the Service.
    deployments.patch("web", &PatchParams::default(), &Patch::Merge(&deployment("2"))).await.unwrap();
    wait_for(&deployments, "web", "rolled out again", rolled_out(generation + 1)).await;
    let sets: Api<ReplicaSet> = Api::default_namespaced(client.clone());
    let sets = sets.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(sets.len(), 2);
    let live: Vec<_> = sets.iter().filter(|rs| rs.spec.replicas.unwrap_or(0) > 0).collect();
    assert_eq!(live.len(), 1, "the old ReplicaSet is scaled to zero");
    assert!(live[0].labels().contains_key("pod-template-hash"));
    let body = eventually("an HTTP answer after the rollout", || http_get(&addr, "/index.html")).await;
    assert_eq!(body, "hello from localplane\n");

    // Deleting the Service stops its listener.
    services.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("the Service listener to close", || async {
        tokio::net::TcpStream::connect(&addr).await.is_err().then_some(())
    })
    .await;
    lp.stop().await;
}

#[tokio::test]
async fn deleting_a_job_stops_its_pods() {
    let lp = start("job-delete").await;
    let jobs: Api<Job> = Api::default_namespaced(lp.client.clone());
    let job: Job = obj(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "long"},
        "spec": {"template": {"spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "volumes": [{"name": "scratch", "emptyDir": {}}],
            "containers": [{
                "name": "trainer", "image": "example/trainer:1",
                "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
                "command": ["sh", "-c", "echo $$$$ > /scratch/pid; exec sleep 300"],
            }]
        }}}
    }));
    let created = jobs.create(&PostParams::default(), &job).await.expect("create job");
    let pod_name =
        eventually("the job's pod", || async { job_pods(&lp.client, "long").await.first().map(|p| p.name_any()) })
            .await;
    let pid = read_pid(&lp.pod_dir(&pod_name).join("volumes/scratch/pid")).await;
    assert!(pid_alive(pid));
    jobs.delete("long", &DeleteParams::background()).await.expect("delete job");
    let uid = created.uid().unwrap();
    tokio::time::timeout(WAIT, await_condition(jobs.clone(), "long", kube::runtime::conditions::is_deleted(&uid)))
        .await
        .expect("job deleted in time")
        .expect("watch");
    eventually("the pod to be collected", || async { job_pods(&lp.client, "long").await.is_empty().then_some(()) })
        .await;
    eventually("the pod's process to end", || async { (!pid_alive(pid)).then_some(()) }).await;
    lp.stop().await;
}

#[tokio::test]
async fn init_containers_run_first_and_crashing_containers_restart() {
    let lp = start("restart").await;
    let pods: Api<Pod> = Api::default_namespaced(lp.client.clone());
    let pod: Pod = obj(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "crashy"},
        "spec": {
            "volumes": [{"name": "shared", "emptyDir": {}}],
            "initContainers": [{
                "name": "setup", "image": "x",
                "volumeMounts": [{"name": "shared", "mountPath": "/shared"}],
                "command": ["sh", "-c", "echo prepared > /shared/state"],
            }],
            "containers": [{
                "name": "app", "image": "x",
                "volumeMounts": [{"name": "shared", "mountPath": "/shared"}],
                "command": ["sh", "-c", "cat /shared/state; exit 1"],
            }]
        }
    }));
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let restarted = wait_for(&pods, "crashy", "restarted twice", |p| {
        p.status.as_ref().and_then(|s| s.container_statuses.as_ref()).is_some_and(|c| c[0].restart_count >= 2)
    })
    .await;
    let status = restarted.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    let init = &status.init_container_statuses.unwrap()[0];
    let init_done = init.state.as_ref().and_then(|s| s.terminated.as_ref()).unwrap();
    assert_eq!((init_done.exit_code, init_done.reason.as_deref()), (0, Some("Completed")));
    let last = status.container_statuses.unwrap()[0].last_state.clone().unwrap();
    assert_eq!(last.terminated.unwrap().exit_code, 1);
    let log = std::fs::read_to_string(lp.pod_dir("crashy").join("log")).unwrap();
    assert!(log.starts_with("prepared\nprepared\n"), "{log}");
    lp.stop().await;
}

#[tokio::test]
async fn on_failure_restarts_count_against_the_backoff_limit() {
    let lp = start("onfailure").await;
    let jobs: Api<Job> = Api::default_namespaced(lp.client.clone());
    let job: Job = obj(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "retry-in-place"},
        "spec": {"backoffLimit": 1, "template": {"spec": {
            "restartPolicy": "OnFailure",
            "containers": [{"name": "c", "image": "x", "command": ["sh", "-c", "exit 2"]}]
        }}}
    }));
    jobs.create(&PostParams::default(), &job).await.unwrap();
    let failed = wait_for(&jobs, "retry-in-place", "Failed", |j| job_condition(j, "Failed").is_some()).await;
    assert_eq!(job_condition(&failed, "Failed").unwrap().reason.as_deref(), Some("BackoffLimitExceeded"));
    lp.stop().await;
}

#[tokio::test]
async fn images_file_maps_images_to_executables() {
    let images = "example/echo:\n  path: sh\n  args: [\"-c\", \"echo default args\"]\n";
    let lp = start_with_images("images", Some(images)).await;
    let pods: Api<Pod> = Api::default_namespaced(lp.client.clone());
    let pod = |name: &str, args: Option<Vec<&str>>| -> Pod {
        obj(json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"restartPolicy": "Never", "containers": [{
                "name": "c", "image": "example/echo:1.2@sha256:0123",
                "env": [{"name": "WHO", "value": "args"}],
                "args": args,
            }]}
        }))
    };
    pods.create(&PostParams::default(), &pod("defaults", None)).await.unwrap();
    pods.create(&PostParams::default(), &pod("custom", Some(vec!["-c", "echo custom $(WHO)"]))).await.unwrap();
    for (name, expected) in [("defaults", "default args\n"), ("custom", "custom args\n")] {
        wait_for(&pods, name, "Succeeded", |p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded"))
            .await;
        let log = std::fs::read_to_string(lp.pod_dir(name).join("log")).unwrap();
        assert_eq!(log, expected);
    }
    lp.stop().await;
}

#[tokio::test]
async fn native_sidecars_run_beside_the_containers_and_stop_after_them() {
    let lp = start("sidecar").await;
    let pods: Api<Pod> = Api::default_namespaced(lp.client.clone());
    let pod: Pod = obj(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "with-sidecar"},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "volumes": [{"name": "shared", "emptyDir": {}}],
            "initContainers": [{
                "name": "helper", "image": "x", "restartPolicy": "Always",
                "volumeMounts": [{"name": "shared", "mountPath": "/shared"}],
                "command": ["sh", "-c", "echo $$$$ > /shared/helper.pid; exec sleep 300"],
            }],
            "containers": [{
                "name": "main", "image": "x",
                "volumeMounts": [{"name": "shared", "mountPath": "/shared"}],
                "command": ["sh", "-c", "while [ ! -s /shared/helper.pid ]; do sleep 0.1; done; echo saw the sidecar"],
            }]
        }
    }));
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let done = wait_for(&pods, "with-sidecar", "Succeeded", |p| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded")
    })
    .await;
    assert_eq!(terminated(&done).exit_code, 0);
    let pid = read_pid(&lp.pod_dir("with-sidecar").join("volumes/shared/helper.pid")).await;
    eventually("the sidecar to be stopped", || async { (!pid_alive(pid)).then_some(()) }).await;
    lp.stop().await;
}

/// A `file://` URI naming a file in a mounted volume reaches the container as a URI of that
/// file, as a trainer's data URI does: a process sees the pod's volume where a container would
/// see its mount.
#[tokio::test]
async fn a_file_uri_in_a_mounted_volume_names_the_volumes_file() {
    let lp = start("file-uri").await;
    let config_maps: Api<ConfigMap> = Api::default_namespaced(lp.client.clone());
    let data = obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "rows"},
                          "data": {"rows.csv": "x,y\n1,2\n"}}));
    config_maps.create(&PostParams::default(), &data).await.expect("create configmap");
    let jobs: Api<Job> = Api::default_namespaced(lp.client.clone());
    let mut job = one_pod_job("read-uri", "cat \"${DATA_URI#file://}\" > /dev/termination-log");
    let pod = job.spec.as_mut().and_then(|s| s.template.spec.as_mut()).expect("pod spec");
    pod.volumes = Some(vec![obj(json!({"name": "data", "configMap": {"name": "rows"}}))]);
    let container = &mut pod.containers[0];
    container.volume_mounts = Some(vec![obj(json!({"name": "data", "mountPath": "/mnt/data", "readOnly": true}))]);
    container.env = Some(vec![obj(json!({"name": "DATA_URI", "value": "file:///mnt/data/rows.csv"}))]);
    jobs.create(&PostParams::default(), &job).await.expect("create job");
    wait_for(&jobs, "read-uri", "Complete", |j| job_condition(j, "Complete").is_some()).await;
    let pods = job_pods(&lp.client, "read-uri").await;
    assert_eq!(terminated(&pods[0]).message.as_deref(), Some("x,y\n1,2\n"));
    lp.stop().await;
}

/// A Job of one pod running `script`, never retried.
fn one_pod_job(name: &str, script: &str) -> Job {
    obj(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "c", "image": "x", "command": ["sh", "-c", script]}]
        }}}
    }))
}

/// The Job controller's cache can lag behind the pods (dropped watches, 410 Gone): a reconcile
/// handed the Job as it was before its pod finished, after that pod was counted and deleted (an
/// operator cleaning up once it read the result), must not start the Job's pod again.
#[tokio::test]
async fn a_stale_cached_job_never_starts_a_second_pod() {
    let lp = start("job-stale").await;
    let jobs: Api<Job> = Api::default_namespaced(lp.client.clone());
    jobs.create(&PostParams::default(), &one_pod_job("once", "sleep 0.3")).await.expect("create job");
    let stale = wait_for(&jobs, "once", "running", |j| j.status.as_ref().and_then(|s| s.active) == Some(1)).await;
    wait_for(&jobs, "once", "Complete", |j| job_condition(j, "Complete").is_some()).await;
    let pods: Api<Pod> = Api::default_namespaced(lp.client.clone());
    for pod in job_pods(&lp.client, "once").await {
        pods.delete(&pod.name_any(), &DeleteParams::default()).await.expect("delete pod");
    }
    eventually("the pod deleted", || async { job_pods(&lp.client, "once").await.is_empty().then_some(()) }).await;

    localplane::controllers::job::reconcile_once(&stale, &lp.client).await.expect("reconcile");
    let started: Vec<String> = job_pods(&lp.client, "once").await.iter().map(|p| p.name_any()).collect();
    assert!(started.is_empty(), "a second pod started from a stale Job: {started:?}");
    lp.stop().await;
}

/// A pod's outcome counts however soon another client deletes the pod: an operator that deletes
/// a trainer's pod as soon as it read its result must not make the Job start the pod again (the
/// trainer ran twice, and an operator deleting each new pod made that a loop). The Job
/// controller's requests are slowed so the test's deletion surely comes before its count.
#[tokio::test]
async fn a_pod_deleted_as_soon_as_it_succeeds_is_counted_and_never_started_again() {
    let lp = start("job-tracking").await;
    let observer = lp.plane.observer_client().expect("observer client");
    faults(&observer, Some(json!({"latencyMs": 300}))).await;
    let jobs: Api<Job> = Api::default_namespaced(observer.clone());
    jobs.create(&PostParams::default(), &one_pod_job("counted", "sleep 1")).await.expect("create job");
    let first = eventually("the Job's pod", || async { job_pods(&observer, "counted").await.into_iter().next() }).await;
    let pods: Api<Pod> = Api::default_namespaced(observer.clone());
    let succeeded = |p: &Pod| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded");
    wait_for(&pods, &first.name_any(), "Succeeded", succeeded).await;
    pods.delete(&first.name_any(), &DeleteParams::default()).await.expect("delete pod");

    let done = wait_for(&jobs, "counted", "Complete", |j| job_condition(j, "Complete").is_some()).await;
    faults(&observer, Some(json!({}))).await;
    let status = done.status.unwrap_or_default();
    assert_eq!((status.succeeded, status.failed), (Some(1), None), "{status:#?}");
    let again: Vec<String> =
        job_pods(&observer, "counted").await.iter().map(|p| p.name_any()).filter(|n| *n != first.name_any()).collect();
    assert!(again.is_empty(), "the Job started its pod again: {again:?}");
    // Counted, the pod is let go and its deletion completes.
    eventually("the counted pod gone", || async { job_pods(&observer, "counted").await.is_empty().then_some(()) })
        .await;
    lp.stop().await;
}

/// Switch localplane's fault injection (`Some`), or read it; returns its answer: the
/// configuration and the errors injected so far.
async fn faults(client: &Client, config: Option<serde_json::Value>) -> serde_json::Value {
    let request = match config {
        Some(config) => axum::http::Request::post("/localplane/faults")
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&config).expect("json")),
        None => axum::http::Request::get("/localplane/faults").body(Vec::new()),
    };
    client.request::<serde_json::Value>(request.expect("request")).await.expect("fault endpoint")
}

/// A pod's outcome exists only in its status: the kubelet writes it however long the API
/// server refuses, and the pod ends Succeeded once the server accepts writes again.
#[tokio::test]
async fn the_kubelet_writes_a_final_pod_status_through_any_run_of_errors() {
    let lp = start("pod-status-retry").await;
    let pods: Api<Pod> = Api::default_namespaced(lp.client.clone());
    faults(&lp.client, Some(json!({"errors": {"patch": {"rate": 1.0, "code": 500}}}))).await;
    let pod: Pod = obj(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "quick"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x", "command": ["true"]}]}
    }));
    pods.create(&PostParams::default(), &pod).await.expect("create pod");
    // Far more refused status writes than a pod has states: the kubelet kept retrying.
    let refused = eventually("15 refused status writes", || async {
        faults(&lp.client, None).await["injected"]["patch"].as_u64().filter(|n| *n >= 15)
    })
    .await;
    assert!(refused >= 15);
    faults(&lp.client, Some(json!({}))).await;
    let phase = |p: &Pod| p.status.as_ref().and_then(|s| s.phase.clone());
    let done = wait_for(&pods, "quick", "Succeeded", move |p| phase(p).as_deref() == Some("Succeeded")).await;
    assert_eq!(terminated(&done).exit_code, 0);
    lp.stop().await;
}

/// A run of 410 Gone (history compacted under open watches) with nothing to relist must not
/// hold the Job controller: a Job created after it gets its pod at once. With one backoff on
/// the controller's merged trigger stream, which an empty relist never resets, each 410 doubled
/// a pause that held every trigger (up to 30 s).
#[tokio::test]
async fn a_run_of_410s_does_not_hold_the_job_controller() {
    let lp = start("gone-run").await;
    // A compaction every 1.5 s for 9 s, as the fault test does: time is what a growing
    // backoff is about, so this test spends it.
    for _ in 0..6 {
        faults(&lp.client, Some(json!({"compact": true}))).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let jobs: Api<Job> = Api::default_namespaced(lp.client.clone());
    let job: Job = obj(json!({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "after"},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "c", "image": "x", "command": ["true"]}]}}}
    }));
    jobs.create(&PostParams::default(), &job).await.expect("create job");
    let created = Instant::now();
    let started = eventually("the Job's pod", || async {
        let pods = job_pods(&lp.client, "after").await;
        (!pods.is_empty()).then_some(created.elapsed())
    })
    .await;
    assert!(started < Duration::from_secs(5), "the Job waited {started:?} for its pod");
    lp.stop().await;
}
