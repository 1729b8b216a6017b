//! The live profiles of a deployment's ready server pods, read from each pod itself (its IP and
//! the serving port, not the Service, which would answer from one pod only) and summed.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use serde::Deserialize;

use super::feature;
use crate::artifact::FeatureProfile;

/// How long one pod may take to answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

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

/// A profile as a model server sends it: the profile and the digest of the model whose bins it
/// uses.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServedProfile {
    #[serde(flatten)]
    profile: FeatureProfile,
    model_digest: String,
}

/// The sum of the profiles of the pods that serve `digest`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sum {
    pub profile: Option<FeatureProfile>,
    /// The pods counted.
    pub counted: Vec<Server>,
    /// Pods that answered for another model (an older one on its way out): left out.
    pub other_model: Vec<String>,
}

impl Sum {
    pub fn samples(&self) -> u64 {
        self.profile.as_ref().map_or(0, |p| p.samples)
    }
}

/// Read the live profile of every server in `servers`, at once, and sum those of `digest`:
/// `reset` reads and clears each one in a step (`POST /trainloop/profile/reset`), so a row is
/// judged once; otherwise it only looks (`GET /trainloop/profile`).
pub async fn read(http: &reqwest::Client, servers: &[Server], digest: &str, reset: bool) -> Result<Sum, String> {
    let answers = futures::future::join_all(servers.iter().map(|server| read_one(http, server, reset))).await;
    let mut sum = Sum::default();
    for (server, answer) in servers.iter().zip(answers) {
        let served = answer?;
        if served.model_digest != digest {
            sum.other_model.push(server.pod.clone());
            continue;
        }
        match &mut sum.profile {
            Some(total) => feature::add(total, &served.profile)?,
            None => {
                feature::check_format(&served.profile)?;
                sum.profile = Some(served.profile);
            }
        }
        sum.counted.push(server.clone());
    }
    Ok(sum)
}

async fn read_one(http: &reqwest::Client, server: &Server, reset: bool) -> Result<ServedProfile, String> {
    let pod = &server.pod;
    let request = if reset {
        http.post(format!("{}/trainloop/profile/reset", server.base))
    } else {
        http.get(format!("{}/trainloop/profile", server.base))
    };
    let answer = request.timeout(REQUEST_TIMEOUT).send().await.map_err(|e| format!("pod {pod}: {e}"))?;
    let status = answer.status();
    if !status.is_success() {
        return Err(format!("pod {pod}: the profile endpoint answered {status}"));
    }
    let bytes = answer.bytes().await.map_err(|e| format!("pod {pod}: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("pod {pod}: not a feature profile: {e}"))
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
