//! The live profiles of a deployment's ready server pods, read from each pod itself (its IP and
//! the serving port, not the Service, which would answer from one pod only) and summed, and the
//! acknowledgements that let a pod subtract the rows of a read once its judgement is recorded.
//! Each monitor of each policy is a reader of its own: a pod keeps its cursors apart, so two
//! monitors watching one deployment each judge every row.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use serde::Deserialize;

use super::feature;
use crate::api::ProfileCursor;
use crate::artifact::FeatureProfile;

/// How long one pod may take to answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The name a monitor reads under: its policy's uid (an operator restarted is the same reader; a
/// policy deleted and created again under its name is a new one) and the monitor's name.
pub fn reader(policy_uid: &str, monitor: &str) -> String {
    format!("{policy_uid}/{monitor}")
}

/// Why a pod's model server cannot be read per reader, and what to do about it.
fn older_server(pod: &str, what: &str) -> String {
    format!(
        "pod {pod}: its model server {what}, so monitors sharing it would take each other's rows: upgrade it to \
         trainloop-example-model-server {} or later (profile cursors per reader)",
        env!("CARGO_PKG_VERSION")
    )
}

/// A ready server pod and where it answers.
#[derive(Clone, Debug, PartialEq)]
pub struct Server {
    pub pod: String,
    pub base: String,
}

/// The pods that are ready (and not going away), with their address on `port`.
pub fn ready_servers(pods: &[Pod], port: i32) -> Vec<Server> {
    pods.iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .filter_map(|pod| {
            let status = pod.status.as_ref()?;
            let ready = status.conditions.iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True");
            let ip = status.pod_ip.as_deref().filter(|_| ready)?;
            let host = if ip.contains(':') { format!("[{ip}]") } else { ip.to_string() };
            Some(Server { pod: pod.name_any(), base: format!("http://{host}:{port}") })
        })
        .collect()
}

/// A profile as a model server sends it: the rows it counted and the reader has not
/// acknowledged yet, the digest of the model whose bins it uses, the cursor that acknowledges
/// those rows and the reader it was read for.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServedProfile {
    #[serde(flatten)]
    profile: FeatureProfile,
    model_digest: String,
    /// Absent from servers of the contract before acknowledgements.
    cursor: Option<String>,
    /// Absent from servers of the contract before cursors per reader.
    reader: Option<String>,
}

/// The sum of the profiles of the pods that serve `digest`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sum {
    pub profile: Option<FeatureProfile>,
    /// The pods counted, with the cursor of what each answered.
    pub counted: Vec<ProfileCursor>,
    /// Pods that answered for another model (an older one on its way out): left out.
    pub other_model: Vec<String>,
}

/// Read, as `reader`, the live profile of every server in `servers`, at once (`GET
/// /trainloop/profile?reader=`), and sum those of `digest`. Reading subtracts nothing: the rows
/// stay counted until acknowledged.
pub async fn read(http: &reqwest::Client, servers: &[Server], digest: &str, reader: &str) -> Result<Sum, String> {
    let answers = futures::future::join_all(servers.iter().map(|server| read_one(http, server, reader))).await;
    let mut sum = Sum::default();
    for (server, answer) in servers.iter().zip(answers) {
        let served = answer?;
        if served.model_digest != digest {
            sum.other_model.push(server.pod.clone());
            continue;
        }
        let Some(cursor) = served.cursor.filter(|_| served.reader.as_deref() == Some(reader)) else {
            return Err(older_server(&server.pod, "keeps no profile cursors per reader"));
        };
        match &mut sum.profile {
            Some(total) => feature::add(total, &served.profile)?,
            None => {
                feature::check_format(&served.profile)?;
                sum.profile = Some(served.profile);
            }
        }
        sum.counted.push(ProfileCursor { pod: server.pod.clone(), cursor });
    }
    Ok(sum)
}

/// `path` on `server` with `?reader=`, encoded.
fn url_for(server: &Server, path: &str, reader: &str) -> Result<reqwest::Url, String> {
    let mut url =
        reqwest::Url::parse(&format!("{}{path}", server.base)).map_err(|e| format!("pod {}: {e}", server.pod))?;
    url.query_pairs_mut().append_pair("reader", reader);
    Ok(url)
}

async fn read_one(http: &reqwest::Client, server: &Server, reader: &str) -> Result<ServedProfile, String> {
    let pod = &server.pod;
    let request = http.get(url_for(server, "/trainloop/profile", reader)?);
    let answer = request.timeout(REQUEST_TIMEOUT).send().await.map_err(|e| format!("pod {pod}: {e}"))?;
    let status = answer.status();
    if !status.is_success() {
        return Err(format!("pod {pod}: the profile endpoint answered {status}"));
    }
    let bytes = answer.bytes().await.map_err(|e| format!("pod {pod}: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("pod {pod}: not a feature profile: {e}"))
}

/// Acknowledge `cursor` to `server` as `reader` (`POST /trainloop/profile/ack?reader=`): it
/// subtracts the rows of that read, for that reader, once. A pod that no longer knows the cursor
/// (409: it restarted, and its rows went with it; 410: too many reads since, and its rows stay
/// counted, or the pod forgot the reader among too many) has nothing left to subtract.
pub async fn acknowledge(http: &reqwest::Client, server: &Server, reader: &str, cursor: &str) -> Result<(), String> {
    let pod = &server.pod;
    let request =
        http.post(url_for(server, "/trainloop/profile/ack", reader)?).json(&serde_json::json!({"cursor": cursor}));
    let answer = request.timeout(REQUEST_TIMEOUT).send().await.map_err(|e| format!("pod {pod}: {e}"))?;
    match answer.status() {
        status if status.is_success() => Ok(()),
        reqwest::StatusCode::CONFLICT => Ok(()),
        reqwest::StatusCode::GONE => {
            // Which of the two, only the pod's answer says (a read too old takes reads by hand as
            // this reader in between: a monitor acknowledges before it reads again).
            let answer = answer.text().await.unwrap_or_default();
            tracing::warn!(
                pod,
                reader,
                cursor,
                answer,
                "the pod no longer holds this read: if it forgot this reader, the reader starts again from the \
                 rows counted since the pod last forgot one; if the read is too old, its rows stay counted, to be \
                 read again"
            );
            Ok(())
        }
        reqwest::StatusCode::NOT_FOUND => Err(older_server(pod, "has no acknowledgement route")),
        status => Err(format!("pod {pod}: the acknowledgement of cursor {cursor} was answered {status}")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn pod(name: &str, ip: Option<&str>, ready: bool, deleting: bool) -> Pod {
        let mut meta = json!({"name": name});
        if deleting {
            meta["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        let status = if ready { "True" } else { "False" };
        let pod: Value = json!({"metadata": meta,
            "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": status}]}});
        serde_json::from_value(pod).unwrap()
    }

    #[test]
    fn only_ready_pods_with_an_address_are_read_each_at_its_own_address() {
        let pods = [
            pod("a", Some("127.0.1.2"), true, false),
            pod("b", Some("127.0.1.3"), false, false),
            pod("c", None, true, false),
            pod("d", Some("127.0.1.5"), true, true),
            pod("e", Some("fd00::1"), true, false),
        ];
        let servers = ready_servers(&pods, 8080);
        let bases: Vec<&str> = servers.iter().map(|s| s.base.as_str()).collect();
        assert_eq!(bases, ["http://127.0.1.2:8080", "http://[fd00::1]:8080"]);
    }
}
