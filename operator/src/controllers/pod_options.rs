//! Pure: a resource's [`PodOptions`] added to the pod the operator builds (trainer Job or model
//! server Deployment), after the operator's own volumes, mounts and environment, which they
//! cannot replace.

use k8s_openapi::api::core::v1::{Container, PodSpec, VolumeMount};

use crate::api::PodOptions;
use crate::controllers::shared_volumes::path_within;

/// Add `options` to `pod` and its only `container`: the user's volumes, mounts and `envFrom`
/// after the operator's, the rest as the pod's fields.
pub fn add_to(options: &PodOptions, pod: &mut PodSpec, container: &mut Container) {
    let PodOptions {
        resources,
        env_from,
        volumes,
        volume_mounts,
        service_account_name,
        node_selector,
        tolerations,
        affinity,
        image_pull_secrets,
        priority_class_name,
    } = options.clone();
    container.resources = resources;
    extend(&mut container.env_from, env_from);
    extend(&mut container.volume_mounts, volume_mounts);
    extend(&mut pod.volumes, volumes);
    pod.service_account_name = service_account_name;
    pod.node_selector = node_selector;
    pod.tolerations = tolerations;
    pod.affinity = affinity;
    pod.image_pull_secrets = image_pull_secrets;
    pod.priority_class_name = priority_class_name;
}

/// `list` followed by `more`, staying `None` when both are empty (so the pod spec stays as
/// small as before for resources that set nothing).
fn extend<T>(list: &mut Option<Vec<T>>, more: Option<Vec<T>>) {
    let more = more.unwrap_or_default();
    if !more.is_empty() {
        list.get_or_insert_with(Vec::new).extend(more);
    }
}

/// The first of the user's mounts that would cover one of the operator's (`reserved`): at its
/// path or inside it, as its field and the problem. The volume names are refused by the CRD
/// already; the paths depend on the operator's flags, so only the operator can tell.
pub fn mount_clash(options: &PodOptions, reserved: &[VolumeMount]) -> Option<(String, String)> {
    let mounts = options.volume_mounts.iter().flatten().enumerate();
    mounts.into_iter().find_map(|(index, mount)| {
        let taken = reserved.iter().find(|own| path_within(&mount.mount_path, &own.mount_path))?;
        Some((
            format!("volumeMounts[{index}].mountPath"),
            format!(
                "{:?} is inside {:?}, where the operator mounts its volume {}: choose another path",
                mount.mount_path, taken.mount_path, taken.name
            ),
        ))
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{ConfigMapEnvSource, EnvFromSource, Volume};
    use serde_json::json;

    use super::*;

    fn mount(name: &str, path: &str) -> VolumeMount {
        VolumeMount { name: name.into(), mount_path: path.into(), ..VolumeMount::default() }
    }

    fn full_options() -> PodOptions {
        serde_json::from_value(json!({
            "resources": {"limits": {"nvidia.com/gpu": "1"}},
            "envFrom": [{"configMapRef": {"name": "settings"}}],
            "volumes": [{"name": "data", "configMap": {"name": "data"}}],
            "volumeMounts": [{"name": "data", "mountPath": "/mnt/data"}],
            "serviceAccountName": "trainer",
            "nodeSelector": {"gpu": "a100"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}},
            "imagePullSecrets": [{"name": "registry"}],
            "priorityClassName": "training"
        }))
        .unwrap()
    }

    #[test]
    fn every_option_reaches_the_pod_after_the_operators_own() {
        let own_volume = Volume { name: "trainloop-config".into(), ..Volume::default() };
        let own_env = EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource { name: "own".into(), optional: None }),
            ..EnvFromSource::default()
        };
        let mut pod = PodSpec { volumes: Some(vec![own_volume]), ..PodSpec::default() };
        let mut container = Container {
            volume_mounts: Some(vec![mount("trainloop-config", "/etc/trainloop")]),
            env_from: Some(vec![own_env]),
            ..Container::default()
        };
        add_to(&full_options(), &mut pod, &mut container);
        let names = |volumes: &[Volume]| volumes.iter().map(|v| v.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(pod.volumes.as_ref().unwrap()), ["trainloop-config", "data"]);
        let mounts = container.volume_mounts.unwrap();
        assert_eq!(mounts.iter().map(|m| m.mount_path.as_str()).collect::<Vec<_>>(), ["/etc/trainloop", "/mnt/data"]);
        let env_from = container.env_from.unwrap();
        assert_eq!(env_from[1].config_map_ref.as_ref().unwrap().name, "settings");
        assert_eq!(container.resources.unwrap().limits.unwrap()["nvidia.com/gpu"].0, "1");
        assert_eq!(pod.service_account_name.as_deref(), Some("trainer"));
        assert_eq!(pod.node_selector.unwrap()["gpu"], "a100");
        assert_eq!(pod.tolerations.unwrap()[0].key.as_deref(), Some("nvidia.com/gpu"));
        assert!(pod.affinity.unwrap().node_affinity.is_some());
        assert_eq!(pod.image_pull_secrets.unwrap()[0].name, "registry");
        assert_eq!(pod.priority_class_name.as_deref(), Some("training"));
    }

    #[test]
    fn nothing_set_adds_nothing() {
        let (mut pod, mut container) = (PodSpec::default(), Container::default());
        add_to(&PodOptions::default(), &mut pod, &mut container);
        assert_eq!((pod, container), (PodSpec::default(), Container::default()));
    }

    #[test]
    fn a_mount_at_or_inside_the_operators_is_named() {
        let reserved = [mount("trainloop-artifacts", "/srv/artifacts/")];
        let mut options = full_options();
        assert_eq!(mount_clash(&options, &reserved), None);
        for (path, clash) in
            [("/srv/artifacts", true), ("/srv/artifacts/x", true), ("/srv", false), ("/srv/artifactsx", false)]
        {
            options.volume_mounts = Some(vec![mount("data", "/mnt/data"), mount("other", path)]);
            let problem = mount_clash(&options, &reserved);
            assert_eq!(problem.is_some(), clash, "{path}: {problem:?}");
            if let Some((field, problem)) = problem {
                assert_eq!(field, "volumeMounts[1].mountPath");
                assert!(problem.contains("trainloop-artifacts"), "{problem}");
            }
        }
    }
}
