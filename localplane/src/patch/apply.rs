//! Server-side apply, the honest minimum: each Apply manager owns the leaf fields it last applied
//! (recorded in `metadata.managedFields`, FieldsV1 format). Applying again removes the leaves the
//! manager dropped unless another manager owns them; changing a leaf another manager owns is a
//! conflict unless `force`, which transfers ownership. Lists are atomic unless their type is
//! `map` (merged by key) or `set` (union). Non-apply writes are not tracked as managers.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

#[derive(Debug, Clone, PartialEq)]
pub enum ListType {
    Atomic,
    Map(Vec<String>),
    Set,
}

/// A path of FieldsV1 elements: `f:name`, `k:{"name":"a"}`, `v:"x"`.
pub type FieldPath = Vec<String>;

#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub manager: String,
    pub path: String,
}

pub struct ApplyRequest<'a> {
    pub live: Option<&'a Value>,
    pub config: &'a Value,
    pub manager: &'a str,
    pub force: bool,
    /// `Some("status")` for applies to the status subresource.
    pub subresource: Option<&'a str>,
    /// Whether the main resource ignores `status` (it has a status subresource).
    pub has_status_subresource: bool,
    pub api_version: &'a str,
    pub now: &'a str,
    /// List type of the list at this path of field names.
    pub list_type: &'a dyn Fn(&[String]) -> ListType,
}

#[derive(Debug, Clone)]
struct Entry {
    raw: Value,
    manager: String,
    apply: bool,
    subresource: String,
    fields: BTreeSet<FieldPath>,
}

const SKIPPED_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// Applies `req.config` and returns the new object, or the conflicts that block it.
pub fn apply(req: &ApplyRequest) -> Result<Value, Vec<Conflict>> {
    let empty = json!({});
    let live = req.live.unwrap_or(&empty);
    let sub = req.subresource.unwrap_or("");
    let config = scoped_config(req);
    let mut owned = BTreeSet::new();
    leaves(&config, &mut vec![], &mut vec![], req.list_type, &mut owned);

    let mut entries = parse_entries(live);
    let prev: BTreeSet<FieldPath> = entries
        .iter()
        .find(|e| e.manager == req.manager && e.apply && e.subresource == sub)
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    entries.retain(|e| !(e.manager == req.manager && e.apply && e.subresource == sub));

    let mut conflicts = vec![];
    for e in entries.iter_mut() {
        if e.manager == req.manager {
            continue;
        }
        let clashing: Vec<FieldPath> = e
            .fields
            .iter()
            .filter(|p| owned.contains(*p))
            .filter(|p| get_at(live, p) != get_at(&config, p))
            .cloned()
            .collect();
        if req.force {
            for p in &clashing {
                e.fields.remove(p);
            }
        } else {
            conflicts.extend(clashing.iter().map(|p| Conflict { manager: e.manager.clone(), path: render_path(p) }));
        }
    }
    if !conflicts.is_empty() {
        return Err(conflicts);
    }

    let mut out = live.clone();
    for p in prev.difference(&owned) {
        // Key fields of a list-map item go with the item, once its other fields are gone.
        if is_key_field(p) {
            continue;
        }
        if !entries.iter().any(|e| e.fields.contains(p)) {
            remove_at(&mut out, p);
        }
    }
    for p in prev.difference(&owned).filter(|p| is_key_field(p)) {
        let parent: FieldPath = p[..p.len() - 1].to_vec();
        let owned_elsewhere = entries.iter().any(|e| e.fields.iter().any(|f| f.starts_with(&parent)))
            || owned.iter().any(|f| f.starts_with(&parent));
        let only_keys = get_at(&out, &parent)
            .and_then(Value::as_object)
            .is_some_and(|m| m.keys().all(|k| is_key_field(&[parent.clone(), vec![format!("f:{k}")]].concat())));
        if only_keys && !owned_elsewhere {
            remove_at(&mut out, &parent);
        }
    }
    for p in prev.difference(&owned) {
        remove_emptied(&mut out, p, &config, &entries);
    }
    let mut names = vec![];
    merge_into(&mut out, &config, &mut names, req.list_type);

    entries.retain(|e| !e.fields.is_empty() || !e.apply);
    let mut mf: Vec<Value> = entries
        .into_iter()
        .map(|e| {
            let mut raw = e.raw;
            raw["fieldsV1"] = fields_v1(&e.fields);
            raw
        })
        .collect();
    let mut mine = json!({
        "manager": req.manager,
        "operation": "Apply",
        "apiVersion": req.api_version,
        "time": req.now,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields_v1(&owned),
    });
    if !sub.is_empty() {
        mine["subresource"] = json!(sub);
    }
    mf.push(mine);
    if let Some(md) = out.as_object_mut().map(|o| o.entry("metadata").or_insert_with(|| json!({})))
        && let Some(m) = md.as_object_mut()
    {
        m.insert("managedFields".into(), Value::Array(mf));
    }
    Ok(out)
}

/// The part of the applied config this request may own.
fn scoped_config(req: &ApplyRequest) -> Value {
    let mut c = match req.config {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    c.remove("apiVersion");
    c.remove("kind");
    if let Some(Value::Object(md)) = c.get_mut("metadata") {
        for k in SKIPPED_METADATA {
            md.remove(*k);
        }
        if md.is_empty() {
            c.remove("metadata");
        }
    }
    match req.subresource {
        Some("status") => {
            let status = c.remove("status");
            let mut m = Map::new();
            if let Some(s) = status {
                m.insert("status".into(), s);
            }
            Value::Object(m)
        }
        _ => {
            if req.has_status_subresource {
                c.remove("status");
            }
            Value::Object(c)
        }
    }
}

fn parse_entries(live: &Value) -> Vec<Entry> {
    let Some(list) = live.pointer("/metadata/managedFields").and_then(Value::as_array) else {
        return vec![];
    };
    list.iter()
        .map(|raw| {
            let mut fields = BTreeSet::new();
            if let Some(f) = raw.get("fieldsV1") {
                parse_fields_v1(f, &mut vec![], &mut fields);
            }
            Entry {
                manager: raw.get("manager").and_then(Value::as_str).unwrap_or("").into(),
                apply: raw.get("operation").and_then(Value::as_str) == Some("Apply"),
                subresource: raw.get("subresource").and_then(Value::as_str).unwrap_or("").into(),
                raw: raw.clone(),
                fields,
            }
        })
        .collect()
}

fn parse_fields_v1(v: &Value, path: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
    let Some(m) = v.as_object() else { return };
    let children: Vec<_> = m.iter().filter(|(k, _)| k.as_str() != ".").collect();
    if children.is_empty() {
        if !path.is_empty() {
            out.insert(path.clone());
        }
        return;
    }
    for (k, child) in children {
        path.push(k.clone());
        parse_fields_v1(child, path, out);
        path.pop();
    }
}

fn fields_v1(fields: &BTreeSet<FieldPath>) -> Value {
    let mut root = Map::new();
    for p in fields {
        let mut cur = &mut root;
        for seg in p {
            let next = cur.entry(seg.clone()).or_insert_with(|| json!({}));
            match next.as_object_mut() {
                Some(m) => cur = m,
                None => break,
            }
        }
    }
    Value::Object(root)
}

fn is_key_field(p: &FieldPath) -> bool {
    let [.., parent, last] = p.as_slice() else {
        return false;
    };
    let (Some(keys), Some(field)) = (parent.strip_prefix("k:"), last.strip_prefix("f:")) else {
        return false;
    };
    serde_json::from_str::<Map<String, Value>>(keys).is_ok_and(|k| k.contains_key(field))
}

fn render_path(p: &FieldPath) -> String {
    let mut s = String::new();
    for seg in p {
        if let Some(f) = seg.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = seg.strip_prefix("k:").or_else(|| seg.strip_prefix("v:")) {
            s.push('[');
            s.push_str(k);
            s.push(']');
        }
    }
    s
}

fn key_elem(item: &Value, keys: &[String]) -> Option<String> {
    let mut m = Map::new();
    for k in keys {
        m.insert(k.clone(), item.get(k)?.clone());
    }
    Some(format!("k:{}", Value::Object(m)))
}

/// Collects the leaf paths of `v`. `names` tracks plain field names for list-type lookups.
fn leaves(
    v: &Value,
    path: &mut FieldPath,
    names: &mut Vec<String>,
    lt: &dyn Fn(&[String]) -> ListType,
    out: &mut BTreeSet<FieldPath>,
) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                if child.is_null() {
                    continue;
                }
                path.push(format!("f:{k}"));
                names.push(k.clone());
                leaves(child, path, names, lt, out);
                names.pop();
                path.pop();
            }
        }
        Value::Array(items) => match lt(names) {
            ListType::Map(keys) => {
                for item in items {
                    match key_elem(item, &keys) {
                        Some(ke) => {
                            path.push(ke);
                            let before = out.len();
                            leaves(item, path, names, lt, out);
                            if out.len() == before {
                                out.insert(path.clone());
                            }
                            path.pop();
                        }
                        None => {
                            out.insert(path.clone());
                        }
                    }
                }
                if items.is_empty() {
                    out.insert(path.clone());
                }
            }
            ListType::Set => {
                for item in items {
                    path.push(format!("v:{item}"));
                    out.insert(path.clone());
                    path.pop();
                }
                if items.is_empty() {
                    out.insert(path.clone());
                }
            }
            ListType::Atomic => {
                out.insert(path.clone());
            }
        },
        _ => {
            if !path.is_empty() {
                out.insert(path.clone());
            }
        }
    }
}

fn find_item(items: &[Value], seg: &str) -> Option<usize> {
    if let Some(k) = seg.strip_prefix("k:") {
        let keys: Map<String, Value> = serde_json::from_str(k).ok()?;
        items.iter().position(|it| keys.iter().all(|(kk, kv)| it.get(kk) == Some(kv)))
    } else if let Some(v) = seg.strip_prefix("v:") {
        let want: Value = serde_json::from_str(v).ok()?;
        items.iter().position(|it| *it == want)
    } else {
        None
    }
}

pub fn get_at<'v>(v: &'v Value, path: &FieldPath) -> Option<&'v Value> {
    let mut cur = v;
    for seg in path {
        cur = if let Some(f) = seg.strip_prefix("f:") {
            cur.get(f)?
        } else {
            let items = cur.as_array()?;
            &items[find_item(items, seg)?]
        };
    }
    Some(cur)
}

/// After the leaves a manager dropped went, the maps and lists above them that they leave empty
/// go too, as the real server's field sets own a struct or list with its fields (`.`): a struct
/// whose every field was dropped is dropped, not kept as `{}` or `{"list": []}` (which fails
/// the struct's required fields). One the applied config sets, or another manager owns something
/// under, stays.
fn remove_emptied(out: &mut Value, path: &FieldPath, config: &Value, entries: &[Entry]) {
    for depth in (1..path.len()).rev() {
        let parent: FieldPath = path[..depth].to_vec();
        let empty = match get_at(out, &parent) {
            // Gone already (a list item with the leaf): look further up.
            None => continue,
            Some(Value::Object(map)) => map.is_empty(),
            Some(Value::Array(items)) => items.is_empty(),
            Some(_) => false,
        };
        let kept = get_at(config, &parent).is_some()
            || entries.iter().any(|e| e.fields.iter().any(|f| f.starts_with(&parent)));
        if !empty || kept || !parent.last().is_some_and(|seg| seg.starts_with("f:")) {
            return;
        }
        remove_at(out, &parent);
    }
}

fn remove_at(v: &mut Value, path: &FieldPath) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = &mut *v;
    for seg in parents {
        let next = if let Some(f) = seg.strip_prefix("f:") {
            cur.get_mut(f)
        } else {
            match cur.as_array_mut() {
                Some(items) => match find_item(items, seg) {
                    Some(i) => items.get_mut(i),
                    None => None,
                },
                None => None,
            }
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(f) = last.strip_prefix("f:") {
        if let Some(m) = cur.as_object_mut() {
            m.remove(f);
        }
    } else if let Some(items) = cur.as_array_mut()
        && let Some(i) = find_item(items, last)
    {
        items.remove(i);
    }
    // A list item left with nothing but its keys was only there for the removed leaf.
    if let Some(parent_seg) = parents.last()
        && last.starts_with("f:")
        && parent_seg.starts_with("k:")
    {
        let keys: Option<Map<String, Value>> = serde_json::from_str(&parent_seg[2..]).ok();
        let only_keys = keys.is_some_and(|k| cur.as_object().is_some_and(|m| m.keys().all(|x| k.contains_key(x))));
        if only_keys {
            let parent_path: FieldPath = parents.to_vec();
            remove_at(v, &parent_path);
        }
    }
}

fn merge_into(live: &mut Value, config: &Value, names: &mut Vec<String>, lt: &dyn Fn(&[String]) -> ListType) {
    match (live, config) {
        (Value::Object(l), Value::Object(c)) => {
            for (k, cv) in c {
                if cv.is_null() {
                    l.remove(k);
                    continue;
                }
                names.push(k.clone());
                match l.get_mut(k) {
                    Some(lv) => merge_into(lv, cv, names, lt),
                    None => {
                        l.insert(k.clone(), cv.clone());
                    }
                }
                names.pop();
            }
        }
        (Value::Array(l), Value::Array(c)) => match lt(names) {
            ListType::Map(keys) => {
                for item in c {
                    let pos = key_elem(item, &keys).and_then(|ke| find_item(l, &ke));
                    match pos {
                        Some(i) => merge_into(&mut l[i], item, names, lt),
                        None => l.push(item.clone()),
                    }
                }
            }
            ListType::Set => {
                for item in c {
                    if !l.contains(item) {
                        l.push(item.clone());
                    }
                }
            }
            ListType::Atomic => *l = c.clone(),
        },
        (l, c) => *l = c.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lt(names: &[String]) -> ListType {
        match names.last().map(String::as_str) {
            Some("containers") => ListType::Map(vec!["name".into()]),
            Some("gates") => ListType::Map(vec!["metric".into()]),
            Some("finalizers") => ListType::Set,
            _ => ListType::Atomic,
        }
    }

    fn run(live: Option<&Value>, config: &Value, manager: &str, force: bool) -> Result<Value, Vec<Conflict>> {
        apply(&ApplyRequest {
            live,
            config,
            manager,
            force,
            subresource: None,
            has_status_subresource: true,
            api_version: "v1",
            now: "2024-01-01T00:00:00Z",
            list_type: &lt,
        })
    }

    #[test]
    fn removes_leaves_a_manager_drops() {
        let c1 = json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "a"}, "spec": {"a": 1, "b": 2}});
        let o1 = run(None, &c1, "m", false).unwrap();
        assert_eq!(o1["spec"], json!({"a": 1, "b": 2}));
        assert_eq!(o1["metadata"]["managedFields"][0]["fieldsV1"], json!({"f:spec": {"f:a": {}, "f:b": {}}}));
        let c2 = json!({"metadata": {"name": "a"}, "spec": {"a": 5}});
        let o2 = run(Some(&o1), &c2, "m", false).unwrap();
        assert_eq!(o2["spec"], json!({"a": 5}));
    }

    #[test]
    fn a_struct_whose_fields_a_manager_drops_goes_with_them() {
        let status = json!({"phase": "Succeeded", "artifact": {"uri": "file:///m", "digest": "sha256:0"}});
        let o1 = run(None, &json!({"spec": status}), "m", false).unwrap();
        let o2 = run(Some(&o1), &json!({"spec": {"phase": "Failed"}}), "m", false).unwrap();
        assert_eq!(o2["spec"], json!({"phase": "Failed"}), "no empty artifact left behind");
        // A struct holding a keyed list goes with the list's items.
        let judged = json!({"spec": {"evaluation": {"result": "Passed", "gates": [{"metric": "auc", "value": 1}]}}});
        let o4 = run(Some(&o1), &judged, "m", false).unwrap();
        let o5 = run(Some(&o4), &json!({"spec": {"phase": "Failed"}}), "m", false).unwrap();
        assert_eq!(o5["spec"], json!({"phase": "Failed"}), "no empty evaluation left behind");
        // A struct another manager still owns a field of stays, with that field.
        let shared = run(Some(&o1), &json!({"spec": {"artifact": {"uri": "file:///m"}}}), "m2", false).unwrap();
        let o3 = run(Some(&shared), &json!({"spec": {"phase": "Failed"}}), "m", false).unwrap();
        assert_eq!(o3["spec"], json!({"phase": "Failed", "artifact": {"uri": "file:///m"}}));
    }

    #[test]
    fn conflicts_unless_forced() {
        let o1 = run(None, &json!({"spec": {"a": 1}}), "m1", false).unwrap();
        let err = run(Some(&o1), &json!({"spec": {"a": 2}}), "m2", false).unwrap_err();
        assert_eq!(err, vec![Conflict { manager: "m1".into(), path: ".spec.a".into() }]);
        // Same value: shared ownership, no conflict.
        let shared = run(Some(&o1), &json!({"spec": {"a": 1}}), "m2", false).unwrap();
        // m1 dropping a shared field keeps it, since m2 still owns it.
        let kept = run(Some(&shared), &json!({"spec": {"b": 1}}), "m1", false).unwrap();
        assert_eq!(kept["spec"], json!({"a": 1, "b": 1}));
        let forced = run(Some(&o1), &json!({"spec": {"a": 2}}), "m2", true).unwrap();
        assert_eq!(forced["spec"]["a"], json!(2));
        let mf = forced["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(mf.len(), 1, "m1 lost its only field: {mf:?}");
    }

    #[test]
    fn keyed_lists_merge_and_items_are_removed() {
        let o1 = run(None, &json!({"spec": {"containers": [{"name": "a", "image": "1"}]}}), "m1", false).unwrap();
        let o2 = run(Some(&o1), &json!({"spec": {"containers": [{"name": "b", "image": "2"}]}}), "m2", false).unwrap();
        assert_eq!(o2["spec"]["containers"].as_array().unwrap().len(), 2);
        let o3 = run(Some(&o2), &json!({"spec": {}}), "m1", false).unwrap();
        assert_eq!(o3["spec"]["containers"], json!([{"name": "b", "image": "2"}]));
        let o4 = run(Some(&o3), &json!({"metadata": {"finalizers": ["x"]}}), "m1", false).unwrap();
        let o5 = run(Some(&o4), &json!({"metadata": {"finalizers": ["y"]}}), "m2", false).unwrap();
        assert_eq!(o5["metadata"]["finalizers"], json!(["x", "y"]));
    }
}
