//! Pods: defaults of the pod spec, a new pod is Pending, DELETE answers with the pod.

use serde_json::{Value, json};

use super::{FieldLabel, Strategy};
use crate::store::builtin_defaults::{pod_spec_defaults, set_default};

pub struct Pod;

impl Strategy for Pod {
    fn default_fields(&self, obj: &mut Value) {
        pod_spec_defaults(obj, "/spec", "Always");
        if obj.get("status").is_none_or(|s| s.get("phase").is_none()) {
            set_default(obj, "/status/phase", json!("Pending"));
        }
    }

    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn field_labels(&self) -> &'static [FieldLabel] {
        &[FieldLabel { label: "spec.hostNetwork", path: "spec.hostNetwork", zero: "false" }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_pod_is_pending_and_keeps_a_phase_it_was_given() {
        let mut pod = json!({"spec": {"containers": [{"name": "c"}]}});
        Pod.default_fields(&mut pod);
        assert_eq!(pod["status"]["phase"], "Pending");
        assert_eq!(pod["spec"]["restartPolicy"], "Always");
        assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "IfNotPresent");
        let mut running = json!({"spec": {}, "status": {"phase": "Running"}});
        Pod.default_fields(&mut running);
        assert_eq!(running["status"]["phase"], "Running");
    }
}
