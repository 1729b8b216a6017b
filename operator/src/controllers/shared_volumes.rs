//! Pure: the shared volumes behind `file://` URIs on a real cluster, where each pod has a
//! filesystem of its own. `--artifact-volume CLAIM` is mounted at a `file://` artifact root's
//! path in trainer pods (read-write) and server pods (read-only) alike, so what a trainer writes
//! outlives its pod and the server reads the same path; `--data-volume CLAIM` is mounted
//! (read-only) at `--data-dir` in trainer pods, so `file://<data dir>/...` data URIs name the
//! same files in every run.

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
