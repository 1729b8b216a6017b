//! JSON merge patch (RFC 7386): objects merge, `null` deletes, everything else replaces.

use serde_json::Value;

pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    let mut out = target.clone();
    json_patch::merge(&mut out, patch);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc7386() {
        let t = json!({"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2]});
        let p = json!({"b": {"c": null, "e": 4}, "l": [3]});
        assert_eq!(merge_patch(&t, &p), json!({"a": 1, "b": {"d": 3, "e": 4}, "l": [3]}));
    }
}
