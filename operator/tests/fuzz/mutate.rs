//! Hostile edits of a JSON document: drop fields, add unknown ones, put values of the wrong type,
//! out-of-range numbers and weird strings anywhere, duplicate list items and grow lists huge.
//! Each edit picks its target by an index taken modulo the candidates, so every generated edit
//! applies to any document and shrinks well.

use proptest::prelude::*;
use serde_json::{Value, json};

/// One edit of a document.
#[derive(Clone, Debug)]
pub enum Mutation {
    /// Remove the n-th field of any object.
    Remove(usize),
    /// Add a field the schema does not declare to the n-th object.
    AddField(usize, String, Value),
    /// Replace the n-th value.
    Replace(usize, Value),
    /// Replace the n-th value of the same JSON type (a string by a string, a number by a number):
    /// edits the schema's types allow, that reach the controllers more often.
    Swap(usize, Value),
    /// Append a copy of an item of the n-th list (a duplicated key when the list is keyed).
    Duplicate(usize),
    /// Grow the n-th list to this many items, each a renamed copy of its first.
    Grow(usize, usize),
}

/// Strings that break things: empty, blank, long, unicode, control characters, injection-like,
/// and the values of fields with a grammar (cron, time zones, durations, URIs, digests, names).
pub const STRINGS: &[&str] = &[
    "",
    " ",
    "\t",
    "\0",
    "a\nb",
    "\u{7f}\u{1b}[31m",
    "naïve",
    "🙂",
    "\u{202e}evil",
    "zero\u{200b}width",
    "Upper",
    "-lead",
    "trail-",
    "dots.in.name",
    "../../etc/passwd",
    "' || true || '",
    "${HOME}",
    "%00",
    "null",
    "NaN",
    "1e309",
    // cron
    "61 25 * * *",
    "@daily",
    "@DAILY",
    "@every 5m",
    "@reboot",
    "* * * * * *",
    "0 0 30 2 *",
    "0 0 31 4 *",
    "*/0 * * * *",
    "5-1 * * * *",
    "1,,2 * * * *",
    "0 3 ? * MON-FRI",
    "0 3 * * 7",
    "0 3 L * *",
    "0-59/100 * * * *",
    " 0 3 * * * ",
    // time zones
    "UTC",
    "Europe/Berlin",
    "Mars/Olympus_Mons",
    "Etc/GMT+14",
    "utc",
    // durations
    "0s",
    "5s",
    "10s",
    "9.999s",
    "1h30m",
    "1d",
    "-5m",
    "5",
    "1.5h",
    "0.0000000001ms",
    "99999999999999999999h",
    "2562047h47m16.854775808s",
    "10S",
    // URIs
    "file://",
    "file:///data.csv",
    "s3://bucket/key",
    "http://[::1",
    "https://example.invalid/x?y#z",
    "ftp://host/data",
    // digests, enum-like values
    "sha256:0000000000000000000000000000000000000000000000000000000000000000",
    "sha256:ABCDEF",
    "maximize",
    "Maximize",
    "category",
    "Replace",
    "Manual",
    "psi",
];

/// Numbers at the edges of every range the schemas declare, and beyond.
pub const NUMBERS: &[f64] = &[
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    4.0,
    5.0,
    9.0,
    52.0,
    63.0,
    64.0,
    100.0,
    101.0,
    1000.0,
    1001.0,
    65535.0,
    65536.0,
    2147483647.0,
    2147483648.0,
    -2147483649.0,
    9007199254740993.0,
    1e18,
    1e300,
    -1e300,
    1e-300,
];

/// Keys of added fields.
const KEYS: &[&str] = &["unknownField", "x-extra", "ñame", "", "spec", "status", "type", "name", "a.b"];

/// A string from [`STRINGS`], one of them repeated into a very long string, or arbitrary text.
pub fn weird_string() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(STRINGS).prop_map(str::to_string),
        1 => (prop::sample::select(&["a", "é", "0 ", "-"][..]), prop::sample::select(&[53usize, 64, 254, 10_000][..]))
            .prop_map(|(s, n)| s.repeat(n)),
        1 => any::<String>(),
    ]
}

/// A value of any JSON type, biased to the edges.
pub fn weird_value() -> impl Strategy<Value = Value> {
    let number = prop_oneof![
        prop::sample::select(NUMBERS).prop_map(|n| json!(n)),
        any::<i64>().prop_map(|n| json!(n)),
        prop::sample::select(vec![i64::MAX, i64::MIN, i64::from(i32::MAX), 0, -1, 1]).prop_map(|n| json!(n)),
        Just(json!(u64::MAX)),
    ];
    prop_oneof![
        4 => weird_string().prop_map(Value::String),
        3 => number,
        1 => any::<bool>().prop_map(Value::Bool),
        1 => Just(Value::Null),
        1 => prop::sample::select(vec![json!([]), json!({}), json!([null]), json!({"a": 1}), json!([""])]),
    ]
}

/// One to `max` edits.
pub fn mutations(max: usize) -> impl Strategy<Value = Vec<Mutation>> {
    let index = any::<usize>();
    let mutation = prop_oneof![
        3 => index.prop_map(Mutation::Remove),
        2 => (index, prop::sample::select(KEYS).prop_map(str::to_string), weird_value())
            .prop_map(|(i, k, v)| Mutation::AddField(i, k, v)),
        3 => (index, weird_value()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        6 => (index, weird_value()).prop_map(|(i, v)| Mutation::Swap(i, v)),
        1 => index.prop_map(Mutation::Duplicate),
        1 => (index, prop::sample::select(&[2usize, 33, 65, 300][..])).prop_map(|(i, n)| Mutation::Grow(i, n)),
    ];
    prop::collection::vec(mutation, 1..=max)
}

/// Apply `mutations` in order; `fixed` are top-level fields left alone (those that choose the
/// schema, such as `apiVersion` and `kind`).
pub fn apply(doc: &Value, mutations: &[Mutation], fixed: &[&str]) -> Value {
    let mut doc = doc.clone();
    for mutation in mutations {
        apply_one(&mut doc, mutation, fixed);
    }
    doc
}

fn apply_one(doc: &mut Value, mutation: &Mutation, fixed: &[&str]) {
    let paths = node_paths(doc, fixed);
    let pick = |n: usize, keep: &dyn Fn(&Value) -> bool| {
        let candidates: Vec<&String> = paths.iter().filter(|p| doc.pointer(p).is_some_and(keep)).collect();
        (!candidates.is_empty()).then(|| candidates[n % candidates.len()].clone())
    };
    match mutation {
        Mutation::Remove(n) => {
            let members: Vec<&String> = paths.iter().filter(|p| parent_is_object(doc, p)).collect();
            if let Some(path) = (!members.is_empty()).then(|| members[n % members.len()].clone()) {
                let (parent, key) = split(&path);
                if let Some(Value::Object(fields)) = doc.pointer_mut(parent) {
                    fields.remove(&unescape(key));
                }
            }
        }
        Mutation::AddField(n, key, value) => {
            let target = pick(*n, &Value::is_object).unwrap_or_default();
            if let Some(Value::Object(fields)) = doc.pointer_mut(&target) {
                fields.insert(key.clone(), value.clone());
            }
        }
        Mutation::Replace(n, value) => {
            if let Some(path) = pick(*n, &|_| true)
                && let Some(slot) = doc.pointer_mut(&path)
            {
                *slot = value.clone();
            }
        }
        Mutation::Swap(n, value) => {
            let same_type = |v: &Value| std::mem::discriminant(v) == std::mem::discriminant(value);
            if let Some(path) = pick(*n, &same_type)
                && let Some(slot) = doc.pointer_mut(&path)
            {
                *slot = value.clone();
            }
        }
        Mutation::Duplicate(n) => {
            if let Some(path) = pick(*n, &|v| v.as_array().is_some_and(|a| !a.is_empty()))
                && let Some(Value::Array(items)) = doc.pointer_mut(&path)
            {
                items.push(items[n % items.len()].clone());
            }
        }
        Mutation::Grow(n, len) => {
            if let Some(path) = pick(*n, &|v| v.as_array().is_some_and(|a| !a.is_empty()))
                && let Some(Value::Array(items)) = doc.pointer_mut(&path)
            {
                let first = items[0].clone();
                items.extend((items.len()..*len).map(|i| renamed(&first, i)));
            }
        }
    }
}

/// A copy of a list item with its key fields made unique, so a grown list is long, not duplicated.
fn renamed(item: &Value, i: usize) -> Value {
    let mut copy = item.clone();
    match &mut copy {
        Value::Object(fields) => {
            for key in ["name", "metric"] {
                if let Some(Value::String(name)) = fields.get_mut(key) {
                    name.push_str(&format!("x{i}"));
                }
            }
        }
        Value::String(text) => text.push_str(&format!("x{i}")),
        _ => {}
    }
    copy
}

/// JSON pointers of every value below the root, except the `fixed` top-level fields.
fn node_paths(doc: &Value, fixed: &[&str]) -> Vec<String> {
    let mut paths = Vec::new();
    let mut pending = vec![(String::new(), doc)];
    while let Some((path, value)) = pending.pop() {
        let children: Vec<(String, &Value)> = match value {
            Value::Object(fields) => fields
                .iter()
                .filter(|(key, _)| !(path.is_empty() && fixed.contains(&key.as_str())))
                .map(|(key, child)| (format!("{path}/{}", escape(key)), child))
                .collect(),
            Value::Array(items) => items.iter().enumerate().map(|(i, child)| (format!("{path}/{i}"), child)).collect(),
            _ => Vec::new(),
        };
        for (child_path, child) in children {
            paths.push(child_path.clone());
            pending.push((child_path, child));
        }
    }
    paths.sort();
    paths
}

fn parent_is_object(doc: &Value, path: &str) -> bool {
    doc.pointer(split(path).0).is_some_and(Value::is_object)
}

fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn unescape(key: &str) -> String {
    key.replace("~1", "/").replace("~0", "~")
}
