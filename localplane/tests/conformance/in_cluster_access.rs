//! Pods reach the API from inside: the in-cluster environment, a bound service-account token,
//! `ca.crt` and `namespace` at the standard path. The client in the pod is Python's standard
//! library, verifying the server against `ca.crt` alone.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::json;

use crate::common::{self, Kubectl};

/// Lists ConfigMaps of its namespace with its token, then with a wrong one; prints what it saw.
const CLIENT: &str = r#"
import base64, json, os, ssl, urllib.error, urllib.request
sa = '/var/run/secrets/kubernetes.io/serviceaccount'
if not os.path.exists(sa + '/token'):
    print('no token'); raise SystemExit(0)
ctx = ssl.create_default_context(cafile=sa + '/ca.crt')
ns = open(sa + '/namespace').read()
token = open(sa + '/token').read()
url = 'https://%s:%s/api/v1/namespaces/%s/configmaps' % (
    os.environ['KUBERNETES_SERVICE_HOST'], os.environ['KUBERNETES_SERVICE_PORT_HTTPS'], ns)
def get(tok):
    req = urllib.request.Request(url, headers={'Authorization': 'Bearer ' + tok})
    try:
        with urllib.request.urlopen(req, context=ctx) as r:
            return r.status, [i['metadata']['name'] for i in json.load(r)['items']]
    except urllib.error.HTTPError as e:
        return e.code, json.load(e).get('reason')
claims = json.loads(base64.urlsafe_b64decode(token.split('.')[1] + '=='))
print(json.dumps({'ns': ns, 'own': get(token), 'wrong': get(token[:-4] + 'AAAA'),
                  'sub': claims['sub'], 'pod': claims['kubernetes.io']['pod']['name']}))
"#;

fn pod(name: &str, automount: Option<bool>) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "automountServiceAccountToken": automount,
                 "containers": [{"name": "client", "image": "python", "command": ["python3", "-c", CLIENT]}]}
    }))
    .expect("a pod")
}

async fn output(pods: &Api<Pod>, name: &str) -> String {
    common::wait_for(pods, name, "Succeeded", |p| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded")
    })
    .await;
    pods.logs(name, &Default::default()).await.expect("logs")
}

#[tokio::test]
async fn a_pod_lists_objects_with_its_service_account_token_and_a_wrong_token_gets_401() {
    let plane = common::start().await;
    let client = plane.client().await.expect("client");
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    pods.create(&PostParams::default(), &pod("inside", None)).await.expect("create pod");
    let seen: serde_json::Value = serde_json::from_str(output(&pods, "inside").await.trim()).expect("json output");
    assert_eq!(seen["ns"], "default");
    assert_eq!(seen["own"], json!([200, ["kube-root-ca.crt"]]), "{seen}");
    assert_eq!(seen["wrong"], json!([401, "Unauthorized"]), "{seen}");
    assert_eq!((&seen["sub"], &seen["pod"]), (&json!("system:serviceaccount:default:default"), &json!("inside")));

    // Turned off on the pod: no token is mounted.
    pods.create(&PostParams::default(), &pod("outside", Some(false))).await.expect("create pod");
    assert_eq!(output(&pods, "outside").await.trim(), "no token");
    plane.shutdown().await;
}

#[tokio::test]
async fn every_namespace_gets_a_default_service_account_and_the_root_ca() {
    let plane = common::start().await;
    let k = Kubectl::new(&plane);
    k.ok(&["create", "namespace", "team"], None).await;
    let account = common::eventually(30, "the default service account", || async {
        let out = k.run(&["get", "serviceaccount", "default", "-n", "team", "-o", "name"], None).await;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    })
    .await;
    assert_eq!(account.trim(), "serviceaccount/default");
    let ca = common::eventually(30, "kube-root-ca.crt", || async {
        let out = k
            .run(&["get", "configmap", "kube-root-ca.crt", "-n", "team", "-o", "jsonpath={.data.ca\\.crt}"], None)
            .await;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    })
    .await;
    assert_eq!(ca, plane.identity().ca_pem());
    plane.shutdown().await;
}

#[tokio::test]
async fn anonymous_callers_read_only_public_paths_and_wrong_tokens_get_401() {
    let plane = common::start().await;
    let mut anonymous = plane.client_config().expect("config");
    anonymous.auth_info = Default::default();
    let anonymous = kube::Client::try_from(anonymous).expect("client");
    assert_eq!(anonymous.apiserver_version().await.expect("/version is public").major, "1");
    let refused = Api::<Pod>::default_namespaced(anonymous).list(&Default::default()).await.unwrap_err();
    assert!(matches!(&refused, kube::Error::Api(s) if s.code == 403 && s.reason == "Forbidden"), "{refused:?}");

    let mut wrong = plane.client_config().expect("config");
    wrong.auth_info = serde_json::from_value(json!({"token": "not-a-token"})).expect("auth info");
    let wrong = kube::Client::try_from(wrong).expect("client");
    let refused = wrong.apiserver_version().await.unwrap_err();
    assert!(matches!(&refused, kube::Error::Api(s) if s.code == 401 && s.reason == "Unauthorized"), "{refused:?}");
    plane.shutdown().await;
}
