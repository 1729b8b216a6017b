//! Pod volumes materialized as plain directories under the pod's directory.
//!
//! ConfigMap, Secret, downwardAPI and projected volumes are written once when the pod starts
//! (later edits of the ConfigMap are not propagated); emptyDir is an empty directory; hostPath is
//! the host path itself; a projected serviceAccountToken is a bound token of the pod's service
//! account, asked for at start (and not refreshed); a persistentVolumeClaim is a directory per claim under
//! `<work_dir>/volumes/<namespace>/<claim>` that outlives its pods. Other kinds get an empty
//! directory so that a pod using them still starts.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{KeyToPath, Pod, Volume};

use super::env::{Refs, Sources, TokenKey, config_map_data, field_ref, secret_data};
use super::paths::PodDirs;

/// The ConfigMaps and Secrets (name, optional) that the pod's volumes read.
pub fn referenced(pod: &Pod) -> (Refs, Refs) {
    let mut cms = Vec::new();
    let mut secrets = Vec::new();
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        if let Some(cm) = &v.config_map {
            cms.push((cm.name.clone(), cm.optional.unwrap_or(false)));
        }
        if let Some(s) = &v.secret
            && let Some(name) = &s.secret_name
        {
            secrets.push((name.clone(), s.optional.unwrap_or(false)));
        }
        for src in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            if let Some(cm) = &src.config_map {
                cms.push((cm.name.clone(), cm.optional.unwrap_or(false)));
            }
            if let Some(s) = &src.secret {
                secrets.push((s.name.clone(), s.optional.unwrap_or(false)));
            }
        }
    }
    (cms, secrets)
}

/// A projected token's expiration when it names none, as the API defaults it.
const DEFAULT_TOKEN_EXPIRATION: i64 = 3600;

/// The service-account tokens the pod's projected volumes ask for.
pub fn token_requests(pod: &Pod) -> Vec<TokenKey> {
    let mut out: Vec<TokenKey> = pod
        .spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .flat_map(|v| v.projected.iter().flat_map(|p| p.sources.iter().flatten()))
        .filter_map(|src| src.service_account_token.as_ref())
        .map(|t| (t.audience.clone().unwrap_or_default(), t.expiration_seconds.unwrap_or(DEFAULT_TOKEN_EXPIRATION)))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A relative path inside a volume, refusing anything that could escape it.
fn safe_relative(path: &str) -> Result<&Path, String> {
    let p = Path::new(path);
    if path.is_empty() || p.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(format!("invalid path {path:?} in volume items"));
    }
    Ok(p)
}

fn write_file(dir: &Path, rel: &str, data: &[u8], mode: Option<i32>) -> Result<(), String> {
    let path = dir.join(safe_relative(rel)?);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(&path, data).map_err(|e| format!("{}: {e}", path.display()))?;
    let mode = mode.unwrap_or(0o644) as u32 & 0o777;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes `data` as files: every key, or only the listed items.
fn write_keys(
    dir: &Path,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<KeyToPath>>,
    default_mode: Option<i32>,
    what: &str,
) -> Result<(), String> {
    match items {
        Some(items) if !items.is_empty() => {
            for item in items {
                let Some(value) = data.get(&item.key) else {
                    return Err(format!("{what}: no key {:?}", item.key));
                };
                write_file(dir, &item.path, value, item.mode.or(default_mode))?;
            }
        }
        _ => {
            for (key, value) in data {
                write_file(dir, key, value, default_mode)?;
            }
        }
    }
    Ok(())
}

/// Creates every volume of the pod; returns volume name -> host directory.
pub fn materialize(
    pod: &Pod,
    dirs: &PodDirs,
    work_dir: &Path,
    sources: &Sources,
    pod_ip: &str,
) -> Result<BTreeMap<String, PathBuf>, String> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let mut out = BTreeMap::new();
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let host = materialize_one(pod, v, dirs, work_dir, &namespace, sources, pod_ip)
            .map_err(|e| format!("MountVolume.SetUp failed for volume {:?}: {e}", v.name))?;
        out.insert(v.name.clone(), host);
    }
    Ok(out)
}

fn materialize_one(
    pod: &Pod,
    v: &Volume,
    dirs: &PodDirs,
    work_dir: &Path,
    namespace: &str,
    sources: &Sources,
    pod_ip: &str,
) -> Result<PathBuf, String> {
    if let Some(host) = &v.host_path {
        let path = PathBuf::from(&host.path);
        if matches!(host.type_.as_deref(), Some("DirectoryOrCreate")) {
            std::fs::create_dir_all(&path).map_err(|e| e.to_string())?;
        }
        return Ok(path);
    }
    if let Some(pvc) = &v.persistent_volume_claim {
        if !super::paths::safe_segment(&pvc.claim_name) {
            return Err(format!("invalid claim name {:?}", pvc.claim_name));
        }
        let dir = work_dir.join("volumes").join(namespace).join(&pvc.claim_name);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        return Ok(dir);
    }
    if !super::paths::safe_segment(&v.name) {
        return Err("invalid volume name".into());
    }
    let dir = dirs.volume(&v.name);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    if let Some(cm) = &v.config_map {
        match sources.config_maps.get(&cm.name) {
            Some(obj) => write_keys(
                &dir,
                &config_map_data(obj),
                cm.items.as_ref(),
                cm.default_mode,
                &format!("configmap {:?}", cm.name),
            )?,
            None if cm.optional.unwrap_or(false) => {}
            None => return Err(format!("configmap {:?} not found", cm.name)),
        }
    } else if let Some(s) = &v.secret {
        let name = s.secret_name.clone().unwrap_or_default();
        match sources.secrets.get(&name) {
            Some(obj) => {
                write_keys(&dir, &secret_data(obj), s.items.as_ref(), s.default_mode, &format!("secret {name:?}"))?
            }
            None if s.optional.unwrap_or(false) => {}
            None => return Err(format!("secret {name:?} not found")),
        }
    } else if let Some(d) = &v.downward_api {
        for item in d.items.iter().flatten() {
            if let Some(f) = &item.field_ref {
                let value = field_ref(pod, pod_ip, &f.field_path).map_err(|e| e.to_string())?;
                write_file(&dir, &item.path, value.as_bytes(), item.mode.or(d.default_mode))?;
            }
        }
    } else if let Some(p) = &v.projected {
        for src in p.sources.iter().flatten() {
            if let Some(cm) = &src.config_map {
                match sources.config_maps.get(&cm.name) {
                    Some(obj) => write_keys(
                        &dir,
                        &config_map_data(obj),
                        cm.items.as_ref(),
                        p.default_mode,
                        &format!("configmap {:?}", cm.name),
                    )?,
                    None if cm.optional.unwrap_or(false) => {}
                    None => return Err(format!("configmap {:?} not found", cm.name)),
                }
            }
            if let Some(s) = &src.secret {
                match sources.secrets.get(&s.name) {
                    Some(obj) => write_keys(
                        &dir,
                        &secret_data(obj),
                        s.items.as_ref(),
                        p.default_mode,
                        &format!("secret {:?}", s.name),
                    )?,
                    None if s.optional.unwrap_or(false) => {}
                    None => return Err(format!("secret {:?} not found", s.name)),
                }
            }
            if let Some(d) = &src.downward_api {
                for item in d.items.iter().flatten() {
                    if let Some(f) = &item.field_ref {
                        let value = field_ref(pod, pod_ip, &f.field_path).map_err(|e| e.to_string())?;
                        write_file(&dir, &item.path, value.as_bytes(), item.mode.or(p.default_mode))?;
                    }
                }
            }
            if let Some(t) = &src.service_account_token {
                let key =
                    (t.audience.clone().unwrap_or_default(), t.expiration_seconds.unwrap_or(DEFAULT_TOKEN_EXPIRATION));
                let token = sources.tokens.get(&key).ok_or("no service account token was issued")?;
                // A token is a credential: owner-only unless the volume says otherwise.
                write_file(&dir, &t.path, token.as_bytes(), p.default_mode.or(Some(0o600)))?;
            }
        }
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ConfigMap, ConfigMapVolumeSource, PodSpec};
    use kube::api::ObjectMeta;

    #[test]
    fn writes_config_maps_and_refuses_escapes() {
        let work = std::env::temp_dir().join(format!("lp-vol-{}", uuid::Uuid::new_v4()));
        let dirs = PodDirs::new(&work, "ns", "p");
        let mut sources = Sources::default();
        sources.config_maps.insert(
            "cfg".into(),
            ConfigMap { data: Some([("config.json".to_string(), "{}".to_string())].into()), ..Default::default() },
        );
        let volume = |items: Option<Vec<KeyToPath>>| Volume {
            name: "config".into(),
            config_map: Some(ConfigMapVolumeSource { name: "cfg".into(), items, ..Default::default() }),
            ..Default::default()
        };
        let pod = |v: Volume| Pod {
            metadata: ObjectMeta { namespace: Some("ns".into()), ..Default::default() },
            spec: Some(PodSpec { volumes: Some(vec![v]), ..Default::default() }),
            ..Default::default()
        };
        let out = materialize(&pod(volume(None)), &dirs, &work, &sources, "").unwrap();
        let dir = &out["config"];
        assert_eq!(std::fs::read_to_string(dir.join("config.json")).unwrap(), "{}");

        let escape = vec![KeyToPath { key: "config.json".into(), path: "../../x".into(), ..Default::default() }];
        let err = materialize(&pod(volume(Some(escape))), &dirs, &work, &sources, "").unwrap_err();
        assert!(err.contains("invalid path"), "{err}");
        let err = materialize(&pod(volume(None)), &dirs, &work, &Sources::default(), "").unwrap_err();
        assert!(err.contains("not found"), "{err}");
        std::fs::remove_dir_all(&work).unwrap();
    }
}
