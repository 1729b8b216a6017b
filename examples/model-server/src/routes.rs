//! HTTP routes: Open Inference Protocol (V2), KServe V1, trainloop's profile
//! extension, and Prometheus metrics.

use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use trainloop_contract::FeatureProfile;

use crate::error::ApiError;
use crate::latency::Started;
use crate::predict::predict_rows;
use crate::profile_ledger::{AckError, READER_NAME_LIMIT};
use crate::scratch::write_answer;
use crate::state::{AppState, Served};
use crate::{protocol_v1, protocol_v2};

/// Header naming the digest of the model a profile was binned for, so a
/// reader can tell a profile of an older model from the current one.
pub const MODEL_DIGEST_HEADER: &str = "x-trainloop-model-digest";

/// Handlers borrow the state: a `State<Arc<_>>` clones the `Arc` twice per
/// request (axum's handler service, then the extractor), atomic adds on one
/// cache line that every worker thread writes.
type Shared = State<&'static AppState>;

/// The routes over `state`, which the router keeps alive for the rest of the
/// process (a server builds one router and serves it until it exits).
pub fn router(state: Arc<AppState>) -> Router {
    let state: &'static AppState = Box::leak(Box::new(state));
    Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
        .route("/v2/models/{name}", get(model_metadata))
        .route("/v2/models/{name}/ready", get(model_ready))
        .route("/v2/models/{name}/infer", post(infer_v2))
        // matchit allows no literal after a parameter in one segment, so
        // `{name}:predict` is split by hand.
        .route("/v1/models/{name}", get(model_status_v1).post(predict_v1))
        .route("/trainloop/profile", get(live_profile))
        .route("/trainloop/profile/ack", post(acknowledge_profile))
        .route("/trainloop/profile/reference", get(reference_profile))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn server_metadata() -> Json<Value> {
    Json(json!({
        "name": env!("CARGO_PKG_NAME"),
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": ["trainloop-profile"],
    }))
}

async fn live() -> Json<Value> {
    Json(json!({"live": true}))
}

async fn ready(State(state): Shared) -> Response {
    let ready = state.served().is_some();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(json!({"ready": ready}))).into_response()
}

/// The served model, if `name` is ours and it is loaded.
fn model<'a>(state: &'a AppState, name: &str) -> Result<&'a Served, ApiError> {
    if name != state.model_name {
        return Err(ApiError::UnknownModel(name.to_string()));
    }
    state.served().ok_or(ApiError::NotReady)
}

async fn model_metadata(State(state): Shared, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let served = model(state, &name)?;
    Ok(Json(protocol_v2::metadata(&state.model_name, &served.model.digest, &served.model.artifact.features)))
}

async fn model_ready(State(state): Shared, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    model(state, &name)?;
    Ok(Json(json!({"name": name, "ready": true})))
}

async fn infer_v2(State(state): Shared, Path(name): Path<String>, body: Bytes) -> Response {
    let started = state.metrics.latency.start();
    let result = model(state, &name).and_then(|served| {
        let (id, rows) = protocol_v2::parse_request(&served.model.artifact.features, &body)?;
        let mut predictions = Vec::with_capacity(rows.len());
        predict_rows(state, served, &rows, |prediction| predictions.push(prediction));
        write_answer(|buffer| {
            protocol_v2::response(buffer, &state.model_name, &served.model.digest, id.as_deref(), &predictions)
        })
    });
    finish(state, started, result)
}

async fn model_status_v1(State(state): Shared, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    model(state, &name)?;
    Ok(Json(json!({"name": name, "ready": true})))
}

/// The model a V1 request's `{name}:predict` segment names, decoded as
/// `Path<String>` would decode it (without allocating, unless it has percent
/// escapes).
fn v1_model<'a>(state: &'a AppState, uri: &Uri) -> Result<&'a Served, ApiError> {
    if uri.path() == state.v1_predict_path {
        return state.served().ok_or(ApiError::NotReady);
    }
    let raw = uri.path().rsplit('/').next().unwrap_or_default();
    // A URI is ASCII: without escapes, the segment is its own decoding.
    let name_and_verb = if raw.contains('%') {
        percent_decode_str(raw).decode_utf8().map_err(|_| ApiError::Malformed(format!("{raw:?} is not UTF-8")))?
    } else {
        Cow::Borrowed(raw)
    };
    match name_and_verb.rsplit_once(':') {
        Some((name, "predict")) => model(state, name),
        _ => Err(ApiError::UnknownModel(name_and_verb.into_owned())),
    }
}

/// The request's URI, moved out of it rather than cloned (as a `Uri`
/// extractor does): the body extractor after it reads no URI. An extractor,
/// not an `.await` in the handler, keeps the handler's future small: axum
/// allocates it per request, and for 1 KiB or more glibc first merges its
/// fast free lists (it was 976 bytes larger, 5 % of an in-process request).
struct TakenUri(Uri);

impl<S: Send + Sync> FromRequestParts<S> for TakenUri {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(TakenUri(std::mem::take(&mut parts.uri)))
    }
}

async fn predict_v1(State(state): Shared, TakenUri(uri): TakenUri, body: Bytes) -> Response {
    let started = state.metrics.latency.start();
    let result = v1_model(state, &uri).and_then(|served| {
        let rows = protocol_v1::parse_instances(&served.model.artifact.features, &served.keys, &body)?;
        write_answer(|buffer| {
            let mut answer = protocol_v1::Answer::start(buffer, &served.answer_pieces);
            predict_rows(state, served, &rows, |prediction| answer.push(prediction));
            answer.finish();
            Ok(())
        })
    });
    finish(state, started, result)
}

/// Records the latency and, on error, the rejection.
fn finish(state: &AppState, started: Started, result: Result<Bytes, ApiError>) -> Response {
    state.metrics.latency.observe_since(started);
    match result {
        Ok(body) => ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response(),
        Err(error) => {
            state.metrics.reject(error.reason());
            error.into_response()
        }
    }
}

/// A profile as served: the profile's own fields plus `modelDigest`, the
/// digest of the model whose bins it uses (also in a header), so a reader
/// summing the profiles of several pods can leave out those of an older model;
/// a reader's live profile also carries the `cursor` that acknowledges its
/// rows and the `reader` it was read for (which tells the reader this server
/// keeps cursors per reader).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProfileBody<'a> {
    #[serde(flatten)]
    profile: &'a FeatureProfile,
    model_digest: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reader: Option<&'a str>,
}

fn profile_response(served: &Served, profile: &FeatureProfile, read: Option<(&str, &str)>) -> Response {
    let digest = served.model.digest.as_str();
    let (reader, cursor) = read.unzip();
    let body = ProfileBody { profile, model_digest: digest, cursor, reader };
    ([(MODEL_DIGEST_HEADER, digest.to_string())], Json(body)).into_response()
}

#[derive(Deserialize)]
struct ReaderQuery {
    reader: Option<String>,
}

/// The reader a request names (`?reader=`), if any.
fn reader_of(query: Result<Query<ReaderQuery>, QueryRejection>) -> Result<Option<String>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::Malformed(format!("not a reader query: {e}")))?;
    match query.reader {
        Some(reader) if reader.is_empty() || reader.len() > READER_NAME_LIMIT => {
            Err(ApiError::Malformed(format!("a reader's name has 1 to {READER_NAME_LIMIT} bytes")))
        }
        reader => Ok(reader),
    }
}

/// For `?reader=`: the rows counted and not yet acknowledged by that reader,
/// with the cursor that acknowledges exactly them (see `profile_ledger`).
/// Without a reader: every row counted since start, with no cursor (what a
/// person comparing traffic reads; it holds nothing).
async fn live_profile(
    State(state): Shared,
    query: Result<Query<ReaderQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let served = state.served().ok_or(ApiError::NotReady)?;
    Ok(match reader_of(query)? {
        Some(reader) => {
            let read = served.live.read(&reader);
            profile_response(served, &read.profile, Some((&reader, &read.cursor)))
        }
        None => profile_response(served, &served.live.peek(), None),
    })
}

#[derive(Deserialize)]
struct Acknowledgement {
    cursor: String,
}

/// Subtracts, for the reader `?reader=` names, the rows its read answered,
/// once it recorded them: idempotent. 409 for a cursor this process never
/// handed out (the server restarted: those rows are gone with it), 410 for
/// one too old to be told apart or a reader no longer held (its rows stay
/// counted).
async fn acknowledge_profile(
    State(state): Shared,
    query: Result<Query<ReaderQuery>, QueryRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let served = state.served().ok_or(ApiError::NotReady)?;
    let Some(reader) = reader_of(query)? else {
        return Err(ApiError::Malformed(
            "name the reader the read was for: POST /trainloop/profile/ack?reader=<as in GET /trainloop/profile?reader=>"
                .into(),
        ));
    };
    let acknowledgement: Acknowledgement =
        serde_json::from_slice(&body).map_err(|e| ApiError::Malformed(format!("not an acknowledgement: {e}")))?;
    let (status, answer) = match served.live.acknowledge(&reader, &acknowledgement.cursor) {
        Ok(()) => (StatusCode::OK, json!({"acknowledged": acknowledgement.cursor, "reader": reader})),
        Err(error @ AckError::Malformed(_)) => return Err(ApiError::Malformed(error.to_string())),
        Err(error @ AckError::NotOurs(_)) => (StatusCode::CONFLICT, json!({"error": error.to_string()})),
        Err(error @ (AckError::Forgotten(_) | AckError::UnknownReader(_))) => {
            (StatusCode::GONE, json!({"error": error.to_string()}))
        }
    };
    Ok((status, Json(answer)).into_response())
}

/// The reference profile carried by the artifact.
async fn reference_profile(State(state): Shared) -> Result<Response, ApiError> {
    let served = state.served().ok_or(ApiError::NotReady)?;
    Ok(profile_response(served, &served.model.artifact.profile, None))
}

async fn metrics(State(state): Shared) -> Response {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.encode())
        .into_response()
}
