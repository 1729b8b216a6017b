//! Services: `ClusterIP` type and port defaults; a ClusterIP from the plane's service range,
//! unless the Service names one (refused, as the real allocator refuses it, when it is outside
//! the range or another Service holds it), is headless or an ExternalName; the address cannot
//! change, is held once the Service is stored (a dry run holds none) and freed when it goes;
//! DELETE answers with the Service.

use std::net::Ipv4Addr;

use serde_json::{Value, json};

use super::Strategy;
use crate::server::errors::{ApiError, ApiResult, Cause};
use crate::store::builtin_defaults::set_default;
use crate::store::cluster_ips::Refusal;
use crate::store::{State, name_of};

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
        let given = cluster_ip_field(obj);
        let kept = old.and_then(cluster_ip_field);
        let ip = match (given, kept) {
            (Some(given), Some(kept)) if given != kept => {
                return Err(refusal(
                    obj,
                    "spec.clusterIPs[0]",
                    format!("{}: may not change once set", go_list(&given)),
                ));
            }
            (Some(_), Some(_)) => return Ok(()),
            (Some(given), None) => {
                check_given(state, obj, &given)?;
                given
            }
            (None, Some(kept)) => kept,
            (None, None) => match state.cluster_ips.next_free() {
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

/// `spec.clusterIP` when set ("None", headless, included).
fn cluster_ip_field(service: &Value) -> Option<String> {
    service.pointer("/spec/clusterIP").and_then(Value::as_str).filter(|ip| !ip.is_empty()).map(str::to_string)
}

/// An address asked for by name must be an IP of this plane's range that no Service holds.
fn check_given(state: &State, obj: &Value, given: &str) -> ApiResult<()> {
    if given == "None" {
        return Ok(());
    }
    if given.parse::<std::net::IpAddr>().is_err() {
        let problem = format!("{given:?}: must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)");
        return Err(refusal(obj, "spec.clusterIPs[0]", problem));
    }
    let refused = match given.parse::<Ipv4Addr>() {
        Ok(ip) => state.cluster_ips.check(ip).err(),
        Err(_) => Some(Refusal::NotInRange),
    };
    match refused {
        None => Ok(()),
        Some(why) => {
            Err(refusal(obj, "spec.clusterIPs", format!("{}: failed to allocate IP {given}: {why}", go_list(given))))
        }
    }
}

/// `[]string{"127.16.0.9"}`: how the real server prints the list it refused.
fn go_list(ip: &str) -> String {
    format!("[]string{{{ip:?}}}")
}

fn refusal(obj: &Value, field: &str, problem: String) -> ApiError {
    let cause =
        Cause { reason: "FieldValueInvalid", message: format!("Invalid value: {problem}"), field: field.into() };
    ApiError::invalid("Service", "", name_of(obj), vec![cause])
}
