//! The few defaults of built-in kinds that clients and our controllers rely on (the real
//! server applies many more; these are the ones whose absence changes behaviour).

use serde_json::{Value, json};

fn set_default(obj: &mut Value, ptr: &str, v: Value) {
    if obj.pointer(ptr).is_some() {
        return;
    }
    let (parent, field) = match ptr.rsplit_once('/') {
        Some(x) => x,
        None => return,
    };
    let mut cur = obj;
    for seg in parent.split('/').filter(|s| !s.is_empty()) {
        // Walk into array items by index; create missing objects on the way.
        let next = match cur {
            Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
            Value::Object(m) => Some(m.entry(seg.to_string()).or_insert_with(|| json!({}))),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(m) = cur.as_object_mut() {
        m.insert(field.to_string(), v);
    }
}

fn pod_spec_defaults(obj: &mut Value, base: &str, restart: &str) {
    set_default(obj, &format!("{base}/restartPolicy"), json!(restart));
    set_default(obj, &format!("{base}/terminationGracePeriodSeconds"), json!(30));
    set_default(obj, &format!("{base}/dnsPolicy"), json!("ClusterFirst"));
    set_default(obj, &format!("{base}/schedulerName"), json!("default-scheduler"));
    for list in ["containers", "initContainers"] {
        let n = obj.pointer(&format!("{base}/{list}")).and_then(Value::as_array).map_or(0, Vec::len);
        for i in 0..n {
            let c = format!("{base}/{list}/{i}");
            set_default(obj, &format!("{c}/terminationMessagePath"), json!("/dev/termination-log"));
            set_default(obj, &format!("{c}/terminationMessagePolicy"), json!("File"));
            set_default(obj, &format!("{c}/imagePullPolicy"), json!("IfNotPresent"));
        }
    }
}

/// Applies defaults on create (and update) of built-in objects of `kind`.
pub fn apply(kind: &str, obj: &mut Value) {
    match kind {
        "Pod" => {
            pod_spec_defaults(obj, "/spec", "Always");
            if obj.get("status").is_none_or(|s| s.get("phase").is_none()) {
                set_default(obj, "/status/phase", json!("Pending"));
            }
        }
        "Job" => {
            set_default(obj, "/spec/backoffLimit", json!(6));
            set_default(obj, "/spec/completions", json!(1));
            set_default(obj, "/spec/parallelism", json!(1));
            set_default(obj, "/spec/completionMode", json!("NonIndexed"));
            set_default(obj, "/spec/suspend", json!(false));
            pod_spec_defaults(obj, "/spec/template/spec", "Never");
        }
        "Deployment" => {
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
        "ReplicaSet" => {
            set_default(obj, "/spec/replicas", json!(1));
            pod_spec_defaults(obj, "/spec/template/spec", "Always");
        }
        "Service" => {
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
        "Secret" => {
            set_default(obj, "/type", json!("Opaque"));
            fold_string_data(obj);
        }
        _ => {}
    }
}

/// `stringData` is write-only: the server folds it into base64 `data`.
fn fold_string_data(obj: &mut Value) {
    let Some(Value::Object(sd)) = obj.as_object_mut().and_then(|o| o.remove("stringData")) else {
        return;
    };
    if !obj.get("data").is_some_and(Value::is_object) {
        obj["data"] = json!({});
    }
    for (k, v) in sd {
        let text = match v {
            Value::String(s) => s,
            other => other.to_string(),
        };
        obj["data"][k] = json!(base64(text.as_bytes()));
    }
}

pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_fold_string_data() {
        let mut s = json!({"stringData": {"k": "v", "x": "hello"}, "data": {"a": "YQ=="}});
        apply("Secret", &mut s);
        assert_eq!(s, json!({"type": "Opaque", "data": {"a": "YQ==", "k": "dg==", "x": "aGVsbG8="}}));
    }

    #[test]
    fn job_defaults() {
        let mut job = json!({"spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}});
        apply("Job", &mut job);
        assert_eq!(job["spec"]["backoffLimit"], 6);
        assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
        assert_eq!(job["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"], "/dev/termination-log");
        let mut job = json!({"spec": {"backoffLimit": 2}});
        apply("Job", &mut job);
        assert_eq!(job["spec"]["backoffLimit"], 2);
    }
}
