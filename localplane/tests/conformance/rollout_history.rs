//! Rollout history: `deployment.kubernetes.io/revision` on the Deployment and its ReplicaSets
//! (a template that returns to an old ReplicaSet takes the next revision), so the real
//! `kubectl rollout status` and `kubectl rollout history` work.

use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::api::{Api, ListParams};

use crate::common::{self, Kubectl};

fn deployment(version: &str, cause: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations: {{kubernetes.io/change-cause: "{cause}"}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: example/web:1
        command: [sleep, "600"]
        env: [{{name: VERSION, value: "{version}"}}]
"#
    )
}

/// `kubectl rollout history` rows as (revision, change-cause).
fn history_rows(out: &str) -> Vec<(String, String)> {
    out.lines()
        .skip_while(|l| !l.starts_with("REVISION"))
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (rev, cause) = l.trim().split_once(char::is_whitespace).unwrap_or((l.trim(), ""));
            (rev.to_string(), cause.trim().to_string())
        })
        .collect()
}

#[tokio::test]
async fn kubectl_rollout_status_and_history_follow_revisions() {
    let plane = common::start().await;
    let k = Kubectl::new(&plane);
    for (version, cause) in [("1", "v1"), ("2", "v2"), ("1", "back to v1")] {
        k.ok(&["apply", "-f", "-"], Some(&deployment(version, cause))).await;
        let status = k.ok(&["rollout", "status", "deployment/web", "--timeout=60s"], None).await;
        assert!(status.contains("deployment \"web\" successfully rolled out"), "{status}");
    }
    let history = k.ok(&["rollout", "history", "deployment/web"], None).await;
    let expected = vec![("2".to_string(), "v2".to_string()), ("3".to_string(), "back to v1".to_string())];
    assert_eq!(history_rows(&history), expected, "revision 1 became 3:\n{history}");
    let revision = k
        .ok(
            &[
                "get",
                "deployment",
                "web",
                "-o",
                r"jsonpath={.metadata.annotations.deployment\.kubernetes\.io/revision}",
            ],
            None,
        )
        .await;
    assert_eq!(revision, "3");
    let template = k.ok(&["rollout", "history", "deployment/web", "--revision=3"], None).await;
    assert!(template.contains("VERSION:\t1"), "{template}");

    // The returning ReplicaSet keeps its former revision in the history annotation.
    let client = plane.client().await.expect("client");
    let sets: Api<ReplicaSet> = Api::default_namespaced(client);
    let sets = sets.list(&ListParams::default()).await.unwrap().items;
    let annotation = |rs: &ReplicaSet, key: &str| rs.metadata.annotations.as_ref().and_then(|a| a.get(key)).cloned();
    let returned = sets.iter().find(|rs| annotation(rs, "deployment.kubernetes.io/revision").as_deref() == Some("3"));
    let returned = returned.expect("a ReplicaSet at revision 3");
    assert_eq!(annotation(returned, "deployment.kubernetes.io/revision-history").as_deref(), Some("1"));
    assert_eq!(annotation(returned, "kubernetes.io/change-cause").as_deref(), Some("back to v1"));
    plane.shutdown().await;
}
