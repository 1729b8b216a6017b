//! CustomResourceDefinitions: checked (names, structural schema) and given an accepted status;
//! a stored CRD serves its type; a deleted one takes its resources and its type along.

use serde_json::{Value, json};

use super::Strategy;
use crate::registry;
use crate::schema;
use crate::server::errors::{ApiError, ApiResult, Cause};
use crate::store::{State, name_of};
use crate::time::now_rfc3339;

pub struct CustomResourceDefinition;

impl Strategy for CustomResourceDefinition {
    fn prepare(&self, state: &mut State, obj: &mut Value, old: Option<&Value>) -> ApiResult<()> {
        let name = name_of(obj).to_string();
        let invalid =
            |causes: Vec<Cause>| ApiError::invalid("CustomResourceDefinition", "apiextensions.k8s.io", &name, causes);
        let t = registry::from_crd(obj).map_err(|e| {
            let (field, msg) = e.split_once(": ").unwrap_or(("spec", e.as_str()));
            invalid(vec![Cause { reason: "FieldValueRequired", message: msg.to_string(), field: field.to_string() }])
        })?;
        if name != format!("{}.{}", t.plural, t.group) {
            return Err(invalid(vec![Cause {
                reason: "FieldValueInvalid",
                message: format!("Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"),
                field: "metadata.name".into(),
            }]));
        }
        if let Some(schema) = &t.schema {
            let causes = schema::structural::check(schema, "spec.versions[0].schema.openAPIV3Schema");
            if !causes.is_empty() {
                return Err(invalid(causes));
            }
        }
        if let Some(existing) = state.registry.get_key(&t.key())
            && !existing.custom
        {
            return Err(invalid(vec![Cause {
                reason: "FieldValueInvalid",
                message: "Invalid value: the group/resource is served by a built-in type".into(),
                field: "spec.group".into(),
            }]));
        }
        let now = now_rfc3339();
        let keep_time = |ty: &str| {
            old.and_then(|o| o.pointer("/status/conditions"))
                .and_then(Value::as_array)
                .and_then(|cs| cs.iter().find(|c| c["type"] == ty))
                .and_then(|c| c.get("lastTransitionTime").cloned())
                .unwrap_or_else(|| json!(now))
        };
        let accepted = obj.pointer("/spec/names").cloned().unwrap_or(json!({}));
        obj["status"] = json!({
            "acceptedNames": accepted,
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                 "message": "no conflicts found", "lastTransitionTime": keep_time("NamesAccepted")},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted", "lastTransitionTime": keep_time("Established")}
            ],
            "storedVersions": [t.version.clone()]
        });
        Ok(())
    }

    fn stored(&self, state: &mut State, obj: &Value) {
        if let Ok(t) = registry::from_crd(obj) {
            state.registry.insert(t);
        }
    }

    fn removing(&self, state: &mut State, old: &Value) {
        if let Ok(t) = registry::from_crd(old)
            && let Some(served) = state.registry.get_key(&t.key())
            && served.custom
        {
            for gone in state.remove_all(&served) {
                state.collect_garbage(&gone);
            }
            state.registry.remove(&t.key());
        }
    }
}
