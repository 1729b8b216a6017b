//! Errors a request can get, each with its status and its metric reason.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use trainloop_contract::SchemaError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A feature breaks the schema: 400 naming the feature.
    #[error("{message}")]
    Schema { feature: String, message: String },
    /// The body is not the protocol's shape.
    #[error("{0}")]
    Malformed(String),
    #[error("model {0:?} is not served here")]
    UnknownModel(String),
    #[error("the model is not loaded yet")]
    NotReady,
    /// The answer could not be written (a bug, not the client's fault).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Schema { .. } | ApiError::Malformed(_) => StatusCode::BAD_REQUEST,
            ApiError::UnknownModel(_) => StatusCode::NOT_FOUND,
            ApiError::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Prefixes the message with where in the request it happened (e.g.
    /// `instance 3`), keeping the feature named.
    pub fn at(self, context: &str) -> Self {
        match self {
            ApiError::Schema { feature, message } => {
                ApiError::Schema { feature, message: format!("{context}: {message}") }
            }
            ApiError::Malformed(message) => ApiError::Malformed(format!("{context}: {message}")),
            other => other,
        }
    }

    /// The `reason` label of the rejected-requests counter.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::Schema { .. } => "schema",
            ApiError::Malformed(_) => "malformed",
            ApiError::UnknownModel(_) => "not_found",
            ApiError::NotReady => "not_ready",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<SchemaError> for ApiError {
    fn from(error: SchemaError) -> Self {
        let feature = match &error {
            SchemaError::InvalidFeature { feature, .. } => feature.clone(),
            _ => String::new(),
        };
        ApiError::Schema { feature, message: error.to_string() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Both KServe protocols report errors as `{"error": "..."}`.
        (self.status(), Json(serde_json::json!({ "error": self.to_string() }))).into_response()
    }
}
