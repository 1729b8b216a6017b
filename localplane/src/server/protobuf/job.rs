//! batch/v1 Job as `kubectl create job NAME --image=IMAGE [-- COMMAND ARGS...]` writes it:
//! the spec's counts and limits, and a pod template whose containers carry name, image,
//! command, args, workingDir, env values and imagePullPolicy. Other pod fields (volumes,
//! probes, resources: what `--from=cronjob/...` may copy) are not decoded; send JSON for those.

use serde_json::{Map, Value, json};

use super::{Field, Reader, object_meta, push, put_str, text};

/// JobSpec (batch/v1 generated.proto).
pub(super) fn job_spec(b: &[u8]) -> Result<Value, String> {
    let mut r = Reader::new(b);
    let mut spec = Map::new();
    while let Some((n, f)) = r.next()? {
        let int = |key: &str, spec: &mut Map<String, Value>, v: u64| {
            spec.insert(key.into(), json!(v as i64));
        };
        match (n, f) {
            (1, Field::Varint(v)) => int("parallelism", &mut spec, v),
            (2, Field::Varint(v)) => int("completions", &mut spec, v),
            (3, Field::Varint(v)) => int("activeDeadlineSeconds", &mut spec, v),
            (6, Field::Bytes(x)) => {
                spec.insert("template".into(), pod_template(x)?);
            }
            (7, Field::Varint(v)) => int("backoffLimit", &mut spec, v),
            (8, Field::Varint(v)) => int("ttlSecondsAfterFinished", &mut spec, v),
            (9, Field::Bytes(x)) => put_str(&mut spec, "completionMode", text(x)?),
            (10, Field::Varint(v)) => {
                spec.insert("suspend".into(), json!(v != 0));
            }
            _ => {}
        }
    }
    Ok(Value::Object(spec))
}

/// PodTemplateSpec: metadata (1), spec (2).
fn pod_template(b: &[u8]) -> Result<Value, String> {
    let mut r = Reader::new(b);
    let mut t = Map::new();
    while let Some((n, f)) = r.next()? {
        match (n, f) {
            (1, Field::Bytes(x)) => {
                t.insert("metadata".into(), object_meta(x)?);
            }
            (2, Field::Bytes(x)) => {
                t.insert("spec".into(), pod_spec(x)?);
            }
            _ => {}
        }
    }
    Ok(Value::Object(t))
}

/// PodSpec: containers (2), restartPolicy (3), terminationGracePeriodSeconds (4),
/// activeDeadlineSeconds (5), serviceAccountName (8), nodeName (10).
fn pod_spec(b: &[u8]) -> Result<Value, String> {
    let mut r = Reader::new(b);
    let mut s = Map::new();
    while let Some((n, f)) = r.next()? {
        match (n, f) {
            (2, Field::Bytes(x)) => push(&mut s, "containers", container(x)?),
            (3, Field::Bytes(x)) => put_str(&mut s, "restartPolicy", text(x)?),
            (4, Field::Varint(v)) => {
                s.insert("terminationGracePeriodSeconds".into(), json!(v as i64));
            }
            (5, Field::Varint(v)) => {
                s.insert("activeDeadlineSeconds".into(), json!(v as i64));
            }
            (8, Field::Bytes(x)) => put_str(&mut s, "serviceAccountName", text(x)?),
            (10, Field::Bytes(x)) => put_str(&mut s, "nodeName", text(x)?),
            _ => {}
        }
    }
    Ok(Value::Object(s))
}

/// Container: name (1), image (2), command (3), args (4), workingDir (5), env (7),
/// imagePullPolicy (14).
fn container(b: &[u8]) -> Result<Value, String> {
    let mut r = Reader::new(b);
    let mut c = Map::new();
    while let Some((n, f)) = r.next()? {
        match (n, f) {
            (1, Field::Bytes(x)) => put_str(&mut c, "name", text(x)?),
            (2, Field::Bytes(x)) => put_str(&mut c, "image", text(x)?),
            (3, Field::Bytes(x)) => push(&mut c, "command", json!(text(x)?)),
            (4, Field::Bytes(x)) => push(&mut c, "args", json!(text(x)?)),
            (5, Field::Bytes(x)) => put_str(&mut c, "workingDir", text(x)?),
            (7, Field::Bytes(x)) => {
                let mut er = Reader::new(x);
                let mut env = Map::new();
                while let Some((en, ef)) = er.next()? {
                    match (en, ef) {
                        (1, Field::Bytes(y)) => put_str(&mut env, "name", text(y)?),
                        (2, Field::Bytes(y)) => {
                            env.insert("value".into(), json!(text(y)?));
                        }
                        _ => {}
                    }
                }
                push(&mut c, "env", Value::Object(env));
            }
            (14, Field::Bytes(x)) => put_str(&mut c, "imagePullPolicy", text(x)?),
            _ => {}
        }
    }
    Ok(Value::Object(c))
}
