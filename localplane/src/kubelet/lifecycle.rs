//! The preStop lifecycle hook: run before a container gets SIGTERM, inside its grace period,
//! as the kubelet does (pkg/kubelet/kuberuntime `killContainer`): the hook may take at most the
//! grace period, what it used is taken from the grace period, and the container still gets at
//! least 2 seconds between SIGTERM and SIGKILL.
//! Supported handlers: `sleep` (Kubernetes 1.30+), `httpGet` and `exec` (run as a host process
//! with the container's environment). postStart and `stopSignal` are not supported.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Probe};

use super::probe;

/// The kubelet's minimumGracePeriodInSeconds: SIGTERM always comes this long before SIGKILL.
const MINIMUM_GRACE: Duration = Duration::from_secs(2);

/// A container's preStop hook, resolved against the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreStop {
    Sleep(Duration),
    /// httpGet or exec, run like a probe of the same handler.
    Handler(probe::Check),
}

/// The container's preStop hook, if it has one; Err for a handler that cannot run here.
pub fn pre_stop(
    container: &Container,
    pod_ip: IpAddr,
    exec_argv: impl Fn(&[String]) -> Vec<String>,
) -> Result<Option<PreStop>, String> {
    let Some(handler) = container.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()) else {
        return Ok(None);
    };
    if let Some(sleep) = &handler.sleep {
        return Ok(Some(PreStop::Sleep(Duration::from_secs(sleep.seconds.max(0) as u64))));
    }
    // httpGet and exec mean the same as in a probe; tcpSocket is not a lifecycle handler.
    let as_probe = Probe { http_get: handler.http_get.clone(), exec: handler.exec.clone(), ..Default::default() };
    probe::check(&as_probe, container, pod_ip, exec_argv)
        .map(|check| Some(PreStop::Handler(check)))
        .map_err(|e| format!("preStop hook: {e}"))
}

/// Runs the hook, bounded by `grace`; returns the grace period left for SIGTERM to SIGKILL.
/// A failing hook does not stop the container from being stopped (as on the kubelet).
pub async fn run_pre_stop(hook: &PreStop, grace: Duration, env: &[(String, String)]) -> Duration {
    let started = Instant::now();
    match hook {
        PreStop::Sleep(d) => tokio::time::sleep((*d).min(grace)).await,
        PreStop::Handler(check) => {
            if let Err(e) = probe::run(check, grace.max(Duration::from_millis(1)), env).await {
                tracing::info!(error = %e, "preStop hook failed");
            }
        }
    }
    grace.saturating_sub(started.elapsed()).max(MINIMUM_GRACE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{HTTPGetAction, Lifecycle, LifecycleHandler, SleepAction};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn container(handler: LifecycleHandler) -> Container {
        Container {
            name: "c".into(),
            lifecycle: Some(Lifecycle { pre_stop: Some(handler), ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn resolves_sleep_and_http_hooks() {
        let ip: IpAddr = "127.0.1.9".parse().unwrap();
        let none = Container { name: "c".into(), ..Default::default() };
        assert_eq!(pre_stop(&none, ip, |a| a.to_vec()), Ok(None));
        let sleep = container(LifecycleHandler { sleep: Some(SleepAction { seconds: 3 }), ..Default::default() });
        assert_eq!(pre_stop(&sleep, ip, |a| a.to_vec()), Ok(Some(PreStop::Sleep(Duration::from_secs(3)))));
        let http = container(LifecycleHandler {
            http_get: Some(HTTPGetAction {
                path: Some("/drain".into()),
                port: IntOrString::Int(80),
                ..Default::default()
            }),
            ..Default::default()
        });
        let expected = probe::Check::Http { host: ip, port: 80, path: "/drain".into(), headers: vec![] };
        assert_eq!(pre_stop(&http, ip, |a| a.to_vec()), Ok(Some(PreStop::Handler(expected))));
        assert!(pre_stop(&container(LifecycleHandler::default()), ip, |a| a.to_vec()).is_err());
    }

    #[tokio::test]
    async fn the_hook_spends_the_grace_period_but_leaves_two_seconds() {
        let short = PreStop::Sleep(Duration::from_millis(50));
        let left = run_pre_stop(&short, Duration::from_secs(10), &[]).await;
        assert!(left <= Duration::from_millis(9950) && left > Duration::from_secs(9), "{left:?}");
        let long = PreStop::Sleep(Duration::from_secs(30));
        let started = Instant::now();
        assert_eq!(run_pre_stop(&long, Duration::from_millis(100), &[]).await, MINIMUM_GRACE);
        assert!(started.elapsed() < Duration::from_secs(2), "the hook is cut at the grace period");
    }
}
