//! Reading request bodies: a size limit, JSON or YAML, and DeleteOptions.

use axum::body::Body;
use serde_json::Value;

use super::errors::ApiError;
use crate::store::write::{DeleteOptions, Propagation};

/// Larger bodies get 413: etcd's own limit is about 1.5 MiB per object.
pub const BODY_LIMIT: usize = 3 * 1024 * 1024;

pub async fn read(body: Body) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, BODY_LIMIT).await.map_err(|_| ApiError::too_large(BODY_LIMIT))
}

/// Parses JSON, or YAML when the content type says so (apply patches may be either).
pub fn parse(content_type: &str, bytes: &[u8]) -> Result<Value, ApiError> {
    if content_type.contains("protobuf") {
        return super::protobuf::decode_object(bytes);
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => Ok(v),
        Err(e) if content_type.contains("yaml") => serde_saphyr::from_slice::<Value>(bytes)
            .map_err(|y| ApiError::bad_request(format!("error decoding YAML: {y} (as JSON: {e})"))),
        Err(e) => Err(ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))),
    }
}

pub fn delete_options(
    content_type: &str,
    bytes: &[u8],
    query: &super::route::Query,
) -> Result<DeleteOptions, ApiError> {
    let v: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else if content_type.contains("protobuf") {
        super::protobuf::decode_delete_options(bytes)?
    } else {
        serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
    };
    let policy = v
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .or(query.get("propagationPolicy"))
        .map(|p| match p {
            "Background" => Ok(Propagation::Background),
            "Foreground" => Ok(Propagation::Foreground),
            "Orphan" => Ok(Propagation::Orphan),
            other => {
                Err(ApiError::bad_request(format!("DeleteOptions.propagationPolicy: Unsupported value: {other:?}")))
            }
        })
        .transpose()?;
    let policy = policy.or_else(|| match v.get("orphanDependents").and_then(Value::as_bool) {
        Some(true) => Some(Propagation::Orphan),
        _ => None,
    });
    Ok(DeleteOptions {
        propagation: policy,
        precondition_uid: v.pointer("/preconditions/uid").and_then(Value::as_str).map(str::to_string),
        precondition_rv: v.pointer("/preconditions/resourceVersion").and_then(Value::as_str).map(str::to_string),
        grace_period_seconds: v
            .get("gracePeriodSeconds")
            .and_then(Value::as_i64)
            .or_else(|| query.get("gracePeriodSeconds").and_then(|g| g.parse().ok())),
        dry_run: query.get("dryRun") == Some("All")
            || v.get("dryRun").and_then(Value::as_array).is_some_and(|a| a.iter().any(|d| d == "All")),
    })
}
