//! Pure: the shared volume behind a `file://` artifact root on a real cluster
//! (`--artifact-volume CLAIM`). Each pod has a filesystem of its own there, so the claim is
//! mounted at the root's path in trainer pods (read-write) and server pods (read-only) alike:
//! what a trainer writes outlives its pod, and the server reads the same path.

use k8s_openapi::api::core::v1::{PersistentVolumeClaimVolumeSource, Volume, VolumeMount};

use super::Settings;

/// The pod volume's name.
pub const VOLUME: &str = "trainloop-artifacts";

/// The claim's volume and its mount at the artifact root's path; none without a claim or for
/// an object-store root (which needs no volume).
pub fn artifact_volume(settings: &Settings, read_only: bool) -> Option<(Volume, VolumeMount)> {
    let claim = settings.artifact_volume.as_ref()?;
    let path = settings.artifact_root.strip_prefix("file://")?;
    let volume = Volume {
        name: VOLUME.into(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: claim.clone(),
            read_only: Some(read_only),
        }),
        ..Volume::default()
    };
    let mount = VolumeMount {
        name: VOLUME.into(),
        mount_path: path.into(),
        read_only: Some(read_only),
        ..VolumeMount::default()
    };
    Some((volume, mount))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(root: &str, claim: Option<&str>) -> Settings {
        Settings { artifact_volume: claim.map(str::to_string), ..Settings::new(root) }
    }

    #[test]
    fn a_claim_is_mounted_at_a_file_root_only() {
        let (volume, mount) = artifact_volume(&settings("file:///var/lib/trainloop", Some("artifacts")), true).unwrap();
        let claim = volume.persistent_volume_claim.unwrap();
        assert_eq!((claim.claim_name.as_str(), claim.read_only), ("artifacts", Some(true)));
        assert_eq!((mount.mount_path.as_str(), mount.read_only), ("/var/lib/trainloop", Some(true)));
        assert_eq!(artifact_volume(&settings("file:///var/lib/trainloop", None), false), None);
        assert_eq!(artifact_volume(&settings("s3://models", Some("artifacts")), false), None);
    }
}
