//! Services: `ClusterIP` type and port defaults; a ClusterIP from the plane's range unless one
//! is given (or the Service is headless or an ExternalName), freed when the Service goes;
//! DELETE answers with the Service.

use serde_json::{Value, json};

use super::Strategy;
use crate::server::errors::{ApiError, ApiResult};
use crate::store::State;
use crate::store::builtin_defaults::set_default;

pub struct Service;

impl Strategy for Service {
    fn default_fields(&self, obj: &mut Value) {
        set_default(obj, "/spec/type", json!("ClusterIP"));
        set_default(obj, "/spec/sessionAffinity", json!("None"));
        let n = obj.pointer("/spec/ports").and_then(Value::as_array).map_or(0, Vec::len);
        for i in 0..n {
            set_default(obj, &format!("/spec/ports/{i}/protocol"), json!("TCP"));
            if let Some(port) = obj.pointer(&format!("/spec/ports/{i}/port")).cloned() {
                set_default(obj, &format!("/spec/ports/{i}/targetPort"), port);
            }
        }
    }

    fn prepare(&self, state: &mut State, obj: &mut Value, old: Option<&Value>) -> ApiResult<()> {
        let ip = obj.pointer("/spec/clusterIP").and_then(Value::as_str);
        let external = obj.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName");
        match ip.filter(|ip| !ip.is_empty()) {
            Some(ip) if old.is_none() => {
                let ip = ip.to_string();
                state.claim_cluster_ip(&ip);
            }
            Some(_) => {}
            None if external => {}
            None => {
                let kept = old.and_then(|o| o.pointer("/spec/clusterIP")).and_then(Value::as_str).map(str::to_string);
                let ip = match kept {
                    Some(ip) => ip,
                    None => state
                        .allocate_cluster_ip()
                        .ok_or_else(|| ApiError::internal("no ClusterIP left in 127.10.0.0/16"))?,
                };
                obj["spec"]["clusterIP"] = json!(ip);
                obj["spec"]["clusterIPs"] = json!([ip]);
            }
        }
        Ok(())
    }

    fn removed(&self, state: &mut State, old: &Value) {
        state.release_cluster_ip(old);
    }

    fn returns_deleted_object(&self) -> bool {
        true
    }
}
