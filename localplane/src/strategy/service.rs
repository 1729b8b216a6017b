//! Services: `ClusterIP` type and port defaults; a ClusterIP from the plane's range unless one
//! is given (or the Service is headless or an ExternalName), freed when the Service goes;
//! DELETE answers with the Service.

use std::net::Ipv4Addr;

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
        if obj.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName") {
            return Ok(());
        }
        if obj.pointer("/spec/clusterIP").and_then(Value::as_str).is_some_and(|ip| !ip.is_empty()) {
            return Ok(());
        }
        let ip = match old.and_then(|o| o.pointer("/spec/clusterIP")).and_then(Value::as_str) {
            Some(kept) => kept.to_string(),
            None => match state.cluster_ips.next_free() {
                Some(ip) => ip.to_string(),
                None => return Err(ApiError::internal("failed to allocate a serviceIP: range is full")),
            },
        };
        obj["spec"]["clusterIP"] = json!(ip);
        obj["spec"]["clusterIPs"] = json!([ip]);
        Ok(())
    }

    fn stored(&self, state: &mut State, obj: &Value) {
        if let Some(ip) = cluster_ip(obj) {
            state.cluster_ips.hold(ip);
        }
    }

    fn removed(&self, state: &mut State, old: &Value) {
        if let Some(ip) = cluster_ip(old) {
            state.cluster_ips.release(ip);
        }
    }

    fn returns_deleted_object(&self) -> bool {
        true
    }
}

/// The address a Service holds (none when headless or an ExternalName).
fn cluster_ip(service: &Value) -> Option<Ipv4Addr> {
    service.pointer("/spec/clusterIP").and_then(Value::as_str)?.parse().ok()
}
