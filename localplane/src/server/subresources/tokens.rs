//! `serviceaccounts/<name>/token` (TokenRequest) and TokenReview. Tokens are JWTs with the
//! claims a real API server puts in them, signed with HMAC-SHA256 under a key made at start
//! (real servers sign with RS256 and publish a JWKS; localplane has no OIDC discovery), so a
//! TokenReview checks the signature, expiry, audience and that the service account (same UID)
//! still exists.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::hmac;
use serde_json::{Value, json};

use crate::server::errors::{ApiError, ApiResult};
use crate::store::State;
use crate::time::{format_rfc3339, now_secs};

/// The audience and issuer of tokens asked for without audiences, as on a real cluster.
pub const API_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";
const DEFAULT_EXPIRATION: i64 = 3600;
/// The real server refuses shorter tokens.
const MIN_EXPIRATION: i64 = 600;
/// The expiration the kubelet asks for a pod's service-account volume. The real server (with
/// its default `--service-account-extend-token-expiration`) makes such a token valid for a year
/// and records this as `warnafter`, so pods whose client never re-reads the file keep working.
const WARN_ONLY_EXPIRATION: i64 = 3607;
const EXTENDED_EXPIRATION: i64 = 365 * 24 * 3600;

pub struct TokenIssuer {
    key: hmac::Key,
}

impl Default for TokenIssuer {
    fn default() -> Self {
        let mut secret = uuid::Uuid::new_v4().as_bytes().to_vec();
        secret.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        TokenIssuer { key: hmac::Key::new(hmac::HMAC_SHA256, &secret) }
    }
}

impl TokenIssuer {
    fn sign(&self, claims: &Value) -> String {
        let header = B64.encode(json!({"alg": "HS256", "kid": "localplane", "typ": "JWT"}).to_string());
        let payload = B64.encode(claims.to_string());
        let signed = format!("{header}.{payload}");
        let tag = hmac::sign(&self.key, signed.as_bytes());
        format!("{signed}.{}", B64.encode(tag.as_ref()))
    }

    /// The claims of a token this issuer signed, if the signature holds.
    fn verify(&self, token: &str) -> Option<Value> {
        let (signed, sig) = token.rsplit_once('.')?;
        hmac::verify(&self.key, signed.as_bytes(), &B64.decode(sig).ok()?).ok()?;
        let payload = signed.split_once('.')?.1;
        serde_json::from_slice(&B64.decode(payload).ok()?).ok()
    }

    /// POST `serviceaccounts/<name>/token`: the TokenRequest with its status filled in.
    pub fn request(&self, st: &State, ns: &str, name: &str, mut req: Value) -> ApiResult<Value> {
        let sa_type =
            st.registry.get_key("/serviceaccounts").ok_or_else(|| ApiError::internal("no serviceaccounts"))?;
        let sa = st.get(&sa_type, ns, name).ok_or_else(|| ApiError::not_found("serviceaccounts", name))?;
        let expiration = req.pointer("/spec/expirationSeconds").and_then(Value::as_i64).unwrap_or(DEFAULT_EXPIRATION);
        if expiration < MIN_EXPIRATION {
            return Err(ApiError::invalid(
                "TokenRequest",
                "authentication.k8s.io",
                name,
                vec![crate::server::errors::Cause {
                    reason: "FieldValueInvalid",
                    message: format!("Invalid value: {expiration}: may not specify a duration less than 10 minutes"),
                    field: "spec.expirationSeconds".into(),
                }],
            ));
        }
        let mut audiences: Vec<Value> =
            req.pointer("/spec/audiences").and_then(Value::as_array).cloned().unwrap_or_default();
        if audiences.is_empty() {
            audiences.push(json!(API_AUDIENCE));
        }
        let now = now_secs();
        let mut exp = now + expiration;
        let mut k8s = json!({"namespace": ns, "serviceaccount": {"name": name, "uid": crate::store::uid_of(&sa)}});
        if let Some(bound) = req.pointer("/spec/boundObjectRef").filter(|b| b.is_object()) {
            let kind = bound.get("kind").and_then(Value::as_str).unwrap_or("").to_lowercase();
            k8s[&kind] = json!({"name": bound.get("name"), "uid": bound.get("uid")});
            if kind == "pod" && expiration == WARN_ONLY_EXPIRATION && audiences == [json!(API_AUDIENCE)] {
                k8s["warnafter"] = json!(exp);
                exp = now + EXTENDED_EXPIRATION;
            }
        }
        let claims = json!({
            "aud": audiences, "exp": exp, "iat": now, "nbf": now, "iss": API_AUDIENCE,
            "jti": uuid::Uuid::new_v4().to_string(), "kubernetes.io": k8s,
            "sub": format!("system:serviceaccount:{ns}:{name}")
        });
        req["apiVersion"] = json!("authentication.k8s.io/v1");
        req["kind"] = json!("TokenRequest");
        req["metadata"] = json!({"name": name, "namespace": ns, "creationTimestamp": null});
        req["spec"]["audiences"] = json!(audiences);
        req["spec"]["expirationSeconds"] = json!(expiration);
        // The status tells the requested lifetime, also of an extended token, as the real server does.
        req["status"] = json!({"token": self.sign(&claims), "expirationTimestamp": format_rfc3339(now + expiration)});
        Ok(req)
    }

    /// POST `tokenreviews`: who a token authenticates, or why it does not.
    pub fn review(&self, st: &State, mut review: Value) -> Value {
        let token = review.pointer("/spec/token").and_then(Value::as_str).unwrap_or("").to_string();
        let wanted: Vec<String> = review
            .pointer("/spec/audiences")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
            .filter(|a: &Vec<String>| !a.is_empty())
            .unwrap_or_else(|| vec![API_AUDIENCE.to_string()]);
        review["apiVersion"] = json!("authentication.k8s.io/v1");
        review["kind"] = json!("TokenReview");
        review["metadata"] = json!({"creationTimestamp": null});
        review["status"] = match self.authenticate(st, &token, &wanted) {
            Ok((user, audiences)) => json!({"authenticated": true, "user": user, "audiences": audiences}),
            Err(why) => json!({"user": {}, "error": why}),
        };
        review
    }

    /// The user a token authenticates for one of the `wanted` audiences, or why it does not.
    pub fn authenticate(&self, st: &State, token: &str, wanted: &[String]) -> Result<(Value, Vec<String>), String> {
        let invalid = || "[invalid bearer token, token lookup failed]".to_string();
        let claims = self.verify(token).ok_or_else(invalid)?;
        if claims.get("exp").and_then(Value::as_i64).is_none_or(|exp| exp <= now_secs()) {
            return Err("[invalid bearer token, service account token has expired]".into());
        }
        let audiences: Vec<String> = claims
            .get("aud")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        let matched: Vec<String> = wanted.iter().filter(|w| audiences.contains(w)).cloned().collect();
        if matched.is_empty() {
            return Err("[invalid bearer token, token audiences is invalid for the target audiences]".into());
        }
        let ns = claims.pointer("/kubernetes.io/namespace").and_then(Value::as_str).unwrap_or("");
        let name = claims.pointer("/kubernetes.io/serviceaccount/name").and_then(Value::as_str).unwrap_or("");
        let uid = claims.pointer("/kubernetes.io/serviceaccount/uid").and_then(Value::as_str).unwrap_or("");
        let live = st
            .registry
            .get_key("/serviceaccounts")
            .and_then(|t| st.get(&t, ns, name))
            .is_some_and(|sa| crate::store::uid_of(&sa) == uid);
        if !live {
            return Err(format!("[invalid bearer token, service account {ns}/{name} has been deleted]"));
        }
        let user = json!({
            "username": format!("system:serviceaccount:{ns}:{name}"), "uid": uid,
            "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{ns}"), "system:authenticated"],
            "extra": {"authentication.kubernetes.io/credential-id": [format!("JTI={}", claims.get("jti").and_then(Value::as_str).unwrap_or(""))]}
        });
        Ok((user, matched))
    }
}
