//! Who a request comes from. A bearer token must be the plane's admin token (the kubeconfig's
//! user) or a service-account token this plane issued for the API audience, still valid and of a
//! service account that still exists; any other token is refused with 401, as the real API server
//! does. A request with no credentials is `system:anonymous`, which the default RBAC of a real
//! cluster lets read only the health endpoints and `/version` (system:public-info-viewer): 403
//! elsewhere. Authenticated callers may do anything: RBAC objects are stored, not enforced.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use super::App;
use super::errors::ApiError;
use super::subresources::tokens::API_AUDIENCE;

/// Paths anyone may read, as the default `system:public-info-viewer` binding allows.
fn is_public(path: &str) -> bool {
    let path = path.trim_end_matches('/');
    path == "/version"
        || ["/healthz", "/livez", "/readyz"].iter().any(|p| path == *p || path.starts_with(&format!("{p}/")))
}

/// Ok when the request may proceed; the 401 or 403 `Status` otherwise.
pub fn check(app: &App, headers: &HeaderMap, path: &str) -> Result<(), ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        if is_public(path) {
            return Ok(());
        }
        return Err(ApiError::new(
            403,
            "Forbidden",
            format!("forbidden: User \"system:anonymous\" cannot access path \"{path}\""),
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or_else(unauthorized)?;
    if token == app.admin_token {
        return Ok(());
    }
    let st = app.store.lock();
    match app.tokens.authenticate(&st, token, &[API_AUDIENCE.to_string()]) {
        Ok(_) => Ok(()),
        Err(why) => {
            tracing::debug!(reason = %why, "bearer token refused");
            Err(unauthorized())
        }
    }
}

fn unauthorized() -> ApiError {
    ApiError::new(401, "Unauthorized", "Unauthorized")
}
