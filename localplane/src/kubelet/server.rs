//! The kubelet's own HTTPS endpoint, which an API server calls for `pods/<name>/log`
//! (`GET /containerLogs/<namespace>/<pod>/<container>`): the real control plane reaches it at the
//! Node's InternalIP and `daemonEndpoints.kubeletEndpoint.Port`. localplane's own API server reads
//! the log files directly and needs none of this.
//!
//! Supported: `tailLines`, `limitBytes`. Not supported: `follow` (answers what is written so far),
//! `previous`, `sinceSeconds`, `timestamps`, exec/attach/port-forward. Every container of a pod
//! shares one log file. No client authentication: it listens on loopback only, and the API server
//! does not verify its certificate unless told to (`--kubelet-certificate-authority`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use super::Kubelet;
use super::logs;
use super::paths::{PodDirs, safe_segment};

/// Serves the endpoint on `listener` until the kubelet shuts down.
pub async fn serve(kubelet: Arc<Kubelet>, listener: TcpListener) -> anyhow::Result<()> {
    let local = listener.local_addr()?;
    let identity = crate::tls::Identity::generate(&[local.ip()])?;
    let listener = crate::server::tls_listener::TlsListener::new(listener, identity.server_config()?)?;
    let shutdown = kubelet.shutdown.clone();
    let router = axum::Router::new()
        .route("/containerLogs/{namespace}/{pod}/{container}", get(container_logs))
        .with_state(kubelet);
    axum::serve(listener, router).with_graceful_shutdown(async move { shutdown.cancelled().await }).await?;
    Ok(())
}

async fn container_logs(
    State(kubelet): State<Arc<Kubelet>>,
    Path((namespace, pod, _container)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if !safe_segment(&namespace) || !safe_segment(&pod) {
        return (StatusCode::BAD_REQUEST, "bad pod name").into_response();
    }
    let path = PodDirs::new(&kubelet.work_dir, &namespace, &pod).log();
    let Ok(text) = tokio::fs::read(&path).await else {
        return (StatusCode::NOT_FOUND, format!("no logs for pod {namespace}/{pod} on this node")).into_response();
    };
    let number = |key: &str| query.get(key).and_then(|v| v.parse::<usize>().ok());
    let text = logs::select(&String::from_utf8_lossy(&text), number("tailLines"), number("limitBytes"));
    ([(header::CONTENT_TYPE, "text/plain")], text).into_response()
}
