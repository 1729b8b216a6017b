//! The real control plane's launcher: every server it started is gone once the plane is dropped,
//! also when the test holding it panics, and its logs are kept then.

use trainloop_e2e::realplane::{self, RealPlane};

#[tokio::test]
async fn a_test_that_panics_leaves_no_server_behind() {
    let bin = match realplane::binaries() {
        Ok(bin) => bin,
        Err(why) if std::env::var_os("TRAINLOOP_KUBE_BIN").is_none() => return eprintln!("skipped: {why}"),
        Err(why) => panic!("{why}"),
    };
    let plane = RealPlane::start(&bin).await.expect("the real control plane starts");
    let pids = plane.pids();
    assert_eq!(pids.len(), 4, "etcd, kube-apiserver, kube-controller-manager, kube-scheduler");
    // The release the build stamped is the one the cache folder is named after.
    let version = plane.client().await.unwrap().apiserver_version().await.unwrap().git_version;
    let folder = bin.file_name().unwrap().to_string_lossy().into_owned();
    assert!(folder.starts_with(&format!("kube-{version}-")), "{version} served from {folder}");
    let work_dir = plane.work_dir().to_path_buf();

    let failing_test = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _plane = plane;
        panic!("a failing assertion");
    }));
    assert!(failing_test.is_err());
    for pid in pids {
        // The servers were killed and reaped: the pid names no process (not even a zombie).
        let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
        assert!(!alive, "server {pid} is still running");
    }
    assert!(work_dir.join("kube-apiserver.log").is_file(), "the logs are kept for the failed test");
    std::fs::remove_dir_all(work_dir).unwrap();
}
