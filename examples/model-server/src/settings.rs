//! The serving contract's environment variables.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// `MODEL_URI`: s3://, gs://, az://, file://, http(s):// or a plain path of the artifact.
    pub model_uri: String,
    /// `MODEL_DIGEST`: expected `sha256:<hex>` of the artifact, checked at load.
    pub model_digest: Option<String>,
    /// `MODEL_NAME`: the name in protocol paths (default `model`).
    pub model_name: String,
    /// `${POD_IP:-0.0.0.0}:${PORT:-8080}`.
    pub bind: SocketAddr,
}

impl Settings {
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let model_uri = get("MODEL_URI").ok_or("MODEL_URI is not set")?;
        let ip: IpAddr = match get("POD_IP") {
            Some(raw) => raw.parse().map_err(|_| format!("POD_IP {raw:?} is not an IP address"))?,
            None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        };
        let port: u16 = match get("PORT") {
            Some(raw) => raw.parse().map_err(|_| format!("PORT {raw:?} is not a port number"))?,
            None => 8080,
        };
        Ok(Settings {
            model_uri,
            model_digest: get("MODEL_DIGEST"),
            model_name: get("MODEL_NAME").unwrap_or_else(|| "model".into()),
            bind: SocketAddr::new(ip, port),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let s = Settings::from_lookup(|n| (n == "MODEL_URI").then(|| "file:///m.json".to_string())).unwrap();
        assert_eq!(s.bind, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(s.model_name, "model");
        let s = Settings::from_lookup(|n| match n {
            "MODEL_URI" => Some("x".into()),
            "POD_IP" => Some("127.0.3.4".into()),
            "PORT" => Some("9000".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(s.bind, "127.0.3.4:9000".parse().unwrap());
        assert!(Settings::from_lookup(|_| None).unwrap_err().contains("MODEL_URI"));
        assert!(Settings::from_lookup(|n| Some(if n == "PORT" { "x" } else { "y" }.into())).is_err());
    }
}
