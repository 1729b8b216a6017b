//! A minimal OpenAPI v3: kubectl apply only needs, per group/version, `patch` operations carrying
//! `x-kubernetes-group-version-kind` and a `fieldValidation` parameter (then it validates on the
//! server with fieldValidation=Strict). Schemas are included for custom resources.

use serde_json::{Map, Value, json};

use crate::registry::{Registry, ResourceType};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

pub fn index(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for (g, vs) in registry.group_versions() {
        for v in vs {
            let p = gv_path(&g, &v);
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={:016X}", registry.generation)}),
            );
        }
    }
    json!({"paths": paths})
}

fn schema_name(rt: &ResourceType) -> String {
    let g: Vec<&str> = rt.group.split('.').rev().collect();
    let prefix = if rt.group.is_empty() { "io.k8s.api.core".to_string() } else { g.join(".") };
    format!("{prefix}.{}.{}", rt.version, rt.kind)
}

fn operation(rt: &ResourceType, action: &str, sub: &str) -> Value {
    let gvk = json!({"group": rt.group, "version": rt.version, "kind": rt.kind});
    let reference = json!({"$ref": format!("#/components/schemas/{}", schema_name(rt))});
    let mut params = vec![
        json!({"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}}),
        json!({"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}}),
        json!({"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}}),
    ];
    if action == "patch" {
        params.push(json!({"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}}));
    }
    let content_types: &[&str] = if action == "patch" {
        // Strategic merge is left out on purpose: kubectl would then need full schemas with
        // patch metadata; without it, kubectl computes strategic patches from its built-in types.
        &["application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json"]
    } else {
        &["application/json"]
    };
    let mut content = Map::new();
    for ct in content_types {
        content.insert(ct.to_string(), json!({"schema": reference}));
    }
    json!({
        "operationId": format!("{action}{}{sub}", rt.kind),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
        "parameters": params,
        "requestBody": {"content": content},
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}}
    })
}

pub fn document(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for rt in registry.all().filter(|t| t.group == group && t.version == version) {
        let base = format!("/{}", gv_path(group, version));
        let item = if rt.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", rt.plural)
        } else {
            format!("{base}/{}/{{name}}", rt.plural)
        };
        let collection = item.trim_end_matches("/{name}").to_string();
        paths.insert(item.clone(), json!({"patch": operation(rt, "patch", ""), "put": operation(rt, "put", "")}));
        paths.insert(collection, json!({"post": operation(rt, "post", "")}));
        if rt.status {
            paths.insert(format!("{item}/status"), json!({"patch": operation(rt, "patch", "Status")}));
        }
        let mut schema = match &rt.schema {
            Some(s) => (**s).clone(),
            None => json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        };
        if let Some(m) = schema.as_object_mut() {
            m.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": rt.group, "version": rt.version, "kind": rt.kind}]),
            );
            if let Some(Value::Object(props)) = m.get_mut("properties") {
                props.entry("apiVersion").or_insert(json!({"type": "string"}));
                props.entry("kind").or_insert(json!({"type": "string"}));
                props
                    .insert("metadata".into(), json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
            }
        }
        schemas.insert(schema_name(rt), schema);
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas}
    }))
}

/// `/openapi/v2`, which kubectl reads (as protobuf only) to validate a `kind: List` on the
/// client: the v1 List has no PATCH operation, so kubectl never sends it for server-side
/// validation. A document without definitions makes kubectl skip the per-item check (it
/// validates only kinds it finds) and go on to send each item, validated by the server then.
/// kubectl also finds no patch metadata in it, so strategic merge patches still come from its
/// built-in types.
pub fn v2(protobuf: bool) -> (&'static str, Vec<u8>) {
    if protobuf {
        // gnostic openapi_v2.Document { swagger (1): "2.0" }
        let mut doc = vec![0x0A, 3];
        doc.extend_from_slice(b"2.0");
        ("application/com.github.proto-openapi.spec.v2.v1.0+protobuf", doc)
    } else {
        let doc = json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.32.0"}, "paths": {}, "definitions": {}});
        ("application/json", doc.to_string().into_bytes())
    }
}
