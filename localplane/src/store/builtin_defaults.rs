//! Helpers for the few defaults of built-in kinds that clients and our controllers rely on (the
//! real server applies many more; these are the ones whose absence changes behaviour). Which
//! kind gets which is each kind's strategy (`crate::strategy`).

use serde_json::{Value, json};

pub fn set_default(obj: &mut Value, ptr: &str, v: Value) {
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

pub fn pod_spec_defaults(obj: &mut Value, base: &str, restart: &str) {
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
