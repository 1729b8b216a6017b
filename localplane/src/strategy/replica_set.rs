//! ReplicaSets: one replica by default; `status.replicas` compares as 0 when absent.

use serde_json::{Value, json};

use super::{FieldLabel, Strategy};
use crate::store::builtin_defaults::{pod_spec_defaults, set_default};

pub struct ReplicaSet;

impl Strategy for ReplicaSet {
    fn default_fields(&self, obj: &mut Value) {
        set_default(obj, "/spec/replicas", json!(1));
        pod_spec_defaults(obj, "/spec/template/spec", "Always");
    }

    fn field_labels(&self) -> &'static [FieldLabel] {
        &[FieldLabel { label: "status.replicas", path: "status.replicas", zero: "0" }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_replica_by_default() {
        let mut rs = json!({"spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}});
        ReplicaSet.default_fields(&mut rs);
        assert_eq!(rs["spec"]["replicas"], 1);
        assert_eq!(rs["spec"]["template"]["spec"]["containers"][0]["terminationMessagePolicy"], "File");
    }
}
