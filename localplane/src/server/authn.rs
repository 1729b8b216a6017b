//! Who a request comes from. A bearer token must be the plane's admin token (the kubeconfig's
//! user) or a service-account token this plane issued for the API audience, still valid and of a
//! service account that still exists; any other token is refused with 401, as the real API server
//! does. A request with no credentials passes as anonymous: localplane stores RBAC objects but
//! does not enforce them, so there is nothing a caller could be forbidden.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use super::App;
use super::errors::ApiError;
use super::subresources::tokens::API_AUDIENCE;

/// Ok when the request may proceed; the 401 `Status` otherwise.
pub fn check(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(());
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
