//! A container's environment and command line, following the Kubernetes rules:
//! `envFrom` first (later sources win), then `env` in order, each value `$(VAR)`-expanded against
//! what was defined before it; `command` replaces the image entrypoint and `args` its default args.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};

use super::images::ImageEntry;

/// Why a container's configuration cannot be built; shown as the container's waiting reason
/// `CreateContainerConfigError` (the message is this error's text, as the real kubelet does).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("configmap \"{0}\" not found")]
    ConfigMapNotFound(String),
    #[error("secret \"{0}\" not found")]
    SecretNotFound(String),
    #[error("couldn't find key {key} in ConfigMap {namespace}/{name}")]
    ConfigMapKeyNotFound { namespace: String, name: String, key: String },
    #[error("couldn't find key {key} in Secret {namespace}/{name}")]
    SecretKeyNotFound { namespace: String, name: String, key: String },
    #[error("unsupported fieldRef {0:?}")]
    UnsupportedFieldRef(String),
    #[error("env var {0:?} has an invalid source")]
    InvalidSource(String),
}

/// Why no command line can be built for a container.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error(
        "image {0:?} is not in the images file and the container has no command: add it to the file passed with --images"
    )]
    ImageNotMapped(String),
}

/// Expands `$(NAME)` references the way Kubernetes does: `$$` is an escaped `$`, a reference to
/// an undefined name and an unclosed `$(` stay as written, any other `$x` is literal.
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        match after.chars().next() {
            None => {
                out.push('$');
                rest = after;
            }
            Some('$') => {
                out.push('$');
                rest = &after[1..];
            }
            Some('(') => match after[1..].find(')') {
                Some(end) => {
                    let name = &after[1..1 + end];
                    match lookup(name) {
                        Some(value) => out.push_str(&value),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &after[end + 2..];
                }
                None => {
                    out.push_str("$(");
                    rest = &after[1..];
                }
            },
            Some(c) => {
                out.push('$');
                out.push(c);
                rest = &after[c.len_utf8()..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// An ordered environment where a later definition replaces an earlier one in place.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EnvList {
    vars: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl EnvList {
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.index.get(&name) {
            Some(&i) => self.vars[i].1 = value,
            None => {
                self.index.insert(name.clone(), self.vars.len());
                self.vars.push((name, value));
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.index.get(name).map(|&i| self.vars[i].1.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn map_values(&mut self, f: impl Fn(&str) -> String) {
        for (_, v) in &mut self.vars {
            *v = f(v);
        }
    }
}

/// The ConfigMaps and Secrets of the pod's namespace that the container refers to.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    pub config_maps: BTreeMap<String, ConfigMap>,
    pub secrets: BTreeMap<String, Secret>,
    /// Service-account tokens by (audience, "" for the API's, expirationSeconds).
    pub tokens: BTreeMap<TokenKey, String>,
}

/// What a projected service-account token is asked for with: audience ("" for the API server's)
/// and expirationSeconds.
pub type TokenKey = (String, i64);

impl Sources {
    fn config_map(&self, name: &str) -> Option<&ConfigMap> {
        self.config_maps.get(name)
    }
    fn secret(&self, name: &str) -> Option<&Secret> {
        self.secrets.get(name)
    }
}

/// The data of a ConfigMap (text and binary) as bytes.
pub fn config_map_data(cm: &ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (k, v) in cm.binary_data.iter().flatten() {
        out.insert(k.clone(), v.0.clone());
    }
    for (k, v) in cm.data.iter().flatten() {
        out.insert(k.clone(), v.clone().into_bytes());
    }
    out
}

/// The data of a Secret (`stringData` is a write-only field, but honour it if a server kept it).
pub fn secret_data(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (k, ByteString(v)) in secret.data.iter().flatten() {
        out.insert(k.clone(), v.clone());
    }
    for (k, v) in secret.string_data.iter().flatten() {
        out.insert(k.clone(), v.clone().into_bytes());
    }
    out
}

/// Names of ConfigMaps or Secrets, each with whether the reference is optional.
pub type Refs = Vec<(String, bool)>;

/// The names of the ConfigMaps and Secrets a container's env and envFrom use, with whether the
/// reference is optional, so that the caller can fetch them.
pub fn referenced_sources(container: &Container) -> (Refs, Refs) {
    let mut cms = Vec::new();
    let mut secrets = Vec::new();
    for from in container.env_from.iter().flatten() {
        if let Some(r) = &from.config_map_ref {
            cms.push((r.name.clone(), r.optional.unwrap_or(false)));
        }
        if let Some(r) = &from.secret_ref {
            secrets.push((r.name.clone(), r.optional.unwrap_or(false)));
        }
    }
    for var in container.env.iter().flatten() {
        let Some(from) = &var.value_from else { continue };
        if let Some(r) = &from.config_map_key_ref {
            cms.push((r.name.clone(), r.optional.unwrap_or(false)));
        }
        if let Some(r) = &from.secret_key_ref {
            secrets.push((r.name.clone(), r.optional.unwrap_or(false)));
        }
    }
    (cms, secrets)
}

/// The value of a downward-API `fieldRef`.
pub fn field_ref(pod: &Pod, pod_ip: &str, path: &str) -> Result<String, ConfigError> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let from_map = |map: &Option<BTreeMap<String, String>>, key: &str| -> String {
        map.as_ref().and_then(|m| m.get(key)).cloned().unwrap_or_default()
    };
    let bracket_key = |prefix: &str| -> Option<String> {
        let rest = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(rest.to_string())
    };
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_else(|| super::NODE_NAME.to_string()),
        "spec.serviceAccountName" => {
            spec.and_then(|s| s.service_account_name.clone()).unwrap_or_else(|| "default".to_string())
        }
        "status.podIP" | "status.podIPs" => pod_ip.to_string(),
        "status.hostIP" | "status.hostIPs" => super::HOST_IP.to_string(),
        "metadata.labels" => format_map(&meta.labels),
        "metadata.annotations" => format_map(&meta.annotations),
        _ => {
            if let Some(key) = bracket_key("metadata.labels['") {
                from_map(&meta.labels, &key)
            } else if let Some(key) = bracket_key("metadata.annotations['") {
                from_map(&meta.annotations, &key)
            } else {
                return Err(ConfigError::UnsupportedFieldRef(path.to_string()));
            }
        }
    })
}

/// `key="value"` lines, the downward API's format for whole label or annotation maps.
fn format_map(map: &Option<BTreeMap<String, String>>) -> String {
    map.iter().flatten().map(|(k, v)| format!("{k}={v:?}")).collect::<Vec<_>>().join("\n")
}

/// Builds the container's environment from envFrom and env (before path rewriting).
pub fn container_env(
    pod: &Pod,
    container: &Container,
    pod_ip: &str,
    sources: &Sources,
    base: &EnvList,
) -> Result<EnvList, ConfigError> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let mut env = base.clone();
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            match sources.config_map(&r.name) {
                Some(cm) => {
                    for (k, v) in config_map_data(cm) {
                        env.set(format!("{prefix}{k}"), String::from_utf8_lossy(&v));
                    }
                }
                None if r.optional.unwrap_or(false) => {}
                None => return Err(ConfigError::ConfigMapNotFound(r.name.clone())),
            }
        }
        if let Some(r) = &from.secret_ref {
            match sources.secret(&r.name) {
                Some(s) => {
                    for (k, v) in secret_data(s) {
                        env.set(format!("{prefix}{k}"), String::from_utf8_lossy(&v));
                    }
                }
                None if r.optional.unwrap_or(false) => {}
                None => return Err(ConfigError::SecretNotFound(r.name.clone())),
            }
        }
    }
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (_, Some(from)) => {
                if let Some(r) = &from.config_map_key_ref {
                    let optional = r.optional.unwrap_or(false);
                    match sources.config_map(&r.name) {
                        Some(cm) => match config_map_data(cm).remove(&r.key) {
                            Some(v) => String::from_utf8_lossy(&v).into_owned(),
                            None if optional => continue,
                            None => {
                                return Err(ConfigError::ConfigMapKeyNotFound {
                                    namespace,
                                    name: r.name.clone(),
                                    key: r.key.clone(),
                                });
                            }
                        },
                        None if optional => continue,
                        None => return Err(ConfigError::ConfigMapNotFound(r.name.clone())),
                    }
                } else if let Some(r) = &from.secret_key_ref {
                    let optional = r.optional.unwrap_or(false);
                    match sources.secret(&r.name) {
                        Some(s) => match secret_data(s).remove(&r.key) {
                            Some(v) => String::from_utf8_lossy(&v).into_owned(),
                            None if optional => continue,
                            None => {
                                return Err(ConfigError::SecretKeyNotFound {
                                    namespace,
                                    name: r.name.clone(),
                                    key: r.key.clone(),
                                });
                            }
                        },
                        None if optional => continue,
                        None => return Err(ConfigError::SecretNotFound(r.name.clone())),
                    }
                } else if let Some(r) = &from.field_ref {
                    field_ref(pod, pod_ip, &r.field_path)?
                } else if let Some(r) = &from.resource_field_ref {
                    resource_field(container, &r.resource)
                } else {
                    return Err(ConfigError::InvalidSource(var.name.clone()));
                }
            }
            (Some(value), None) => expand(value, |name| env.get(name).map(str::to_string)),
            (None, None) => String::new(),
        };
        env.set(var.name.clone(), value);
    }
    Ok(env)
}

/// A `resourceFieldRef` value: the declared quantity, or "0" when none is declared (processes
/// here have no limits).
fn resource_field(container: &Container, resource: &str) -> String {
    let resources = container.resources.as_ref();
    let (kind, name) = resource.split_once('.').unwrap_or(("limits", resource));
    let map = match kind {
        "requests" => resources.and_then(|r| r.requests.as_ref()),
        _ => resources.and_then(|r| r.limits.as_ref()),
    };
    map.and_then(|m| m.get(name)).map(|q| q.0.clone()).unwrap_or_else(|| "0".to_string())
}

/// The argv of a container: `command` overrides the image's entrypoint (and then the image's
/// default args are dropped), `args` override the image's default args; `$(VAR)` references are
/// expanded against the container's environment.
pub fn command_line(
    container: &Container,
    image: Option<&ImageEntry>,
    env: &EnvList,
) -> Result<Vec<String>, CommandError> {
    let command = container.command.clone().unwrap_or_default();
    let args = container.args.clone();
    let raw: Vec<String> = if !command.is_empty() {
        command.into_iter().chain(args.unwrap_or_default()).collect()
    } else if let Some(image) = image {
        let mut argv = vec![image.path.clone()];
        argv.extend(args.unwrap_or_else(|| image.args.clone()));
        argv
    } else {
        return Err(CommandError::ImageNotMapped(container.image.clone().unwrap_or_default()));
    };
    Ok(raw.iter().map(|a| expand(a, |name| env.get(name).map(str::to_string))).collect())
}

/// The variables through which in-cluster clients find the API server: the `kubernetes`
/// Service's as the real kubelet writes them, pointing at the address its Endpoints name (where
/// a real service proxy would forward; localplane's port is not 443, so the port is the server's).
pub fn api_server_env(host: &str, port: u16) -> Vec<(String, String)> {
    let tcp = format!("tcp://{host}:{port}");
    vec![
        ("KUBERNETES_SERVICE_HOST".into(), host.to_string()),
        ("KUBERNETES_SERVICE_PORT".into(), port.to_string()),
        ("KUBERNETES_SERVICE_PORT_HTTPS".into(), port.to_string()),
        ("KUBERNETES_PORT".into(), tcp.clone()),
        (format!("KUBERNETES_PORT_{port}_TCP"), tcp),
        (format!("KUBERNETES_PORT_{port}_TCP_PROTO"), "tcp".into()),
        (format!("KUBERNETES_PORT_{port}_TCP_PORT"), port.to_string()),
        (format!("KUBERNETES_PORT_{port}_TCP_ADDR"), host.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ConfigMapEnvSource, ConfigMapKeySelector, EnvFromSource, EnvVar, EnvVarSource, ObjectFieldSelector,
        SecretKeySelector,
    };
    use kube::api::ObjectMeta;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn expansion_follows_kubernetes_rules() {
        let lookup = vars(&[("A", "alpha"), ("B", "")]);
        assert_eq!(expand("$(A)", &lookup), "alpha");
        assert_eq!(expand("x-$(A)-$(B)-y", &lookup), "x-alpha--y");
        assert_eq!(expand("$$(A)", &lookup), "$(A)");
        assert_eq!(expand("$(MISSING)", &lookup), "$(MISSING)");
        assert_eq!(expand("$(A", &lookup), "$(A");
        assert_eq!(expand("cost $5 and $", &lookup), "cost $5 and $");
        assert_eq!(expand("$$$(A)", &lookup), "$alpha");
        assert_eq!(expand("é$(A)é", &lookup), "éalphaé");
        assert_eq!(expand("$é", &lookup), "$é");
    }

    fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p1".into()),
                namespace: Some("ns".into()),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn cm(name: &str, data: &[(&str, &str)]) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
            data: Some(data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn env_order_sources_and_expansion() {
        let mut sources = Sources::default();
        sources.config_maps.insert("cfg".into(), cm("cfg", &[("MODE", "fast"), ("LEVEL", "3")]));
        let secret =
            Secret { data: Some([("token".to_string(), ByteString(b"s3cret".to_vec()))].into()), ..Default::default() };
        sources.secrets.insert("sec".into(), secret);
        let container = Container {
            name: "c".into(),
            env_from: Some(vec![EnvFromSource {
                config_map_ref: Some(ConfigMapEnvSource { name: "cfg".into(), optional: None }),
                prefix: Some("CFG_".into()),
                ..Default::default()
            }]),
            env: Some(vec![
                EnvVar { name: "CFG_MODE".into(), value: Some("slow-$(CFG_LEVEL)".into()), ..Default::default() },
                EnvVar {
                    name: "TOKEN".into(),
                    value_from: Some(EnvVarSource {
                        secret_key_ref: Some(SecretKeySelector {
                            name: "sec".into(),
                            key: "token".into(),
                            optional: None,
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                EnvVar {
                    name: "NAME".into(),
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector { field_path: "metadata.name".into(), api_version: None }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                EnvVar {
                    name: "IP".into(),
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector { field_path: "status.podIP".into(), api_version: None }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                EnvVar {
                    name: "APP".into(),
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            field_path: "metadata.labels['app']".into(),
                            api_version: None,
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        let mut base = EnvList::default();
        base.set("HOSTNAME", "p1");
        let env = container_env(&pod(), &container, "127.0.3.4", &sources, &base).unwrap();
        let got: Vec<(&str, &str)> = env.iter().collect();
        assert_eq!(
            got,
            vec![
                ("HOSTNAME", "p1"),
                ("CFG_LEVEL", "3"),
                ("CFG_MODE", "slow-3"),
                ("TOKEN", "s3cret"),
                ("NAME", "p1"),
                ("IP", "127.0.3.4"),
                ("APP", "web"),
            ]
        );
    }

    #[test]
    fn missing_sources_are_errors_unless_optional() {
        let mut container = Container {
            name: "c".into(),
            env: Some(vec![EnvVar {
                name: "X".into(),
                value_from: Some(EnvVarSource {
                    config_map_key_ref: Some(ConfigMapKeySelector {
                        name: "absent".into(),
                        key: "k".into(),
                        optional: None,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let err = container_env(&pod(), &container, "", &Sources::default(), &EnvList::default()).unwrap_err();
        assert_eq!(err.to_string(), "configmap \"absent\" not found");
        if let Some(r) = container
            .env
            .as_mut()
            .and_then(|env| env[0].value_from.as_mut())
            .and_then(|from| from.config_map_key_ref.as_mut())
        {
            r.optional = Some(true);
        }
        let env = container_env(&pod(), &container, "", &Sources::default(), &EnvList::default()).unwrap();
        assert_eq!(env.get("X"), None);
    }

    #[test]
    fn command_and_args_rules() {
        let mut env = EnvList::default();
        env.set("PORT", "8080");
        let image = ImageEntry { path: "/opt/server".into(), args: vec!["--default".into()] };
        let mut c = Container { name: "c".into(), image: Some("img".into()), ..Default::default() };
        assert_eq!(command_line(&c, Some(&image), &env).unwrap(), vec!["/opt/server", "--default"]);
        c.args = Some(vec!["--port=$(PORT)".into()]);
        assert_eq!(command_line(&c, Some(&image), &env).unwrap(), vec!["/opt/server", "--port=8080"]);
        c.command = Some(vec!["sh".into(), "-c".into()]);
        c.args = None;
        assert_eq!(command_line(&c, Some(&image), &env).unwrap(), vec!["sh", "-c"]);
        c.args = Some(vec!["echo $(PORT) $$(PORT)".into()]);
        assert_eq!(command_line(&c, None, &env).unwrap(), vec!["sh", "-c", "echo 8080 $(PORT)"]);
        c.command = None;
        assert!(matches!(command_line(&c, None, &env), Err(CommandError::ImageNotMapped(_))));
    }
}
