//! Pure: the shared volumes behind `file://` URIs on a real cluster, where each pod has a
//! filesystem of its own. `--artifact-volume CLAIM` is mounted at a `file://` artifact root's
//! path in trainer pods (read-write) and server pods (read-only) alike, so what a trainer writes
//! outlives its pod and the server reads the same path; `--data-volume CLAIM` is mounted
//! (read-only) at `--data-dir` in trainer pods, so `file://<data dir>/...` data URIs name the
//! same files in every run. Without them, [`unshared_file`] says why a run cannot work.

use k8s_openapi::api::core::v1::{PersistentVolumeClaimVolumeSource, Volume, VolumeMount};

use super::Settings;

/// The artifact volume's name in the pod.
pub const ARTIFACT_VOLUME: &str = "trainloop-artifacts";
/// The data volume's name in the pod.
pub const DATA_VOLUME: &str = "trainloop-data";

/// The artifact claim's volume and its mount at the artifact root's path; none without a claim
/// or for an object-store root (which needs no volume).
pub fn artifact_volume(settings: &Settings, read_only: bool) -> Option<(Volume, VolumeMount)> {
    let claim = settings.artifact_volume.as_ref()?;
    let path = settings.artifact_root.strip_prefix("file://")?;
    Some(claim_volume(ARTIFACT_VOLUME, claim, path, read_only))
}

/// The data claim's volume and its read-only mount at the data directory; none without a claim.
pub fn data_volume(settings: &Settings) -> Option<(Volume, VolumeMount)> {
    let claim = settings.data_volume.as_ref()?;
    Some(claim_volume(DATA_VOLUME, claim, &settings.data_dir, true))
}

/// Whether `path` is `dir` or inside it (trailing slashes aside).
pub fn path_within(path: &str, dir: &str) -> bool {
    let (path, dir) = (path.trim_end_matches('/'), dir.trim_end_matches('/'));
    path == dir || path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'))
}

/// What would go wrong with a run's `file://` paths on a real cluster, where each pod has its own
/// filesystem: an artifact root on no shared volume (the model would vanish with the trainer's
/// pod), or a data URI under none of the trainer's `mounts` (the trainer would find nothing).
/// Nothing where pods share the operator's host (`--local-files`).
pub fn unshared_file(settings: &Settings, data_uri: &str, mounts: &[VolumeMount]) -> Option<(&'static str, String)> {
    if settings.local_files {
        return None;
    }
    let root = &settings.artifact_root;
    if root.starts_with("file://") && settings.artifact_volume.is_none() {
        return Some((
            "--artifact-root",
            format!(
                "{root} is on no shared volume, so the model would be lost with the trainer's pod: start the \
                 operator with --artifact-volume CLAIM (chart: artifacts.volume) or an s3://, gs:// or az:// \
                 --artifact-root, or with --local-files where pods share its host's files"
            ),
        ));
    }
    let path = data_uri.strip_prefix("file://")?;
    let covered = mounts.iter().any(|mount| path_within(path, &mount.mount_path));
    (!covered).then(|| {
        let problem = format!(
            "{data_uri} is on no volume of the trainer's pod: mount one there (volumeMounts), start the operator \
             with --data-volume CLAIM and --data-dir (chart: data.volume, data.dir), or with --local-files where \
             pods share its host's files"
        );
        ("spec.data.uri", problem)
    })
}

fn claim_volume(name: &str, claim: &str, path: &str, read_only: bool) -> (Volume, VolumeMount) {
    let volume = Volume {
        name: name.into(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: claim.into(),
            read_only: Some(read_only),
        }),
        ..Volume::default()
    };
    let mount = VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: Some(read_only),
        ..VolumeMount::default()
    };
    (volume, mount)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(root: &str, claim: Option<&str>) -> Settings {
        Settings { artifact_volume: claim.map(str::to_string), ..Settings::new(root) }
    }

    #[test]
    fn an_artifact_claim_is_mounted_at_a_file_root_only() {
        let (volume, mount) = artifact_volume(&settings("file:///var/lib/trainloop", Some("artifacts")), true).unwrap();
        let claim = volume.persistent_volume_claim.unwrap();
        assert_eq!((claim.claim_name.as_str(), claim.read_only), ("artifacts", Some(true)));
        assert_eq!((mount.mount_path.as_str(), mount.read_only), ("/var/lib/trainloop", Some(true)));
        assert_eq!(artifact_volume(&settings("file:///var/lib/trainloop", None), false), None);
        assert_eq!(artifact_volume(&settings("s3://models", Some("artifacts")), false), None);
    }

    fn mount(path: &str) -> VolumeMount {
        VolumeMount { name: "data".into(), mount_path: path.into(), ..VolumeMount::default() }
    }

    #[test]
    fn file_uris_on_no_volume_are_named_with_the_flag_to_use() {
        let cluster = Settings::new("file:///srv/artifacts");
        let (field, problem) = unshared_file(&cluster, "s3://data/d.csv", &[]).unwrap();
        assert_eq!(field, "--artifact-root");
        assert!(problem.starts_with("file:///srv/artifacts is on no shared volume"), "{problem}");
        assert!(problem.contains("--artifact-volume CLAIM") && problem.contains("--local-files"), "{problem}");
        let local = Settings { local_files: true, ..cluster.clone() };
        assert_eq!(unshared_file(&local, "file:///anywhere.csv", &[]), None);

        let shared = Settings { artifact_volume: Some("artifacts".into()), ..cluster };
        for settings in [shared, Settings::new("s3://models")] {
            assert_eq!(unshared_file(&settings, "s3://data/d.csv", &[]), None);
            assert_eq!(unshared_file(&settings, "file:///mnt/data/d.csv", &[mount("/mnt/data/")]), None);
            let (field, problem) =
                unshared_file(&settings, "file:///mnt/database/d.csv", &[mount("/mnt/data")]).unwrap();
            assert_eq!(field, "spec.data.uri");
            assert!(problem.starts_with("file:///mnt/database/d.csv is on no volume"), "{problem}");
            assert!(problem.contains("--data-volume CLAIM"), "{problem}");
        }
    }

    #[test]
    fn a_data_claim_is_mounted_read_only_at_the_data_dir() {
        assert_eq!(data_volume(&Settings::new("s3://models")), None);
        let settings = Settings { data_volume: Some("datasets".into()), ..Settings::new("s3://models") };
        let (volume, mount) = data_volume(&settings).unwrap();
        let claim = volume.persistent_volume_claim.unwrap();
        assert_eq!((claim.claim_name.as_str(), claim.read_only), ("datasets", Some(true)));
        assert_eq!((volume.name.as_str(), mount.name.as_str()), (DATA_VOLUME, DATA_VOLUME));
        assert_eq!((mount.mount_path.as_str(), mount.read_only), ("/var/lib/trainloop/data", Some(true)));
    }
}
