//! Decoding of the Kubernetes protobuf encoding for the few built-in kinds that typed Go
//! clients write with it (Helm's release Secrets, `kubectl create namespace|secret|configmap|
//! serviceaccount|token|job`), and DeleteOptions. Field numbers come from the published generated.proto
//! of k8s.io/api and apimachinery. Anything else gets 415.

mod job;

use serde_json::{Map, Value, json};

use super::errors::ApiError;

const MAGIC: &[u8] = b"k8s\x00";

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            out |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err("varint too long".into())
    }

    fn next(&mut self) -> Result<Option<(u64, Field<'a>)>, String> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let (num, wire) = (key >> 3, key & 7);
        let f = match wire {
            0 => Field::Varint(self.varint()?),
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| "length overflow")?;
                let end = self.pos.checked_add(len).filter(|e| *e <= self.buf.len()).ok_or("truncated field")?;
                let b = &self.buf[self.pos..end];
                self.pos = end;
                Field::Bytes(b)
            }
            1 => {
                self.pos += 8;
                Field::Fixed
            }
            5 => {
                self.pos += 4;
                Field::Fixed
            }
            w => return Err(format!("unsupported wire type {w}")),
        };
        if self.pos > self.buf.len() {
            return Err("truncated fixed field".into());
        }
        Ok(Some((num, f)))
    }
}

/// Go's protobuf encoding writes empty strings too; an empty field means "unset".
fn put_str(m: &mut Map<String, Value>, k: &str, v: String) {
    if !v.is_empty() {
        m.insert(k.into(), json!(v));
    }
}

fn text(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| "invalid UTF-8 in string field".to_string())
}

/// A map entry message {1: key, 2: value}; `bytes_value` base64-encodes the value.
fn map_entry(b: &[u8], bytes_value: bool) -> Result<(String, Value), String> {
    let mut r = Reader::new(b);
    let (mut k, mut v) = (String::new(), json!(""));
    while let Some((n, f)) = r.next()? {
        match (n, f) {
            (1, Field::Bytes(x)) => k = text(x)?,
            (2, Field::Bytes(x)) if bytes_value => v = json!(crate::store::builtin_defaults::base64(x)),
            (2, Field::Bytes(x)) => v = json!(text(x)?),
            _ => {}
        }
    }
    Ok((k, v))
}

fn insert_entry(obj: &mut Map<String, Value>, field: &str, b: &[u8], bytes_value: bool) -> Result<(), String> {
    let (k, v) = map_entry(b, bytes_value)?;
    let m = obj.entry(field).or_insert_with(|| json!({}));
    if let Some(m) = m.as_object_mut() {
        m.insert(k, v);
    }
    Ok(())
}

fn push(obj: &mut Map<String, Value>, field: &str, v: Value) {
    let a = obj.entry(field).or_insert_with(|| json!([]));
    if let Some(a) = a.as_array_mut() {
        a.push(v);
    }
}

fn time(b: &[u8]) -> Result<Value, String> {
    let mut r = Reader::new(b);
    let mut secs = 0i64;
    while let Some((n, f)) = r.next()? {
        if let (1, Field::Varint(v)) = (n, f) {
            secs = v as i64;
        }
    }
    Ok(json!(crate::time::format_rfc3339(secs)))
}

fn owner_ref(b: &[u8]) -> Result<Value, String> {
    let mut r = Reader::new(b);
    let mut o = Map::new();
    while let Some((n, f)) = r.next()? {
        match (n, f) {
            (1, Field::Bytes(x)) => put_str(&mut o, "kind", text(x)?),
            (3, Field::Bytes(x)) => put_str(&mut o, "name", text(x)?),
            (4, Field::Bytes(x)) => put_str(&mut o, "uid", text(x)?),
            (5, Field::Bytes(x)) => put_str(&mut o, "apiVersion", text(x)?),
            (6, Field::Varint(v)) => {
                o.insert("controller".into(), json!(v != 0));
            }
            (7, Field::Varint(v)) => {
                o.insert("blockOwnerDeletion".into(), json!(v != 0));
            }
            _ => {}
        }
    }
    Ok(Value::Object(o))
}

fn object_meta(b: &[u8]) -> Result<Value, String> {
    let mut r = Reader::new(b);
    let mut m = Map::new();
    while let Some((n, f)) = r.next()? {
        match (n, f) {
            (1, Field::Bytes(x)) => put_str(&mut m, "name", text(x)?),
            (2, Field::Bytes(x)) => put_str(&mut m, "generateName", text(x)?),
            (3, Field::Bytes(x)) => put_str(&mut m, "namespace", text(x)?),
            (5, Field::Bytes(x)) => put_str(&mut m, "uid", text(x)?),
            (6, Field::Bytes(x)) => put_str(&mut m, "resourceVersion", text(x)?),
            // Go writes a zero generation too; zero means unset.
            (7, Field::Varint(v)) if v != 0 => {
                m.insert("generation".into(), json!(v as i64));
            }
            (8, Field::Bytes(x)) => {
                m.insert("creationTimestamp".into(), time(x)?);
            }
            (9, Field::Bytes(x)) => {
                m.insert("deletionTimestamp".into(), time(x)?);
            }
            (11, Field::Bytes(x)) => insert_entry(&mut m, "labels", x, false)?,
            (12, Field::Bytes(x)) => insert_entry(&mut m, "annotations", x, false)?,
            (13, Field::Bytes(x)) => push(&mut m, "ownerReferences", owner_ref(x)?),
            (14, Field::Bytes(x)) => push(&mut m, "finalizers", json!(text(x)?)),
            _ => {}
        }
    }
    // An empty creationTimestamp encodes as a zero Time: drop it, the server sets it.
    if m.get("creationTimestamp").and_then(Value::as_str) == Some("1970-01-01T00:00:00Z") {
        m.remove("creationTimestamp");
    }
    Ok(Value::Object(m))
}

fn local_refs(b: &[u8]) -> Result<Value, String> {
    let mut r = Reader::new(b);
    let mut o = Map::new();
    while let Some((n, f)) = r.next()? {
        if let (1, Field::Bytes(x)) = (n, f) {
            o.insert("name".into(), json!(text(x)?));
        }
    }
    Ok(Value::Object(o))
}

/// TokenRequestSpec: audiences (1), boundObjectRef (3), expirationSeconds (4).
fn token_request_spec(b: &[u8]) -> Result<Value, String> {
    let mut r = Reader::new(b);
    let mut spec = Map::new();
    while let Some((n, f)) = r.next()? {
        match (n, f) {
            (1, Field::Bytes(x)) => push(&mut spec, "audiences", json!(text(x)?)),
            (3, Field::Bytes(x)) => {
                let mut br = Reader::new(x);
                let mut bound = Map::new();
                while let Some((bn, bf)) = br.next()? {
                    if let Field::Bytes(y) = bf {
                        let key = match bn {
                            1 => "kind",
                            2 => "apiVersion",
                            3 => "name",
                            4 => "uid",
                            _ => continue,
                        };
                        put_str(&mut bound, key, text(y)?);
                    }
                }
                spec.insert("boundObjectRef".into(), Value::Object(bound));
            }
            (4, Field::Varint(v)) => {
                spec.insert("expirationSeconds".into(), json!(v as i64));
            }
            _ => {}
        }
    }
    Ok(Value::Object(spec))
}

fn body(kind: &str, b: &[u8]) -> Result<Map<String, Value>, String> {
    let mut r = Reader::new(b);
    let mut o = Map::new();
    while let Some((n, f)) = r.next()? {
        match (kind, n, f) {
            (_, 1, Field::Bytes(x)) => {
                o.insert("metadata".into(), object_meta(x)?);
            }
            ("Secret", 2, Field::Bytes(x)) => insert_entry(&mut o, "data", x, true)?,
            ("Secret", 3, Field::Bytes(x)) => put_str(&mut o, "type", text(x)?),
            ("Secret", 4, Field::Bytes(x)) => insert_entry(&mut o, "stringData", x, false)?,
            ("Secret", 5, Field::Varint(v)) => {
                o.insert("immutable".into(), json!(v != 0));
            }
            ("ConfigMap", 2, Field::Bytes(x)) => insert_entry(&mut o, "data", x, false)?,
            ("ConfigMap", 3, Field::Bytes(x)) => insert_entry(&mut o, "binaryData", x, true)?,
            ("ConfigMap", 4, Field::Varint(v)) => {
                o.insert("immutable".into(), json!(v != 0));
            }
            ("Namespace", 2, Field::Bytes(x)) => {
                let mut sr = Reader::new(x);
                let mut spec = Map::new();
                while let Some((sn, sf)) = sr.next()? {
                    if let (1, Field::Bytes(y)) = (sn, sf) {
                        push(&mut spec, "finalizers", json!(text(y)?));
                    }
                }
                o.insert("spec".into(), Value::Object(spec));
            }
            ("Job", 2, Field::Bytes(x)) => {
                o.insert("spec".into(), job::job_spec(x)?);
            }
            ("TokenRequest", 2, Field::Bytes(x)) => {
                o.insert("spec".into(), token_request_spec(x)?);
            }
            ("ServiceAccount", 3, Field::Bytes(x)) => push(&mut o, "imagePullSecrets", local_refs(x)?),
            ("ServiceAccount", 4, Field::Varint(v)) => {
                o.insert("automountServiceAccountToken".into(), json!(v != 0));
            }
            _ => {}
        }
    }
    Ok(o)
}

/// Decodes a protobuf-encoded object of a supported kind into its JSON form.
pub fn decode_object(bytes: &[u8]) -> Result<Value, ApiError> {
    let inner =
        bytes.strip_prefix(MAGIC).ok_or_else(|| ApiError::bad_request("protobuf body without the k8s envelope"))?;
    let bad = |e: String| ApiError::bad_request(format!("invalid protobuf body: {e}"));
    let mut r = Reader::new(inner);
    let (mut api_version, mut kind, mut raw): (String, String, &[u8]) = (String::new(), String::new(), &[]);
    while let Some((n, f)) = r.next().map_err(bad)? {
        match (n, f) {
            (1, Field::Bytes(tm)) => {
                let mut t = Reader::new(tm);
                while let Some((tn, tf)) = t.next().map_err(bad)? {
                    match (tn, tf) {
                        (1, Field::Bytes(x)) => api_version = text(x).map_err(bad)?,
                        (2, Field::Bytes(x)) => kind = text(x).map_err(bad)?,
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(x)) => raw = x,
            _ => {}
        }
    }
    let supported = match api_version.as_str() {
        "v1" => matches!(kind.as_str(), "Secret" | "ConfigMap" | "Namespace" | "ServiceAccount"),
        "authentication.k8s.io/v1" => kind == "TokenRequest",
        "batch/v1" => kind == "Job",
        _ => false,
    };
    if !supported {
        return Err(ApiError::unsupported_media(&format!(
            "application/vnd.kubernetes.protobuf ({api_version} {kind}: only v1 Secret, ConfigMap, Namespace, ServiceAccount, batch/v1 Job and authentication.k8s.io/v1 TokenRequest are decoded; send JSON)"
        )));
    }
    let mut o = body(&kind, raw).map_err(bad)?;
    o.insert("apiVersion".into(), json!(api_version));
    o.insert("kind".into(), json!(kind));
    Ok(Value::Object(o))
}

/// Decodes protobuf DeleteOptions into their JSON form.
pub fn decode_delete_options(bytes: &[u8]) -> Result<Value, ApiError> {
    let inner = bytes.strip_prefix(MAGIC).unwrap_or(bytes);
    let bad = |e: String| ApiError::bad_request(format!("invalid protobuf DeleteOptions: {e}"));
    let mut r = Reader::new(inner);
    let mut raw: &[u8] = &[];
    while let Some((n, f)) = r.next().map_err(bad)? {
        if let (2, Field::Bytes(x)) = (n, f) {
            raw = x;
        }
    }
    let mut o = Map::new();
    let mut r = Reader::new(raw);
    while let Some((n, f)) = r.next().map_err(bad)? {
        match (n, f) {
            (1, Field::Varint(v)) => {
                o.insert("gracePeriodSeconds".into(), json!(v as i64));
            }
            (2, Field::Bytes(x)) => {
                let mut p = Map::new();
                let mut pr = Reader::new(x);
                while let Some((pn, pf)) = pr.next().map_err(bad)? {
                    match (pn, pf) {
                        (1, Field::Bytes(y)) => put_str(&mut p, "uid", text(y).map_err(bad)?),
                        (2, Field::Bytes(y)) => put_str(&mut p, "resourceVersion", text(y).map_err(bad)?),
                        _ => {}
                    }
                }
                o.insert("preconditions".into(), Value::Object(p));
            }
            (3, Field::Varint(v)) => {
                o.insert("orphanDependents".into(), json!(v != 0));
            }
            (4, Field::Bytes(x)) => put_str(&mut o, "propagationPolicy", text(x).map_err(bad)?),
            _ => {}
        }
    }
    Ok(Value::Object(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(n: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![((n << 3) | 2) as u8, payload.len() as u8];
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn decodes_a_secret() {
        let meta = [field(1, b"s1"), field(11, &[field(1, b"owner"), field(2, b"helm")].concat())].concat();
        let secret =
            [field(1, &meta), field(2, &[field(1, b"k"), field(2, b"v")].concat()), field(3, b"helm.sh/release.v1")]
                .concat();
        let tm = [field(1, b"v1"), field(2, b"Secret")].concat();
        let body = [MAGIC.to_vec(), field(1, &tm), field(2, &secret)].concat();
        let v = decode_object(&body).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
            "metadata": {"name": "s1", "labels": {"owner": "helm"}}, "data": {"k": "dg=="}})
        );
        assert!(decode_object(b"k8s\x00\x0a\xff").is_err());
        assert!(decode_object(b"nonsense").is_err());
    }
}
