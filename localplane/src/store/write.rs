//! Create, update and delete with the API server's rules: identity fields are server-owned,
//! optimistic concurrency, generation, status subresource separation, no-op writes, finalizers
//! and deletionTimestamp, CRD registration, and schema admission of custom resources.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::{EventType, State, name_of};
use crate::registry::ResourceType;
use crate::schema::{self, FieldValidation};
use crate::server::errors::{ApiError, ApiResult, Cause};
use crate::time::now_rfc3339;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

/// How a create or update is checked and whether it is stored.
#[derive(Debug, Clone, Copy)]
pub struct WriteOpts {
    pub fv: FieldValidation,
    pub dry_run: bool,
}

#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub propagation: Option<Propagation>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub grace_period_seconds: Option<i64>,
    /// `dryRun: ["All"]` in the body (kube-rs sends it there; kubectl in the query).
    pub dry_run: bool,
}

/// What a DELETE did: the object is gone, or it stays marked for deletion (finalizers, or a
/// foreground deletion waiting for dependents). Clients tell "gone" from "still deleting" by it.
#[derive(Debug, Clone)]
pub enum Deletion {
    Removed(Arc<Value>),
    Pending(Arc<Value>),
}

const GENERATE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Five random characters from the alphabet Kubernetes uses (no vowels, no look-alikes).
pub fn random_suffix() -> String {
    let bytes = *uuid::Uuid::new_v4().as_bytes();
    bytes[..5].iter().map(|b| GENERATE_ALPHABET[*b as usize % GENERATE_ALPHABET.len()] as char).collect()
}

fn md(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata").and_then(Value::as_object_mut) {
        Some(m) => m,
        None => unreachable!("metadata was just made an object"),
    }
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// The part of an object whose change bumps `metadata.generation`.
fn generation_view(rt: &ResourceType, obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        if rt.status {
            m.remove("status");
        }
    }
    v
}

/// Equality that ignores what a no-op write changes anyway (resourceVersion, apply times).
fn same_content(a: &Value, b: &Value) -> bool {
    let norm = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
            if let Some(Value::Array(mf)) = m.get_mut("managedFields") {
                for e in mf.iter_mut() {
                    if let Some(e) = e.as_object_mut() {
                        e.remove("time");
                    }
                }
            }
        }
        v
    };
    norm(a) == norm(b)
}

fn check_type(rt: &ResourceType, obj: &Value) -> ApiResult<()> {
    if !obj.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let av = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if (!kind.is_empty() && kind != rt.kind) || (!av.is_empty() && av != rt.api_version()) {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({}) or kind ({kind}) does not match {}",
            rt.api_version(),
            rt.kind
        )));
    }
    if obj.get("metadata").is_some_and(|m| !m.is_object()) {
        return Err(ApiError::bad_request("metadata must be an object"));
    }
    Ok(())
}

impl State {
    /// Schema admission (custom resources) or the kind's defaults, then the kind's preparation;
    /// shared by create and update.
    fn admit(&mut self, rt: &ResourceType, obj: Value, old: Option<&Value>, fv: FieldValidation) -> ApiResult<Value> {
        let mut obj = obj;
        if let Some(schema) = &rt.schema {
            obj = schema::admit(schema, obj, old, fv, &rt.kind, &rt.group)?;
        } else if !rt.custom {
            rt.strategy.default_fields(&mut obj);
        }
        rt.strategy.prepare(self, &mut obj, old)?;
        Ok(obj)
    }

    /// POST: creates an object in `ns` ("" for cluster-scoped types).
    pub fn create(
        &mut self,
        rt: &Arc<ResourceType>,
        ns: &str,
        mut obj: Value,
        fv: FieldValidation,
        dry_run: bool,
    ) -> ApiResult<Arc<Value>> {
        check_type(rt, &obj)?;
        obj["apiVersion"] = json!(rt.api_version());
        obj["kind"] = json!(rt.kind);
        let body_ns = obj.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("").to_string();
        if rt.namespaced {
            if !body_ns.is_empty() && body_ns != ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            if !self.namespace_exists(ns) {
                return Err(ApiError::not_found("namespaces", ns));
            }
        }
        let m = md(&mut obj);
        let mut name = m.get("name").and_then(Value::as_str).unwrap_or("").to_string();
        if name.is_empty() {
            let prefix = m.get("generateName").and_then(Value::as_str).unwrap_or("");
            if prefix.is_empty() {
                return Err(ApiError::invalid(
                    &rt.kind,
                    &rt.group,
                    "",
                    vec![Cause {
                        reason: "FieldValueRequired",
                        message: "Required value: name or generateName is required".into(),
                        field: "metadata.name".into(),
                    }],
                ));
            }
            name = format!("{prefix}{}", random_suffix());
        }
        validate_name(rt, &name)?;
        m.insert("name".into(), json!(name));
        if rt.namespaced {
            m.insert("namespace".into(), json!(ns));
        } else {
            m.remove("namespace");
        }
        m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        m.insert("creationTimestamp".into(), json!(now_rfc3339()));
        for k in ["deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion", "generation", "selfLink"] {
            m.remove(k);
        }
        if rt.tracks_generation() {
            m.insert("generation".into(), json!(1));
        }
        if rt.status && rt.custom {
            // A custom resource's status is written through /status only.
            if let Some(o) = obj.as_object_mut() {
                o.remove("status");
            }
        }
        if self.get(rt, ns, &name).is_some() {
            return Err(ApiError::already_exists(&rt.qualified(), &name));
        }
        let obj = self.admit(rt, obj, None, fv)?;
        if dry_run {
            return Ok(Arc::new(obj));
        }
        let created = self.put(rt, obj, EventType::Added);
        rt.strategy.stored(self, &created);
        self.collect_if_orphaned(rt, &created);
        Ok(created)
    }

    /// PUT/PATCH result: replaces an existing object (main resource, or `/status` only).
    pub fn update(
        &mut self,
        rt: &Arc<ResourceType>,
        ns: &str,
        name: &str,
        new: Value,
        status_only: bool,
        opts: WriteOpts,
    ) -> ApiResult<Arc<Value>> {
        check_type(rt, &new)?;
        let old = self.get(rt, ns, name).ok_or_else(|| ApiError::not_found(&rt.qualified(), name))?;
        let body_name = new.pointer("/metadata/name").and_then(Value::as_str).unwrap_or(name);
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if let Some(rv) = new.pointer("/metadata/resourceVersion").and_then(Value::as_str)
            && !rv.is_empty()
            && Some(rv) != old.pointer("/metadata/resourceVersion").and_then(Value::as_str)
        {
            return Err(ApiError::stale(&rt.qualified(), name));
        }
        let mut result = if status_only {
            let mut r = (*old).clone();
            match new.get("status") {
                Some(s) => r["status"] = s.clone(),
                None => {
                    if let Some(o) = r.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
            if let Some(mf) = new.pointer("/metadata/managedFields") {
                md(&mut r).insert("managedFields".into(), mf.clone());
            }
            r
        } else {
            let mut r = new;
            r["apiVersion"] = json!(rt.api_version());
            r["kind"] = json!(rt.kind);
            let old_md = old.get("metadata").and_then(Value::as_object).cloned().unwrap_or_default();
            let m = md(&mut r);
            for k in [
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match old_md.get(k) {
                    Some(v) => m.insert(k.into(), v.clone()),
                    None => m.remove(k),
                };
            }
            if !m.contains_key("managedFields")
                && let Some(mf) = old_md.get("managedFields")
            {
                m.insert("managedFields".into(), mf.clone());
            }
            if rt.status {
                match old.get("status") {
                    Some(s) => r["status"] = s.clone(),
                    None => {
                        if let Some(o) = r.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
            }
            r
        };
        md(&mut result)
            .insert("resourceVersion".into(), old.pointer("/metadata/resourceVersion").cloned().unwrap_or(json!("")));
        let mut result = self.admit(rt, result, Some(&old), opts.fv)?;

        let deleting = old.pointer("/metadata/deletionTimestamp").is_some();
        if deleting {
            let before = finalizers(&old);
            let added: Vec<String> = finalizers(&result).into_iter().filter(|f| !before.contains(f)).collect();
            if !added.is_empty() {
                return Err(ApiError::invalid(
                    &rt.kind,
                    &rt.group,
                    name,
                    vec![Cause {
                        reason: "FieldValueForbidden",
                        message: format!(
                            "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                        ),
                        field: "metadata.finalizers".into(),
                    }],
                ));
            }
        }
        if rt.tracks_generation() && generation_view(rt, &old) != generation_view(rt, &result) {
            let g = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
            md(&mut result).insert("generation".into(), json!(g + 1));
        }
        if same_content(&old, &result) {
            return Ok(old);
        }
        if opts.dry_run {
            return Ok(Arc::new(result));
        }
        if deleting && finalizers(&result).is_empty() {
            // The last finalizer is gone: the object goes away now.
            self.objects_replace_silently(rt, &result);
            let gone = self.remove(rt, ns, name).unwrap_or(old);
            self.collect_garbage(&gone);
            return Ok(gone);
        }
        let updated = self.put(rt, result, EventType::Modified);
        rt.strategy.stored(self, &updated);
        Ok(updated)
    }

    /// Keeps the final content (e.g. finalizers removed) in the DELETED event's object.
    fn objects_replace_silently(&mut self, rt: &ResourceType, obj: &Value) {
        let key = (super::namespace_of(obj).to_string(), name_of(obj).to_string());
        if let Some(slot) = self.objects.get_mut(&rt.key()).and_then(|m| m.get_mut(&key)) {
            *slot = Arc::new(obj.clone());
        }
    }

    /// DELETE: removes the object, or marks it deleting while finalizers remain.
    pub fn delete(
        &mut self,
        rt: &Arc<ResourceType>,
        ns: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> ApiResult<Deletion> {
        let old = self.get(rt, ns, name).ok_or_else(|| ApiError::not_found(&rt.qualified(), name))?;
        if let Some(uid) = &opts.precondition_uid
            && Some(uid.as_str()) != old.pointer("/metadata/uid").and_then(Value::as_str)
        {
            return Err(ApiError::conflict(
                &rt.qualified(),
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    super::uid_of(&old)
                ),
            ));
        }
        if let Some(rv) = &opts.precondition_rv
            && Some(rv.as_str()) != old.pointer("/metadata/resourceVersion").and_then(Value::as_str)
        {
            return Err(ApiError::conflict(
                &rt.qualified(),
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    old.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("")
                ),
            ));
        }
        let policy = opts.propagation.unwrap_or(Propagation::Background);
        if opts.dry_run {
            let waits_for_dependents =
                policy == Propagation::Foreground && !self.dependents_of(super::uid_of(&old)).is_empty();
            return Ok(if finalizers(&old).is_empty() && !waits_for_dependents {
                Deletion::Removed(old)
            } else {
                Deletion::Pending(old)
            });
        }
        let result = self.delete_object(rt, &old, policy);
        Ok(match self.get(rt, ns, name) {
            Some(kept) if super::uid_of(&kept) == super::uid_of(&old) => Deletion::Pending(kept),
            _ => Deletion::Removed(result),
        })
    }

    /// Deletion proper (also used by garbage collection and namespace/CRD cleanup).
    pub fn delete_object(&mut self, rt: &Arc<ResourceType>, old: &Arc<Value>, policy: Propagation) -> Arc<Value> {
        let ns = super::namespace_of(old).to_string();
        let name = name_of(old).to_string();
        let uid = super::uid_of(old).to_string();
        if policy == Propagation::Orphan {
            self.orphan_dependents(&uid);
        }
        let mut fins = finalizers(old);
        let has_dependents = !self.dependents_of(&uid).is_empty();
        if policy == Propagation::Foreground && has_dependents && !fins.iter().any(|f| f == "foregroundDeletion") {
            fins.push("foregroundDeletion".into());
        }
        if !fins.is_empty() {
            if old.pointer("/metadata/deletionTimestamp").is_some() && fins == finalizers(old) {
                return old.clone();
            }
            let mut marked = (**old).clone();
            let m = md(&mut marked);
            m.insert("finalizers".into(), json!(fins));
            if !m.contains_key("deletionTimestamp") {
                m.insert("deletionTimestamp".into(), json!(now_rfc3339()));
                m.insert("deletionGracePeriodSeconds".into(), json!(0));
                if let Some(g) = m.get("generation").and_then(Value::as_i64) {
                    m.insert("generation".into(), json!(g + 1));
                }
            }
            let marked = self.put(rt, marked, EventType::Modified);
            if policy == Propagation::Foreground {
                self.delete_dependents(&uid);
                self.finish_foreground(&uid);
                return self.get(rt, &ns, &name).unwrap_or(marked);
            }
            return marked;
        }
        rt.strategy.removing(self, old);
        match self.remove(rt, &ns, &name) {
            Some(gone) => {
                self.collect_garbage(&gone);
                gone
            }
            None => old.clone(),
        }
    }

    /// Deletes every object of a namespace (the namespace's own deletion).
    pub(crate) fn empty_namespace(&mut self, ns: &str) {
        let types: Vec<Arc<ResourceType>> = self.registry.all().filter(|t| t.namespaced).cloned().collect();
        for t in types {
            for obj in self.list(&t, Some(ns)) {
                self.delete_object(&t, &obj, Propagation::Background);
            }
        }
    }
}

fn validate_name(rt: &ResourceType, name: &str) -> ApiResult<()> {
    let ok = name.len() <= 253
        && !name.is_empty()
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | ':'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    // RBAC names may contain ':' (system:...); other kinds are DNS subdomains.
    let colon_ok = rt.group == "rbac.authorization.k8s.io" || !name.contains(':');
    if ok && colon_ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            &rt.kind,
            &rt.group,
            name,
            vec![Cause {
                reason: "FieldValueInvalid",
                message: format!(
                    "Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
                ),
                field: "metadata.name".into(),
            }],
        ))
    }
}
