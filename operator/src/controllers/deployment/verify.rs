//! The smoke test of one server pod, sent to the pod itself (not the Service) before it may take
//! traffic: `rollout.smokeTest` if given, else the Open Inference Protocol's model-ready and one
//! inference on a row built from the model's reference profile. Its verdict is the pod's
//! readiness gate.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use crate::api::{ServedModel, SmokeTest};
use crate::artifact::{Bins, FeatureProfile};
use crate::controllers::{Context, error::Result, labels};

/// How long one smoke-test request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `pod` waits for its smoke test: its containers are ready and no verdict is recorded.
pub fn needs_verification(pod: &Pod) -> bool {
    let Some(status) = pod.status.as_ref().filter(|_| pod.metadata.deletion_timestamp.is_none()) else {
        return false;
    };
    let conditions = status.conditions.iter().flatten();
    let containers_ready = conditions.clone().any(|c| c.type_ == "ContainersReady" && c.status == "True");
    let judged = conditions.clone().any(|c| c.type_ == labels::MODEL_VERIFIED);
    containers_ready && !judged && status.pod_ip.is_some()
}

/// Smoke-test `pod` (serving `model` as `model_name` on `port`) and record the verdict on it.
pub async fn verify(
    ctx: &Context,
    pod: &Pod,
    port: i32,
    model_name: &str,
    model: Option<&ServedModel>,
    custom: Option<&SmokeTest>,
) -> Result<bool> {
    let ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap_or_default();
    let host = if ip.contains(':') { format!("[{ip}]") } else { ip };
    let base = format!("http://{host}:{port}");
    let verdict = match custom {
        Some(test) => post(ctx, &format!("{base}{}", test.path), &test.body).await,
        None => default_test(ctx, &base, model_name, model.and_then(|m| m.profile.as_deref())).await,
    };
    let passed = verdict.is_ok();
    let (reason, message) = match verdict {
        Ok(said) => ("SmokeTestPassed", said),
        Err(problem) => ("SmokeTestFailed", problem),
    };
    tracing::info!(pod = %pod.name_any(), reason, message, "smoke test");
    set_gate(ctx, pod, passed, reason, &message).await?;
    Ok(passed)
}

async fn default_test(ctx: &Context, base: &str, model_name: &str, profile: Option<&str>) -> Result<String, String> {
    let ready = format!("{base}/v2/models/{model_name}/ready");
    let answer = ctx.http.get(&ready).timeout(REQUEST_TIMEOUT).send().await.map_err(|e| format!("GET {ready}: {e}"))?;
    if !answer.status().is_success() {
        return Err(format!("GET {ready} answered {}", answer.status()));
    }
    let Some(uri) = profile else { return Ok(format!("{ready} answered; no reference profile to infer on")) };
    let profile = read_profile(ctx, uri).await?;
    let body = inference_request(&profile).to_string();
    post(ctx, &format!("{base}/v2/models/{model_name}/infer"), &body).await
}

async fn post(ctx: &Context, url: &str, body: &str) -> Result<String, String> {
    let request = ctx.http.post(url).header("content-type", "application/json").body(body.to_string());
    let answer = request.timeout(REQUEST_TIMEOUT).send().await.map_err(|e| format!("POST {url}: {e}"))?;
    let status = answer.status();
    let text = answer.text().await.unwrap_or_default();
    let excerpt: String = text.chars().take(300).collect();
    if status.is_success() {
        Ok(format!("POST {url} answered {status}"))
    } else {
        Err(format!("POST {url} answered {status}: {excerpt}"))
    }
}

/// The reference profile at `uri`, read with the operator's storage credentials.
pub async fn read_profile(ctx: &Context, uri: &str) -> Result<FeatureProfile, String> {
    // A verification waits on this read: a stuck store fails it soon, like a stuck server.
    let mut storage = ctx.settings.storage.clone();
    storage.timeout = REQUEST_TIMEOUT;
    let bytes = trainloop_storage::read(uri, &storage)
        .await
        .map_err(|e| format!("cannot read the reference profile ({}): {e}", e.reason()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("the reference profile {uri} is not a profile: {e}"))
}

/// A V2 inference request of one typical row: each number at the middle edge of its reference
/// bins (a value seen in training), each category its first listed value.
pub fn inference_request(profile: &FeatureProfile) -> Value {
    let inputs: Vec<Value> = profile
        .features
        .iter()
        .map(|feature| match &feature.bins {
            Bins::Number { edges } => {
                let value = edges.get(edges.len() / 2).copied().unwrap_or(0.0);
                json!({"name": feature.name, "shape": [1], "datatype": "FP64", "data": [value]})
            }
            Bins::Category { categories } => {
                let value = categories.first().cloned().unwrap_or_default();
                json!({"name": feature.name, "shape": [1], "datatype": "BYTES", "data": [value]})
            }
        })
        .collect();
    json!({"inputs": inputs})
}

/// Record the verdict as the pod's readiness-gate condition, with the operator's field manager.
async fn set_gate(ctx: &Context, pod: &Pod, passed: bool, reason: &str, message: &str) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &pod.namespace().unwrap_or_default());
    let condition = json!({
        "type": labels::MODEL_VERIFIED, "status": if passed { "True" } else { "False" },
        "reason": reason, "message": message, "lastTransitionTime": Timestamp::now().to_string(),
    });
    let patch = json!({"apiVersion": "v1", "kind": "Pod", "status": {"conditions": [condition]}});
    let params = PatchParams::apply(labels::FIELD_MANAGER).force();
    match api.patch_status(&pod.name_any(), &params, &Patch::Apply(&patch)).await {
        Ok(_) => Ok(()),
        // The pod went meanwhile: nothing to record.
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(()),
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_row_takes_a_seen_value_of_every_feature() {
        let profile: FeatureProfile = serde_json::from_value(json!({"formatVersion": 1, "samples": 4, "features": [
            {"name": "radius", "type": "number", "edges": [1.0, 2.0, 3.0], "counts": [1, 1, 1, 1]},
            {"name": "plan", "type": "category", "categories": ["basic", "pro"], "counts": [1, 2, 1]},
            {"name": "constant", "type": "number", "edges": [], "counts": [4]}]}))
        .unwrap();
        let request = inference_request(&profile);
        assert_eq!(request["inputs"][0], json!({"name": "radius", "shape": [1], "datatype": "FP64", "data": [2.0]}));
        assert_eq!(request["inputs"][1]["data"], json!(["basic"]));
        assert_eq!(request["inputs"][1]["datatype"], "BYTES");
        assert_eq!(request["inputs"][2]["data"], json!([0.0]));
    }

    #[test]
    fn only_ready_unjudged_pods_are_verified() {
        let pod = |conditions: Value| -> Pod {
            serde_json::from_value(
                json!({"metadata": {"name": "p"}, "status": {"podIP": "127.0.1.2", "conditions": conditions}}),
            )
            .unwrap()
        };
        assert!(needs_verification(&pod(json!([{"type": "ContainersReady", "status": "True"}]))));
        assert!(!needs_verification(&pod(json!([{"type": "ContainersReady", "status": "False"}]))));
        let judged =
            json!([{"type": "ContainersReady", "status": "True"}, {"type": labels::MODEL_VERIFIED, "status": "False"}]);
        assert!(!needs_verification(&pod(judged)));
    }
}
