//! Where a pod's container paths live on the host, and rewriting of strings that name them.
//!
//! Processes share the host filesystem, so each pod gets a directory
//! `<work_dir>/pods/<namespace>/<pod>/` holding its log, its volumes and each container's
//! termination-message file. A container still thinks in container paths (`/etc/config/x.json`,
//! `/dev/termination-log`), so its command, args, env values and workingDir are rewritten: a
//! volume mountPath matches as a path prefix, the termination message path only as a whole path.
//! Matches must start and end on a path boundary, so substrings inside `sh -c` scripts
//! (`echo x > /dev/termination-log`) are rewritten and `/etc/configs` is not taken for `/etc/config`;
//! the path of a `file://` URI is rewritten too (`file:///etc/trainloop/x` names a mounted file).

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod};

/// The default terminationMessagePath of a container.
pub const DEFAULT_TERMINATION_PATH: &str = "/dev/termination-log";

/// The per-pod directory layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodDirs {
    pub root: PathBuf,
}

impl PodDirs {
    pub fn new(work_dir: &Path, namespace: &str, pod: &str) -> PodDirs {
        PodDirs { root: work_dir.join("pods").join(namespace).join(pod) }
    }
    /// All containers' stdout and stderr; the API server serves it as `pods/<name>/log`.
    pub fn log(&self) -> PathBuf {
        self.root.join("log")
    }
    pub fn volume(&self, name: &str) -> PathBuf {
        self.root.join("volumes").join(name)
    }
    pub fn container(&self, name: &str) -> PathBuf {
        self.root.join("containers").join(name)
    }
    pub fn termination_log(&self, container: &str) -> PathBuf {
        self.container(container).join("termination-log")
    }
    /// The working directory of a container that sets no workingDir.
    pub fn work(&self, container: &str) -> PathBuf {
        self.container(container).join("work")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Mapping {
    container: String,
    host: PathBuf,
    /// A mountPath maps everything below it; a file path only maps itself.
    prefix: bool,
}

/// A container's view: container path -> host path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathMap {
    mappings: Vec<Mapping>,
}

/// Characters that continue a path; anything else (space, quote, `=`, `:`, `>`, `,`...) ends it.
fn is_path_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '~' | '+' | '@' | '%')
}

impl PathMap {
    /// Maps a mountPath (a directory or, with subPath, a file) and everything under it.
    pub fn mount(&mut self, container_path: &str, host: PathBuf) {
        let trimmed = container_path.trim_end_matches('/');
        // Remapping "/" would rewrite every absolute path; such a mount is not honoured.
        if trimmed.is_empty() || !trimmed.starts_with('/') {
            return;
        }
        self.push(Mapping { container: trimmed.to_string(), host, prefix: true });
    }

    /// Maps exactly one file path (the termination message path).
    pub fn file(&mut self, container_path: &str, host: PathBuf) {
        if container_path.is_empty() || container_path == "/" {
            return;
        }
        self.push(Mapping { container: container_path.to_string(), host, prefix: false });
    }

    fn push(&mut self, m: Mapping) {
        self.mappings.retain(|old| old.container != m.container);
        self.mappings.push(m);
        // Longest first, so the most specific mount wins.
        self.mappings.sort_by_key(|m| std::cmp::Reverse(m.container.len()));
    }

    /// The host path for a container path, if one of the mappings covers it.
    pub fn resolve(&self, path: &str) -> Option<PathBuf> {
        for m in &self.mappings {
            if path == m.container {
                return Some(m.host.clone());
            }
            if m.prefix
                && let Some(rest) = path.strip_prefix(&m.container)
                && let Some(rest) = rest.strip_prefix('/')
            {
                return Some(m.host.join(rest));
            }
        }
        None
    }

    /// Rewrites every container path named in `s` to its host path.
    pub fn rewrite(&self, s: &str) -> String {
        if self.mappings.is_empty() {
            return s.to_string();
        }
        let mut out = String::with_capacity(s.len());
        let mut prev: Option<char> = None;
        let mut i = 0;
        'scan: while i < s.len() {
            // A `file://` URI names a container path too (`file:///mnt/data/x.csv`).
            let at_boundary = prev.is_none_or(|p| !is_path_char(p)) || s[..i].ends_with("file://");
            if at_boundary && s[i..].starts_with('/') {
                for m in &self.mappings {
                    if !s[i..].starts_with(&m.container) {
                        continue;
                    }
                    let end = i + m.container.len();
                    let next = s[end..].chars().next();
                    let ends_ok = match next {
                        None => true,
                        Some('/') => m.prefix,
                        Some(c) => !is_path_char(c),
                    };
                    if ends_ok {
                        out.push_str(&m.host.to_string_lossy());
                        prev = m.container.chars().last();
                        i = end;
                        continue 'scan;
                    }
                }
            }
            let Some(c) = s[i..].chars().next() else {
                break;
            };
            out.push(c);
            prev = Some(c);
            i += c.len_utf8();
        }
        out
    }
}

/// The path map of one container of a pod: its volume mounts and termination message path.
/// `volume_host` gives the host directory of a pod volume by name.
pub fn container_path_map(
    dirs: &PodDirs,
    container: &Container,
    volume_host: &dyn Fn(&str) -> Option<PathBuf>,
) -> PathMap {
    let mut map = PathMap::default();
    for mount in container.volume_mounts.iter().flatten() {
        let Some(base) = volume_host(&mount.name) else {
            continue;
        };
        let host = match mount.sub_path.as_deref() {
            Some(sub) if !sub.is_empty() => base.join(sub.trim_start_matches('/')),
            _ => base,
        };
        map.mount(&mount.mount_path, host);
    }
    let term =
        container.termination_message_path.as_deref().filter(|p| !p.is_empty()).unwrap_or(DEFAULT_TERMINATION_PATH);
    map.file(term, dirs.termination_log(&container.name));
    map
}

/// Namespace and name of a pod, defaulting what a sloppy server could leave out.
pub fn pod_key(pod: &Pod) -> (String, String) {
    (
        pod.metadata.namespace.clone().unwrap_or_else(|| "default".to_string()),
        pod.metadata.name.clone().unwrap_or_default(),
    )
}

/// Whether a pod name is safe to use as a directory name.
pub fn safe_segment(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains('/') && !s.contains('\0')
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::VolumeMount;

    fn map() -> PathMap {
        let mut m = PathMap::default();
        m.mount("/etc/trainloop/", PathBuf::from("/w/p/volumes/config"));
        m.mount("/etc/trainloop/secrets", PathBuf::from("/w/p/volumes/sec"));
        m.file("/dev/termination-log", PathBuf::from("/w/p/containers/c/termination-log"));
        m
    }

    #[test]
    fn rewrites_prefixes_on_path_boundaries() {
        let m = map();
        assert_eq!(m.rewrite("/etc/trainloop/config.json"), "/w/p/volumes/config/config.json");
        assert_eq!(m.rewrite("/etc/trainloop"), "/w/p/volumes/config");
        assert_eq!(m.rewrite("--config=/etc/trainloop/config.json"), "--config=/w/p/volumes/config/config.json");
        assert_eq!(m.rewrite("/etc/trainloop/secrets/t"), "/w/p/volumes/sec/t");
        assert_eq!(m.rewrite("/etc/trainloopx/a"), "/etc/trainloopx/a");
        assert_eq!(m.rewrite("/opt/etc/trainloop/a"), "/opt/etc/trainloop/a");
        assert_eq!(m.rewrite("a:/etc/trainloop:b"), "a:/w/p/volumes/config:b");
        assert_eq!(m.rewrite("plain text"), "plain text");
        assert_eq!(m.rewrite("file:///etc/trainloop/d.csv"), "file:///w/p/volumes/config/d.csv");
        assert_eq!(m.rewrite("DATA=file:///etc/trainloop"), "DATA=file:///w/p/volumes/config");
        assert_eq!(m.rewrite("http://etc/trainloop/x"), "http://etc/trainloop/x", "a host, not a path");
    }

    #[test]
    fn rewrites_termination_path_only_as_a_whole_path() {
        let m = map();
        assert_eq!(
            m.rewrite("echo '{\"a\":1}' > /dev/termination-log; cat /dev/termination-log2"),
            "echo '{\"a\":1}' > /w/p/containers/c/termination-log; cat /dev/termination-log2"
        );
        assert_eq!(m.rewrite("/dev/termination-log/x"), "/dev/termination-log/x");
        assert_eq!(m.rewrite(">/dev/termination-log"), ">/w/p/containers/c/termination-log");
    }

    #[test]
    fn resolves_and_builds_per_container_maps() {
        let m = map();
        assert_eq!(m.resolve("/etc/trainloop/a/b"), Some(PathBuf::from("/w/p/volumes/config/a/b")));
        assert_eq!(m.resolve("/etc/other"), None);

        let dirs = PodDirs::new(Path::new("/w"), "ns", "p");
        let container = Container {
            name: "main".into(),
            termination_message_path: Some("/tmp/msg".into()),
            volume_mounts: Some(vec![
                VolumeMount {
                    name: "cfg".into(),
                    mount_path: "/etc/app/app.yaml".into(),
                    sub_path: Some("app.yaml".into()),
                    ..Default::default()
                },
                VolumeMount { name: "unknown".into(), mount_path: "/data".into(), ..Default::default() },
            ]),
            ..Default::default()
        };
        let vol = |name: &str| (name == "cfg").then(|| dirs.volume(name));
        let m = container_path_map(&dirs, &container, &vol);
        assert_eq!(
            m.rewrite("/etc/app/app.yaml /tmp/msg /data"),
            "/w/pods/ns/p/volumes/cfg/app.yaml /w/pods/ns/p/containers/main/termination-log /data"
        );
    }

    #[test]
    fn root_mounts_are_ignored() {
        let mut m = PathMap::default();
        m.mount("/", PathBuf::from("/x"));
        assert_eq!(m.rewrite("/etc/passwd"), "/etc/passwd");
        assert!(safe_segment("pod-1") && !safe_segment("..") && !safe_segment("a/b"));
    }
}
