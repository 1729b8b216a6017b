//! Deployments: replicas, history, progress deadline and a RollingUpdate strategy by default.

use serde_json::{Value, json};

use super::Strategy;
use crate::store::builtin_defaults::{pod_spec_defaults, set_default};

pub struct Deployment;

impl Strategy for Deployment {
    fn default_fields(&self, obj: &mut Value) {
        set_default(obj, "/spec/replicas", json!(1));
        set_default(obj, "/spec/revisionHistoryLimit", json!(10));
        set_default(obj, "/spec/progressDeadlineSeconds", json!(600));
        set_default(
            obj,
            "/spec/strategy",
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
        );
        pod_spec_defaults(obj, "/spec/template/spec", "Always");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deployment_rolls_by_default_and_keeps_what_it_was_given() {
        let mut d = json!({"spec": {"replicas": 0, "template": {"spec": {"containers": [{"name": "c"}]}}}});
        Deployment.default_fields(&mut d);
        assert_eq!(d["spec"]["replicas"], 0);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], "25%");
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
    }
}
