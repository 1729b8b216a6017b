//! Label and field selectors, parsed once per request and matched against stored JSON.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::registry::ResourceType;

#[derive(Debug, Clone, PartialEq)]
enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    In(String, BTreeSet<String>),
    NotIn(String, BTreeSet<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed `labelSelector`; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(Vec<LabelReq>);

/// Splits at commas that are not inside parentheses (`a in (x,y),b`).
fn split_top(s: &str) -> Vec<&str> {
    let mut out = vec![];
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 316
        && k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn valid_value(v: &str) -> bool {
    v.len() <= 63 && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = vec![];
        if s.trim().is_empty() {
            return Ok(LabelSelector(reqs));
        }
        for part in split_top(s) {
            let p = part.trim();
            let bad = || format!("unable to parse requirement: found '{p}', expected: key");
            if p.is_empty() {
                return Err(bad());
            }
            let req = if let Some(k) = p.strip_prefix('!') {
                LabelReq::NotExists(k.trim().to_string())
            } else if let Some((k, v)) = p.split_once("!=") {
                LabelReq::NotEq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = p.split_once("==").or_else(|| p.split_once('=')) {
                LabelReq::Eq(k.trim().into(), v.trim().into())
            } else if let Some((k, rest)) = split_set_op(p, " notin ") {
                LabelReq::NotIn(k, parse_set(rest).ok_or_else(bad)?)
            } else if let Some((k, rest)) = split_set_op(p, " in ") {
                LabelReq::In(k, parse_set(rest).ok_or_else(bad)?)
            } else {
                LabelReq::Exists(p.to_string())
            };
            let (key, values): (&str, Vec<&String>) = match &req {
                LabelReq::Eq(k, v) | LabelReq::NotEq(k, v) => (k, vec![v]),
                LabelReq::In(k, vs) | LabelReq::NotIn(k, vs) => (k, vs.iter().collect()),
                LabelReq::Exists(k) | LabelReq::NotExists(k) => (k, vec![]),
            };
            if !valid_key(key) {
                return Err(format!("invalid label key {key:?}"));
            }
            if let Some(v) = values.iter().find(|v| !valid_value(v)) {
                return Err(format!("invalid label value: {v:?}"));
            }
            reqs.push(req);
        }
        Ok(LabelSelector(reqs))
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels");
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            LabelReq::Eq(k, v) => get(k) == Some(v.as_str()),
            LabelReq::NotEq(k, v) => get(k) != Some(v.as_str()),
            LabelReq::In(k, vs) => get(k).is_some_and(|x| vs.contains(x)),
            LabelReq::NotIn(k, vs) => get(k).is_none_or(|x| !vs.contains(x)),
            LabelReq::Exists(k) => get(k).is_some(),
            LabelReq::NotExists(k) => get(k).is_none(),
        })
    }
}

fn split_set_op(p: &str, op: &str) -> Option<(String, String)> {
    let i = p.find(op)?;
    Some((p[..i].trim().to_string(), p[i + op.len()..].trim().to_string()))
}

fn parse_set(s: String) -> Option<BTreeSet<String>> {
    let inner = s.strip_prefix('(')?.strip_suffix(')')?;
    Some(inner.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect())
}

/// One `label=value` or `label!=value` term of a field selector.
#[derive(Debug, Clone, PartialEq)]
struct FieldTerm {
    label: String,
    /// The dotted JSON path the label reads (the label itself unless the kind maps it).
    path: String,
    negated: bool,
    want: String,
    /// What an absent field compares as ("false" for a bool, "0" for a number).
    zero: String,
}

/// A parsed `fieldSelector`: `label=value` / `label!=value` terms on any dotted field path
/// (metadata.name and metadata.namespace are what clients use).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector(Vec<FieldTerm>);

impl FieldSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut terms = vec![];
        if s.trim().is_empty() {
            return Ok(FieldSelector(terms));
        }
        for part in s.split(',') {
            let p = part.trim();
            let (k, negated, v) = if let Some((k, v)) = p.split_once("!=") {
                (k, true, v)
            } else if let Some((k, v)) = p.split_once("==").or_else(|| p.split_once('=')) {
                (k, false, v)
            } else {
                return Err(format!("invalid selector: '{s}'; can't understand '{p}'"));
            };
            let k = k.trim();
            if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') {
                return Err(format!("invalid field selector key {k:?}"));
            }
            terms.push(FieldTerm {
                label: k.to_string(),
                path: k.to_string(),
                negated,
                want: v.trim().to_string(),
                zero: String::new(),
            });
        }
        Ok(FieldSelector(terms))
    }

    /// Resolves each label for `rt`: its JSON path and the zero value of an absent field.
    pub fn for_kind(mut self, rt: &ResourceType) -> Self {
        for t in &mut self.0 {
            (t.path, t.zero) = crate::field_labels::resolve(rt, &t.label);
        }
        self
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|t| {
            let mut cur = Some(obj);
            for seg in t.path.split('.') {
                cur = cur.and_then(|c| c.get(seg));
            }
            let got = match cur {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => t.zero.clone(),
                Some(v) => v.to_string(),
            };
            (got == t.want) != t.negated
        })
    }

    /// The exact name asked for, if any (lets list and watch skip other objects cheaply).
    pub fn name(&self) -> Option<&str> {
        self.0.iter().find(|t| t.label == "metadata.name" && !t.negated).map(|t| t.want.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj() -> Value {
        json!({"metadata": {"name": "a", "namespace": "ns", "labels": {"app": "web", "tier": "x"}},
               "status": {"phase": "Running"}})
    }

    #[test]
    fn label_selectors() {
        let m = |s: &str| LabelSelector::parse(s).unwrap().matches(&obj());
        assert!(m(""));
        assert!(m("app=web"));
        assert!(m("app==web,tier"));
        assert!(!m("app!=web"));
        assert!(m("app in (web, db),!missing"));
        assert!(!m("app notin (web)"));
        assert!(m("missing notin (a)"));
        assert!(!m("missing"));
        assert!(LabelSelector::parse("a in (x").is_err());
        assert!(LabelSelector::parse("=x").is_err());
        assert!(LabelSelector::parse("a=b c").is_err());
        assert!(LabelSelector::parse(",").is_err());
    }

    #[test]
    fn field_selectors() {
        let m = |s: &str| FieldSelector::parse(s).unwrap().matches(&obj());
        assert!(m("metadata.name=a"));
        assert!(m("metadata.name=a,metadata.namespace=ns"));
        assert!(!m("metadata.name!=a"));
        assert!(m("status.phase=Running"));
        assert!(m("spec.nodeName="));
        assert!(FieldSelector::parse("nonsense").is_err());
        assert_eq!(FieldSelector::parse("metadata.name=a").unwrap().name(), Some("a"));
    }
}
