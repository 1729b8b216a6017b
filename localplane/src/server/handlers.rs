//! The verbs on resources: get, list, watch, create, update, patch, delete, deletecollection,
//! plus the `/status` and `pods/log` subresources and the Table / PartialObjectMetadata views
//! (honoured on reads and writes alike, as the real server does).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::App;
use super::body;
use super::errors::{ApiError, ApiResult, Cause};
use super::route::{Query, ResourcePath};
use super::subresources;
use super::table::{partial_metadata, table};
use super::watch::{WatchParams, watch};
use crate::patch::apply::{self, ApplyRequest, ListType};
use crate::patch::{json as jsonpatch, merge, strategic};
use crate::registry::ResourceType;
use crate::schema::FieldValidation;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::write::{Deletion, WriteOpts};

/// What the client asked to get back (from Accept).
#[derive(Debug, Clone, Copy, PartialEq)]
enum View {
    Full,
    Table,
    Meta,
}

fn view(headers: &HeaderMap) -> View {
    let accept = headers.get(header::ACCEPT).and_then(|a| a.to_str().ok()).unwrap_or("");
    // The first listed media type wins, as in content negotiation by preference order.
    let first = accept.split(',').next().unwrap_or("");
    if first.contains("as=Table") {
        View::Table
    } else if first.contains("as=PartialObjectMetadata") {
        View::Meta
    } else {
        View::Full
    }
}

pub fn json_response(code: StatusCode, v: &Value) -> Response {
    let mut r = (code, super::ordered::to_string(v)).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A stored object in the requested version and view. Tables print the stored type, as the real
/// server prints the internal object whatever the version asked for.
fn object_response(code: StatusCode, p: &ResourcePath, obj: &Value, v: View, q: &Query) -> Response {
    match v {
        View::Full => json_response(code, &p.served(obj)),
        View::Meta => json_response(code, &partial_metadata(obj)),
        View::Table => {
            let rv = obj.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("");
            let t = table(&p.stored, &[obj], rv, q.get("includeObject").unwrap_or("Metadata"));
            json_response(code, &t)
        }
    }
}

fn verb(method: &Method, p: &ResourcePath, q: &Query) -> &'static str {
    match (method.as_str(), p.name.is_some()) {
        ("GET", false) if q.flag("watch") => "watch",
        ("GET", false) => "list",
        ("GET", true) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "other",
    }
}

fn field_validation(q: &Query) -> ApiResult<FieldValidation> {
    FieldValidation::parse(q.get("fieldValidation"))
}

fn dry_run(q: &Query) -> bool {
    q.get("dryRun") == Some("All")
}

pub async fn resource(
    app: &Arc<App>,
    method: &Method,
    headers: &HeaderMap,
    p: ResourcePath,
    q: &Query,
    req_body: Body,
) -> ApiResult<Response> {
    let verb = verb(method, &p, q);
    let observer = headers.contains_key(crate::faults::OBSERVER_HEADER);
    let latency = app.faults.latency();
    if !latency.is_zero() && !observer {
        tokio::time::sleep(latency).await;
    }
    if let Some(e) = app.faults.error_for(verb).filter(|_| !observer) {
        return Err(e);
    }
    if p.rt.namespaced && p.namespace.is_none() && !matches!(verb, "list" | "watch") {
        return Err(ApiError::not_found_path(&format!("/{}", p.rt.plural)));
    }
    let ns = p.namespace.clone().unwrap_or_default();
    match p.subresource.as_deref() {
        None => {}
        Some("status") if p.rt.status && matches!(verb, "get" | "update" | "patch") => {}
        Some("log") if p.rt.log && verb == "get" => return pod_log(app, &p, &ns, q).await,
        Some("scale") if p.rt.scale.is_some() && matches!(verb, "get" | "update" | "patch") => {
            return scale(app, &p, &ns, verb, headers, q, req_body).await;
        }
        Some("eviction") if p.rt.kind == "Pod" && p.rt.group.is_empty() && verb == "create" => {
            let bytes = body::read(req_body).await?;
            let eviction = body::parse(&content_type(headers), &bytes)?;
            let opts = match eviction.get("deleteOptions") {
                Some(o) => body::delete_options("application/json", o.to_string().as_bytes(), q)?,
                None => body::delete_options("application/json", b"", q)?,
            };
            let name = p.name.as_deref().unwrap_or("");
            let status = subresources::eviction::evict(&mut app.store.lock(), &ns, name, &opts)?;
            return Ok(json_response(StatusCode::CREATED, &status));
        }
        Some("token") if p.rt.kind == "ServiceAccount" && p.rt.group.is_empty() && verb == "create" => {
            let bytes = body::read(req_body).await?;
            let request = body::parse(&content_type(headers), &bytes)?;
            let name = p.name.as_deref().unwrap_or("");
            let issued = app.tokens.request(&app.store.lock(), &ns, name, request)?;
            return Ok(json_response(StatusCode::CREATED, &issued));
        }
        Some(other) => {
            return Err(ApiError::not_found_path(&format!("{}/{}", p.rt.plural, other)));
        }
    }
    if p.rt.create_only {
        // TokenReview is the only create-only (review) type served.
        if verb != "create" || p.rt.kind != "TokenReview" {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({method})"
            )));
        }
        let bytes = body::read(req_body).await?;
        let review = body::parse(&content_type(headers), &bytes)?;
        let reviewed = app.tokens.review(&app.store.lock(), review);
        return Ok(json_response(StatusCode::CREATED, &reviewed));
    }
    let status_only = p.subresource.as_deref() == Some("status");
    let v = view(headers);
    let ct = content_type(headers);
    match verb {
        "list" => list(app, &p, q, v),
        "watch" => start_watch(app, &p, q, v, observer),
        "get" => {
            let name = p.name.as_deref().unwrap_or("");
            let obj = app
                .store
                .lock()
                .get(&p.stored, &ns, name)
                .ok_or_else(|| ApiError::not_found(&p.rt.qualified(), name))?;
            Ok(object_response(StatusCode::OK, &p, &obj, v, q))
        }
        "create" => {
            if p.name.is_some() {
                return Err(ApiError::method_not_allowed(format!(
                    "POST is not supported on a single {}",
                    p.rt.singular
                )));
            }
            let bytes = body::read(req_body).await?;
            let obj = p.to_stored(body::parse(&ct, &bytes)?);
            let fv = field_validation(q)?;
            let created = app.store.lock().create(&p.stored, &ns, obj, fv, dry_run(q))?;
            Ok(object_response(StatusCode::CREATED, &p, &created, v, q))
        }
        "update" => {
            let name = p.name.as_deref().unwrap_or("");
            let bytes = body::read(req_body).await?;
            let obj = p.to_stored(body::parse(&ct, &bytes)?);
            let fv = field_validation(q)?;
            let opts = WriteOpts { fv, dry_run: dry_run(q) };
            let updated = app.store.lock().update(&p.stored, &ns, name, obj, status_only, opts)?;
            Ok(object_response(StatusCode::OK, &p, &updated, v, q))
        }
        "patch" => {
            let bytes = body::read(req_body).await?;
            let (code, patched) = patch(app, &p, &ns, q, &ct, &bytes, status_only)?;
            Ok(object_response(code, &p, &patched, v, q))
        }
        "delete" => {
            let name = p.name.as_deref().unwrap_or("");
            let bytes = body::read(req_body).await?;
            let opts = body::delete_options(&ct, &bytes, q)?;
            let outcome = app.store.lock().delete(&p.stored, &ns, name, &opts)?;
            Ok(match super::deleted::body(&p.rt, &outcome) {
                Some(status) => json_response(StatusCode::OK, &status),
                None => {
                    let (Deletion::Removed(obj) | Deletion::Pending(obj)) = &outcome;
                    object_response(StatusCode::OK, &p, obj, v, q)
                }
            })
        }
        "deletecollection" => {
            let bytes = body::read(req_body).await?;
            let opts = body::delete_options(&ct, &bytes, q)?;
            let (labels, fields) = selectors(q, &p.rt)?;
            let mut st = app.store.lock();
            let targets: Vec<Arc<Value>> = st
                .list(&p.stored, p.namespace.as_deref())
                .into_iter()
                .filter(|o| labels.matches(o) && fields.matches(o))
                .collect();
            let mut items = vec![];
            for o in targets {
                let name = crate::store::name_of(&o).to_string();
                let ons = crate::store::namespace_of(&o).to_string();
                if let Ok(Deletion::Removed(g) | Deletion::Pending(g)) = st.delete(&p.stored, &ons, &name, &opts) {
                    items.push(p.served(&g).into_owned());
                }
            }
            let rv = st.rv.to_string();
            Ok(json_response(StatusCode::OK, &list_doc(&p.rt, rv, items)))
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method})"
        ))),
    }
}

fn content_type(headers: &HeaderMap) -> String {
    headers.get(header::CONTENT_TYPE).and_then(|c| c.to_str().ok()).unwrap_or("application/json").to_string()
}

/// GET, PUT or PATCH of `<parent>/scale`.
async fn scale(
    app: &Arc<App>,
    p: &ResourcePath,
    ns: &str,
    verb: &str,
    headers: &HeaderMap,
    q: &Query,
    req_body: Body,
) -> ApiResult<Response> {
    let name = p.name.as_deref().unwrap_or("");
    let write = if verb == "get" {
        None
    } else {
        let ct = content_type(headers);
        let bytes = body::read(req_body).await?;
        let media =
            if verb == "update" { "update".to_string() } else { ct.split(';').next().unwrap_or("").trim().to_string() };
        Some((media, body::parse(&ct, &bytes)?))
    };
    let result = subresources::scale::handle(
        &mut app.store.lock(),
        &p.rt,
        ns,
        name,
        write.as_ref().map(|(m, b)| (m.as_str(), b.clone())),
        dry_run(q),
    )?;
    Ok(json_response(StatusCode::OK, &result))
}

fn selectors(q: &Query, rt: &ResourceType) -> ApiResult<(LabelSelector, FieldSelector)> {
    let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
    let fields =
        FieldSelector::parse(q.get("fieldSelector").unwrap_or("")).map_err(ApiError::bad_request)?.for_kind(rt);
    Ok((labels, fields))
}

fn list_doc(rt: &ResourceType, rv: String, items: Vec<Value>) -> Value {
    json!({
        "kind": format!("{}List", rt.kind),
        "apiVersion": rt.api_version(),
        "metadata": {"resourceVersion": rv},
        "items": items
    })
}

fn list(app: &Arc<App>, p: &ResourcePath, q: &Query, v: View) -> ApiResult<Response> {
    let (labels, fields) = selectors(q, &p.rt)?;
    let (objs, rv) = {
        let st = app.store.lock();
        let objs: Vec<Arc<Value>> = match (fields.name(), p.rt.namespaced, p.namespace.as_deref()) {
            (Some(name), true, Some(ns)) => st.get(&p.stored, ns, name).into_iter().collect(),
            (Some(name), false, _) => st.get(&p.stored, "", name).into_iter().collect(),
            _ => st.list(&p.stored, p.namespace.as_deref()),
        };
        let objs: Vec<Arc<Value>> = objs.into_iter().filter(|o| labels.matches(o) && fields.matches(o)).collect();
        (objs, st.rv.to_string())
    };
    let doc = match v {
        View::Table => {
            let refs: Vec<&Value> = objs.iter().map(|o| o.as_ref()).collect();
            table(&p.stored, &refs, &rv, q.get("includeObject").unwrap_or("Metadata"))
        }
        View::Meta => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": rv},
            "items": objs.iter().map(|o| partial_metadata(o)).collect::<Vec<_>>()
        }),
        View::Full => list_doc(&p.rt, rv, objs.iter().map(|o| p.served(o).into_owned()).collect()),
    };
    Ok(json_response(StatusCode::OK, &doc))
}

fn start_watch(app: &Arc<App>, p: &ResourcePath, q: &Query, v: View, observer: bool) -> ApiResult<Response> {
    let (labels, fields) = selectors(q, &p.rt)?;
    let rv = match q.get("resourceVersion").unwrap_or("") {
        "" | "0" => None,
        s => Some(
            s.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {s:?}: must be an integer")))?,
        ),
    };
    let timeout = q.get("timeoutSeconds").and_then(|t| t.parse::<u64>().ok()).unwrap_or(1800).min(3600);
    Ok(watch(
        app,
        WatchParams {
            rt: p.rt.clone(),
            stored: p.stored.clone(),
            namespace: p.namespace.clone(),
            resource_version: rv,
            send_initial_events: q.flag("sendInitialEvents"),
            bookmarks: q.flag("allowWatchBookmarks"),
            timeout: Duration::from_secs(timeout),
            labels,
            fields,
            meta_only: v == View::Meta,
            table: v == View::Table,
            observer,
        },
    ))
}

/// The list type at a path, for server-side apply: the CRD schema, else known merge keys.
fn list_type_for(rt: &ResourceType) -> impl Fn(&[String]) -> ListType + '_ {
    move |names: &[String]| {
        if let Some(schema) = &rt.schema {
            return crate::schema::list_type(schema, names);
        }
        match names.last().map(String::as_str) {
            Some("finalizers") if names.len() == 2 => ListType::Set,
            // A Service's ports are keyed by port and protocol (a container's by containerPort).
            Some("ports") if names.len() == 2 && names[0] == "spec" && rt.kind == "Service" => {
                ListType::Map(vec!["port".into(), "protocol".into()])
            }
            Some(f) => match strategic::merge_key(f) {
                Some(k) => ListType::Map(vec![k.to_string()]),
                None => ListType::Atomic,
            },
            None => ListType::Atomic,
        }
    }
}

fn patch(
    app: &Arc<App>,
    p: &ResourcePath,
    ns: &str,
    q: &Query,
    ct: &str,
    bytes: &[u8],
    status_only: bool,
) -> ApiResult<(StatusCode, Arc<Value>)> {
    let name = p.name.as_deref().unwrap_or("");
    let fv = field_validation(q)?;
    let dry = dry_run(q);
    let media = ct.split(';').next().unwrap_or("").trim();
    if !matches!(
        media,
        "application/apply-patch+yaml"
            | "application/merge-patch+json"
            | "application/json-patch+json"
            | "application/strategic-merge-patch+json"
    ) {
        return Err(ApiError::unsupported_patch());
    }
    if media == "application/strategic-merge-patch+json" && p.rt.custom {
        return Err(ApiError::unsupported_patch());
    }
    let patch_body = body::parse(ct, bytes)?;
    let mut st = app.store.lock();
    let stored_old = st.get(&p.stored, ns, name);
    // Patches apply to the object as the requested version shows it.
    let old = stored_old.as_deref().map(|o| p.served(o).into_owned());
    if media == "application/apply-patch+yaml" {
        let manager = q.get("fieldManager").filter(|m| !m.is_empty()).ok_or_else(|| {
            ApiError::bad_request("PATCH, application/apply-patch+yaml: fieldManager is required for apply requests")
        })?;
        if !patch_body.is_object() {
            return Err(ApiError::bad_request("apply patch must be an object"));
        }
        let av = patch_body.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = patch_body.get("kind").and_then(Value::as_str).unwrap_or("");
        if av != p.rt.api_version() || kind != p.rt.kind {
            return Err(ApiError::bad_request(format!(
                "invalid object type: {av}, Kind={kind}; expected {}, Kind={}",
                p.rt.api_version(),
                p.rt.kind
            )));
        }
        // A resourceVersion in the applied configuration is a precondition, as on a real server.
        if let (Some(want), Some(live)) = (
            patch_body.pointer("/metadata/resourceVersion").and_then(Value::as_str).filter(|rv| !rv.is_empty()),
            old.as_ref(),
        ) && Some(want) != live.pointer("/metadata/resourceVersion").and_then(Value::as_str)
        {
            return Err(ApiError::stale(&p.rt.qualified(), name));
        }
        let now = crate::time::now_rfc3339();
        let lt = list_type_for(&p.rt);
        let av_string = p.rt.api_version();
        let result = apply::apply(&ApplyRequest {
            live: old.as_ref(),
            config: &patch_body,
            manager,
            force: q.flag("force"),
            subresource: status_only.then_some("status"),
            has_status_subresource: p.rt.status,
            api_version: &av_string,
            now: &now,
            list_type: &lt,
        })
        .map_err(|conflicts| apply_conflict(&p.rt, name, &av_string, conflicts))?;
        return match old {
            None => {
                if status_only {
                    return Err(ApiError::not_found(&p.rt.qualified(), name));
                }
                let mut obj = result;
                obj["metadata"]["name"] = json!(name);
                Ok((StatusCode::CREATED, st.create(&p.stored, ns, p.to_stored(obj), fv, dry)?))
            }
            Some(_) => {
                let opts = WriteOpts { fv, dry_run: dry };
                Ok((StatusCode::OK, st.update(&p.stored, ns, name, p.to_stored(result), status_only, opts)?))
            }
        };
    }
    let old = old.ok_or_else(|| ApiError::not_found(&p.rt.qualified(), name))?;
    let patched = match media {
        "application/merge-patch+json" => merge::merge_patch(&old, &patch_body),
        "application/json-patch+json" => jsonpatch::json_patch(&old, &patch_body).map_err(|e| {
            ApiError::new(
                422,
                "Invalid",
                format!("the server rejected our request due to an error in our request: {e}"),
            )
        })?,
        "application/strategic-merge-patch+json" => {
            if p.rt.custom {
                return Err(ApiError::unsupported_patch());
            }
            strategic::strategic_merge(&old, &patch_body).map_err(ApiError::bad_request)?
        }
        _ => return Err(ApiError::unsupported_patch()),
    };
    let opts = WriteOpts { fv, dry_run: dry };
    Ok((StatusCode::OK, st.update(&p.stored, ns, name, p.to_stored(patched), status_only, opts)?))
}

fn apply_conflict(rt: &ResourceType, name: &str, av: &str, conflicts: Vec<apply::Conflict>) -> ApiError {
    let causes: Vec<Cause> = conflicts
        .iter()
        .map(|c| Cause {
            reason: "FieldManagerConflict",
            message: format!("conflict with \"{}\" using {av}", c.manager),
            field: c.path.clone(),
        })
        .collect();
    let n = causes.len();
    let listing = causes.iter().map(|c| format!("{}: {}", c.message, c.field)).collect::<Vec<_>>().join("\n- ");
    let plural = if n == 1 { "conflict" } else { "conflicts" };
    let mut e = ApiError::new(409, "Conflict", format!("Apply failed with {n} {plural}: {listing}"));
    e.details = Some(json!({
        "name": name, "group": rt.group, "kind": rt.plural,
        "causes": causes.iter().map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field})).collect::<Vec<_>>()
    }));
    e
}

/// `GET pods/<name>/log`: the kubelet writes `<work_dir>/pods/<ns>/<pod>/log`.
async fn pod_log(app: &Arc<App>, p: &ResourcePath, ns: &str, q: &Query) -> ApiResult<Response> {
    let name = p.name.as_deref().unwrap_or("");
    if app.store.lock().get(&p.rt, ns, name).is_none() {
        return Err(ApiError::not_found(&p.rt.qualified(), name));
    }
    let path = app.work_dir.join("pods").join(ns).join(name).join("log");
    let text = tokio::fs::read(&path).await.unwrap_or_default();
    let number = |key: &str| q.get(key).and_then(|t| t.parse::<usize>().ok());
    let text = crate::controllers::kubelet::logs::select(
        &String::from_utf8_lossy(&text),
        number("tailLines"),
        number("limitBytes"),
    );
    let mut r = if q.flag("follow") {
        follow_log(app.clone(), p.rt.clone(), ns.to_string(), name.to_string(), path, text)
    } else {
        (StatusCode::OK, text).into_response()
    };
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(r)
}

/// `follow=true`: streams what is appended to the log until the pod finishes or goes away.
fn follow_log(
    app: Arc<App>,
    rt: Arc<ResourceType>,
    ns: String,
    name: String,
    path: std::path::PathBuf,
    initial: String,
) -> Response {
    use futures::{SinkExt, StreamExt};
    let (mut tx, rx) = futures::channel::mpsc::channel::<bytes::Bytes>(16);
    tokio::spawn(async move {
        let mut offset = tokio::fs::metadata(&path).await.map(|m| m.len()).unwrap_or(0);
        if !initial.is_empty() && tx.send(bytes::Bytes::from(initial)).await.is_err() {
            return;
        }
        loop {
            let pod = app.store.lock().get(&rt, &ns, &name);
            let finished = pod.as_ref().is_none_or(|p| {
                matches!(p.pointer("/status/phase").and_then(Value::as_str), Some("Succeeded" | "Failed"))
            });
            if let Ok(all) = tokio::fs::read(&path).await
                && (all.len() as u64) > offset
            {
                let start = usize::try_from(offset).unwrap_or(all.len()).min(all.len());
                offset = all.len() as u64;
                if tx.send(bytes::Bytes::copy_from_slice(&all[start..])).await.is_err() {
                    return;
                }
            }
            if finished {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = app.shutdown.cancelled() => return,
            }
        }
    });
    Body::from_stream(rx.map(Ok::<bytes::Bytes, std::convert::Infallible>)).into_response()
}
