//! The service-account volume every pod gets, as the ServiceAccount admission plugin adds it: a
//! projected `kube-api-access-*` volume (a bound token, the cluster CA from the `kube-root-ca.crt`
//! ConfigMap, the namespace) mounted read-only in every container at the standard path. The path
//! is rewritten like any mount path, so a command or env value that names
//! `/var/run/secrets/kubernetes.io/serviceaccount/token` reads this pod's token.
//! Unlike a real cluster, the volume is added when the kubelet starts the pod and is not written
//! into the stored pod spec.

use k8s_openapi::api::core::v1::{
    ConfigMapProjection, DownwardAPIProjection, DownwardAPIVolumeFile, KeyToPath, ObjectFieldSelector, Pod,
    ProjectedVolumeSource, ServiceAccountTokenProjection, Volume, VolumeMount, VolumeProjection,
};

use crate::controllers::service_accounts::ROOT_CA_CONFIG_MAP;

pub const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// What the admission plugin asks for; the API server extends such tokens to a year.
pub const TOKEN_EXPIRATION_SECONDS: i64 = 3607;

/// The pod's service account name (`default` when unset).
pub fn account_name(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".into())
}

/// The pod with the service-account volume and its mounts, unless automounting is turned off
/// (on the pod, or on its service account when the pod does not say) or the pod already has one.
pub fn with_api_access(pod: &Pod, account_automount: Option<bool>) -> Pod {
    let mut pod = pod.clone();
    let Some(spec) = pod.spec.as_mut() else {
        return pod;
    };
    if !spec.automount_service_account_token.or(account_automount).unwrap_or(true) {
        return pod;
    }
    let mounted = |c: &k8s_openapi::api::core::v1::Container| {
        c.volume_mounts.iter().flatten().any(|m| m.mount_path.trim_end_matches('/') == MOUNT_PATH)
    };
    if spec.containers.iter().chain(spec.init_containers.iter().flatten()).all(mounted) {
        return pod;
    }
    let suffix: String =
        pod.metadata.uid.as_deref().unwrap_or("local").chars().filter(char::is_ascii_alphanumeric).take(5).collect();
    let name = format!("kube-api-access-{suffix}");
    spec.volumes.get_or_insert_with(Vec::new).push(api_access_volume(&name));
    for c in spec.containers.iter_mut().chain(spec.init_containers.iter_mut().flatten()) {
        if !mounted(c) {
            c.volume_mounts.get_or_insert_with(Vec::new).push(VolumeMount {
                name: name.clone(),
                mount_path: MOUNT_PATH.into(),
                read_only: Some(true),
                ..Default::default()
            });
        }
    }
    pod
}

fn api_access_volume(name: &str) -> Volume {
    let token = ServiceAccountTokenProjection {
        path: "token".into(),
        expiration_seconds: Some(TOKEN_EXPIRATION_SECONDS),
        ..Default::default()
    };
    let ca = ConfigMapProjection {
        name: ROOT_CA_CONFIG_MAP.into(),
        items: Some(vec![KeyToPath { key: "ca.crt".into(), path: "ca.crt".into(), ..Default::default() }]),
        ..Default::default()
    };
    let namespace = DownwardAPIProjection {
        items: Some(vec![DownwardAPIVolumeFile {
            path: "namespace".into(),
            field_ref: Some(ObjectFieldSelector {
                api_version: Some("v1".into()),
                field_path: "metadata.namespace".into(),
            }),
            ..Default::default()
        }]),
    };
    Volume {
        name: name.into(),
        projected: Some(ProjectedVolumeSource {
            default_mode: Some(0o644),
            sources: Some(vec![
                VolumeProjection { service_account_token: Some(token), ..Default::default() },
                VolumeProjection { config_map: Some(ca), ..Default::default() },
                VolumeProjection { downward_api: Some(namespace), ..Default::default() },
            ]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use kube::api::ObjectMeta;

    fn pod(automount: Option<bool>, mounts: Option<Vec<VolumeMount>>) -> Pod {
        Pod {
            metadata: ObjectMeta { uid: Some("ab-cdef-12".into()), ..Default::default() },
            spec: Some(PodSpec {
                automount_service_account_token: automount,
                containers: vec![Container { name: "c".into(), volume_mounts: mounts, ..Default::default() }],
                init_containers: Some(vec![Container { name: "i".into(), ..Default::default() }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn every_container_mounts_the_api_access_volume() {
        let admitted = with_api_access(&pod(None, None), None);
        let spec = admitted.spec.unwrap();
        let volume = &spec.volumes.unwrap()[0];
        assert_eq!(volume.name, "kube-api-access-abcde");
        let sources = volume.projected.as_ref().unwrap().sources.as_ref().unwrap();
        assert_eq!(sources[0].service_account_token.as_ref().unwrap().expiration_seconds, Some(3607));
        assert_eq!(sources[1].config_map.as_ref().unwrap().name, "kube-root-ca.crt");
        for c in spec.containers.iter().chain(spec.init_containers.iter().flatten()) {
            let m = &c.volume_mounts.as_ref().unwrap()[0];
            assert_eq!(
                (m.name.as_str(), m.mount_path.as_str(), m.read_only),
                ("kube-api-access-abcde", MOUNT_PATH, Some(true))
            );
        }
    }

    #[test]
    fn automount_off_or_an_own_mount_leaves_the_pod_alone() {
        let none = |p: Pod| p.spec.unwrap().volumes.is_none();
        assert!(none(with_api_access(&pod(Some(false), None), None)));
        assert!(none(with_api_access(&pod(None, None), Some(false))));
        assert!(!none(with_api_access(&pod(Some(true), None), Some(false))), "the pod's setting wins");
        let own = vec![VolumeMount { name: "mine".into(), mount_path: format!("{MOUNT_PATH}/"), ..Default::default() }];
        let admitted = with_api_access(&pod(None, Some(own)), None).spec.unwrap();
        assert_eq!(admitted.containers[0].volume_mounts.as_ref().unwrap().len(), 1);
        assert_eq!(admitted.init_containers.unwrap()[0].volume_mounts.as_ref().unwrap()[0].mount_path, MOUNT_PATH);
    }
}
