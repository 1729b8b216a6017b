//! Jobs: the defaults the Job controller relies on; `status.successful` reads `status.succeeded`.

use serde_json::{Value, json};

use super::{FieldLabel, Strategy};
use crate::store::builtin_defaults::{pod_spec_defaults, set_default};

pub struct Job;

impl Strategy for Job {
    fn default_fields(&self, obj: &mut Value) {
        set_default(obj, "/spec/backoffLimit", json!(6));
        set_default(obj, "/spec/completions", json!(1));
        set_default(obj, "/spec/parallelism", json!(1));
        set_default(obj, "/spec/completionMode", json!("NonIndexed"));
        set_default(obj, "/spec/suspend", json!(false));
        pod_spec_defaults(obj, "/spec/template/spec", "Never");
    }

    fn field_labels(&self) -> &'static [FieldLabel] {
        &[FieldLabel { label: "status.successful", path: "status.succeeded", zero: "0" }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_defaults() {
        let mut job = json!({"spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}});
        Job.default_fields(&mut job);
        assert_eq!(job["spec"]["backoffLimit"], 6);
        assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
        assert_eq!(job["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"], "/dev/termination-log");
        let mut job = json!({"spec": {"backoffLimit": 2}});
        Job.default_fields(&mut job);
        assert_eq!(job["spec"]["backoffLimit"], 2);
    }
}
