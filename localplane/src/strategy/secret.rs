//! Secrets: `Opaque` by default; write-only `stringData` is folded into base64 `data`.

use serde_json::{Value, json};

use super::Strategy;
use crate::store::builtin_defaults::{base64, set_default};

pub struct Secret;

impl Strategy for Secret {
    fn default_fields(&self, obj: &mut Value) {
        set_default(obj, "/type", json!("Opaque"));
        fold_string_data(obj);
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_fold_string_data() {
        let mut s = json!({"stringData": {"k": "v", "x": "hello"}, "data": {"a": "YQ=="}});
        Secret.default_fields(&mut s);
        assert_eq!(s, json!({"type": "Opaque", "data": {"a": "YQ==", "k": "dg==", "x": "aGVsbG8="}}));
    }
}
