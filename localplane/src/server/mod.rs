//! The HTTP front: routing of discovery, OpenAPI, the localplane control endpoints and the
//! resource API onto the store.

pub mod aggregated_discovery;
pub mod authn;
pub mod body;
pub mod deleted;
pub mod discovery;
pub mod errors;
pub mod event_table;
pub mod handlers;
pub mod openapi;
pub mod ordered;
pub mod protobuf;
pub mod route;
pub mod subresources;
pub mod table;
pub mod tls_listener;
pub mod watch;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

use crate::faults::{FaultConfig, Faults};
use crate::store::Store;
use errors::ApiError;
use handlers::json_response;
use route::Query;

pub struct App {
    pub store: Arc<Store>,
    pub faults: Arc<Faults>,
    pub shutdown: CancellationToken,
    /// `127.0.0.1:PORT`, as advertised in discovery.
    pub addr: String,
    pub work_dir: PathBuf,
    /// Signs TokenRequests and checks them in TokenReviews.
    pub tokens: subresources::tokens::TokenIssuer,
    /// The bearer token of the kubeconfig's user.
    pub admin_token: String,
}

pub fn router(app: Arc<App>) -> Router {
    Router::new().fallback(handle).with_state(app)
}

async fn handle(State(app): State<Arc<App>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = Query::parse(parts.uri.query());
    let result = match authn::check(&app, &parts.headers, &path) {
        Ok(()) => dispatch(&app, &parts.method, &parts.headers, &path, &query, body).await,
        Err(e) => Err(e),
    };
    let resp = match result {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    tracing::debug!(method = %parts.method, %path, status = resp.status().as_u16(), "request");
    resp
}

async fn dispatch(
    app: &Arc<App>,
    method: &Method,
    headers: &axum::http::HeaderMap,
    path: &str,
    q: &Query,
    body: Body,
) -> Result<Response, ApiError> {
    let trimmed = path.trim_end_matches('/');
    let get = method == Method::GET;
    let reg = || app.store.lock().registry.clone();
    match trimmed {
        "/version" if get => return Ok(json_response(StatusCode::OK, &discovery::version())),
        "/healthz" | "/readyz" | "/livez" => return Ok((StatusCode::OK, "ok").into_response()),
        "/api" | "/apis" if get => {
            let core = trimmed == "/api";
            return Ok(match aggregated_discovery::negotiate(headers) {
                Some(v) => aggregated_discovery::response(headers, &aggregated_discovery::document(&reg(), core, v), v),
                None if core => json_response(StatusCode::OK, &discovery::api_versions(&app.addr)),
                None => json_response(StatusCode::OK, &discovery::api_group_list(&reg())),
            });
        }
        "/openapi/v3" if get => return Ok(json_response(StatusCode::OK, &openapi::index(&reg()))),
        "/openapi/v2" if get => {
            let accept = headers.get(axum::http::header::ACCEPT).and_then(|a| a.to_str().ok()).unwrap_or("");
            let (content_type, body) = openapi::v2(accept.contains("protobuf"));
            return Ok(([(axum::http::header::CONTENT_TYPE, content_type)], body).into_response());
        }
        "/localplane/faults" => return faults(app, method, body).await,
        "/localplane/compact" if method == Method::POST => {
            app.store.compact();
            return Ok(json_response(StatusCode::OK, &serde_json::json!({"compacted": true})));
        }
        _ => {}
    }
    if let Some(gv) = trimmed.strip_prefix("/openapi/v3/") {
        let (g, v) = match gv.strip_prefix("api/") {
            Some(v) => ("", v),
            None => gv
                .strip_prefix("apis/")
                .and_then(|r| r.split_once('/'))
                .ok_or_else(|| ApiError::not_found_path(path))?,
        };
        return openapi::document(&reg(), g, v)
            .map(|d| json_response(StatusCode::OK, &d))
            .ok_or_else(|| ApiError::not_found_path(path));
    }
    let Some((group, version, rest)) = route::split_group_version(trimmed) else {
        // `/apis/<group>` alone.
        if let Some(g) = trimmed.strip_prefix("/apis/").filter(|g| !g.contains('/')) {
            return discovery::api_group(&reg(), g)
                .map(|d| json_response(StatusCode::OK, &d))
                .ok_or_else(|| ApiError::not_found_path(path));
        }
        return Err(ApiError::not_found_path(path));
    };
    if rest.is_empty() {
        return discovery::resource_list(&reg(), &group, &version)
            .map(|d| json_response(StatusCode::OK, &d))
            .ok_or_else(|| ApiError::not_found_path(path));
    }
    let rp = {
        let st = app.store.lock();
        route::resolve(&st.registry, &group, &version, &rest, path)?
    };
    handlers::resource(app, method, headers, rp, q, body).await
}

async fn faults(app: &Arc<App>, method: &Method, body: Body) -> Result<Response, ApiError> {
    match *method {
        Method::GET => {}
        Method::POST | Method::PUT => {
            let bytes = body::read(body).await?;
            let cfg: FaultConfig = serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::bad_request(format!("invalid fault configuration: {e}")))?;
            if app.faults.set(cfg)? {
                app.store.compact();
            }
        }
        Method::DELETE => {
            app.faults.set(FaultConfig::default())?;
        }
        _ => return Err(ApiError::method_not_allowed("use GET, POST or DELETE")),
    }
    let mut answer = serde_json::to_value(app.faults.get()).map_err(|e| ApiError::internal(e.to_string()))?;
    answer["injected"] = serde_json::json!(app.faults.injected());
    Ok(json_response(StatusCode::OK, &answer))
}
