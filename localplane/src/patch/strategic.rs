//! Strategic merge patch for built-in kinds, the subset clients send: maps merge, `null` deletes,
//! lists of known fields merge by their merge key, `$patch: replace|delete` directives, and the
//! `$setElementOrder`/`$retainKeys` hints are accepted and ignored. Other lists replace.

use serde_json::{Map, Value};

/// The merge key of well-known list fields (from the Kubernetes API's patchMergeKey tags).
pub fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "hostAliases"
        | "readinessGates" => match field {
            "hostAliases" => "ip",
            "readinessGates" => "conditionType",
            _ => "name",
        },
        "ports" => "containerPort",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "tolerations" | "topologySpreadConstraints" => return None,
        _ => return None,
    })
}

/// Primitive lists whose strategy is "merge" (union) rather than replace.
fn is_merged_primitive_list(field: &str) -> bool {
    field == "finalizers"
}

pub fn strategic_merge(target: &Value, patch: &Value) -> Result<Value, String> {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => Ok(Value::Object(merge_map(t, p)?)),
        (_, Value::Object(p)) => Ok(Value::Object(merge_map(&Map::new(), p)?)),
        _ => Err("strategic merge patch must be a JSON object".into()),
    }
}

fn merge_map(target: &Map<String, Value>, patch: &Map<String, Value>) -> Result<Map<String, Value>, String> {
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut p = patch.clone();
        p.remove("$patch");
        return Ok(p);
    }
    let mut out = target.clone();
    for (k, pv) in patch {
        if k.starts_with('$') {
            continue;
        }
        if let Some(field) = k.strip_prefix("$setElementOrder/") {
            let _ = field;
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(cur)), Value::Array(del)) = (out.get_mut(field), pv) {
                cur.retain(|x| !del.contains(x));
            }
            continue;
        }
        match pv {
            Value::Null => {
                out.remove(k);
            }
            Value::Object(po) => {
                if po.get("$patch").and_then(Value::as_str) == Some("delete") {
                    out.remove(k);
                    continue;
                }
                let base = match out.get(k) {
                    Some(Value::Object(m)) => m.clone(),
                    _ => Map::new(),
                };
                out.insert(k.clone(), Value::Object(merge_map(&base, po)?));
            }
            Value::Array(pl) => {
                let cur = out.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
                let merged = if let Some(key) = merge_key(k) {
                    merge_keyed_list(&cur, pl, key)?
                } else if is_merged_primitive_list(k) {
                    let mut l = cur.clone();
                    for x in pl {
                        if !l.contains(x) {
                            l.push(x.clone());
                        }
                    }
                    l
                } else {
                    pl.iter().filter(|x| !is_directive(x)).cloned().collect()
                };
                out.insert(k.clone(), Value::Array(merged));
            }
            other => {
                out.insert(k.clone(), other.clone());
            }
        }
    }
    Ok(out)
}

fn is_directive(v: &Value) -> bool {
    v.get("$patch").is_some()
}

fn merge_keyed_list(cur: &[Value], patch: &[Value], key: &str) -> Result<Vec<Value>, String> {
    if patch.iter().any(|x| x.get("$patch").and_then(Value::as_str) == Some("replace")) {
        return Ok(patch.iter().filter(|x| !is_directive(x)).cloned().collect());
    }
    let mut out: Vec<Value> = cur.to_vec();
    for item in patch {
        let Some(obj) = item.as_object() else {
            return Err(format!("list items merged by {key:?} must be objects"));
        };
        let kv = obj.get(key);
        let pos = kv.and_then(|kv| out.iter().position(|x| x.get(key) == Some(kv)));
        if obj.get("$patch").and_then(Value::as_str) == Some("delete") {
            if let Some(i) = pos {
                out.remove(i);
            }
            continue;
        }
        match pos {
            Some(i) => {
                let base = out[i].as_object().cloned().unwrap_or_default();
                out[i] = Value::Object(merge_map(&base, obj)?);
            }
            None => out.push(Value::Object(merge_map(&Map::new(), obj)?)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merges_containers_by_name() {
        let t = json!({"spec": {"containers": [
            {"name": "a", "image": "x", "env": [{"name": "E", "value": "1"}]},
            {"name": "b", "image": "y"}]}});
        let p = json!({"spec": {"containers": [
            {"name": "a", "image": "x2", "env": [{"name": "F", "value": "2"}]},
            {"name": "c", "image": "z"}]}});
        let r = strategic_merge(&t, &p).unwrap();
        assert_eq!(
            r,
            json!({"spec": {"containers": [
                {"name": "a", "image": "x2", "env": [{"name": "E", "value": "1"}, {"name": "F", "value": "2"}]},
                {"name": "b", "image": "y"},
                {"name": "c", "image": "z"}]}})
        );
    }

    #[test]
    fn directives_and_nulls() {
        let t = json!({"data": {"a": "1", "b": "2"}, "spec": {"ports": [{"containerPort": 80}, {"containerPort": 81}]},
                       "metadata": {"finalizers": ["x"]}});
        let p = json!({"data": {"a": null}, "spec": {"ports": [{"containerPort": 80, "$patch": "delete"}]},
                       "metadata": {"finalizers": ["y"], "$setElementOrder/finalizers": ["x", "y"]}});
        let r = strategic_merge(&t, &p).unwrap();
        assert_eq!(
            r,
            json!({"data": {"b": "2"}, "spec": {"ports": [{"containerPort": 81}]},
                   "metadata": {"finalizers": ["x", "y"]}})
        );
        let p = json!({"data": {"$patch": "replace", "z": "9"}});
        assert_eq!(strategic_merge(&t, &p).unwrap()["data"], json!({"z": "9"}));
        assert!(strategic_merge(&t, &json!([1])).is_err());
    }

    #[test]
    fn unknown_lists_replace() {
        let t = json!({"spec": {"args": ["a", "b"]}});
        let p = json!({"spec": {"args": ["c"]}});
        assert_eq!(strategic_merge(&t, &p).unwrap(), json!({"spec": {"args": ["c"]}}));
    }
}
