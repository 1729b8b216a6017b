//! Readiness and liveness probes: httpGet (a minimal HTTP/1.1 GET), tcpSocket and exec.

use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How to check, resolved against the pod (port names, host, the container's env for exec).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Http { host: IpAddr, port: u16, path: String, headers: Vec<(String, String)> },
    Tcp { host: IpAddr, port: u16 },
    Exec { argv: Vec<String> },
}

/// Timing of a probe with the Kubernetes defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

fn secs(v: Option<i32>, default: i32, min: i32) -> Duration {
    Duration::from_secs(v.unwrap_or(default).max(min) as u64)
}

pub fn timing(probe: &Probe) -> Timing {
    Timing {
        initial_delay: secs(probe.initial_delay_seconds, 0, 0),
        period: secs(probe.period_seconds, 10, 1),
        timeout: secs(probe.timeout_seconds, 1, 1),
        success_threshold: probe.success_threshold.unwrap_or(1).max(1) as u32,
        failure_threshold: probe.failure_threshold.unwrap_or(3).max(1) as u32,
    }
}

/// Resolves a probe port: a number, or the name of one of the container's ports.
pub fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, String> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).map_err(|_| format!("invalid port {n}")),
        IntOrString::String(name) => {
            if let Ok(n) = name.parse::<u16>() {
                return Ok(n);
            }
            container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok())
                .ok_or_else(|| format!("port {name:?} is not a named port of the container"))
        }
    }
}

/// Builds the check of a probe; `exec_argv` maps an exec command to the host (path rewriting).
pub fn check(
    probe: &Probe,
    container: &Container,
    pod_ip: IpAddr,
    exec_argv: impl Fn(&[String]) -> Vec<String>,
) -> Result<Check, String> {
    if let Some(http) = &probe.http_get {
        if http.scheme.as_deref().is_some_and(|s| s != "HTTP") {
            return Err("only HTTP httpGet probes are supported".into());
        }
        let host = match http.host.as_deref() {
            Some(h) if !h.is_empty() => h.parse().map_err(|_| format!("invalid host {h:?}"))?,
            _ => pod_ip,
        };
        let path = http.path.clone().unwrap_or_else(|| "/".into());
        let path = if path.starts_with('/') { path } else { format!("/{path}") };
        return Ok(Check::Http {
            host,
            port: resolve_port(&http.port, container)?,
            path,
            headers: http.http_headers.iter().flatten().map(|h| (h.name.clone(), h.value.clone())).collect(),
        });
    }
    if let Some(tcp) = &probe.tcp_socket {
        let host = match tcp.host.as_deref() {
            Some(h) if !h.is_empty() => h.parse().map_err(|_| format!("invalid host {h:?}"))?,
            _ => pod_ip,
        };
        return Ok(Check::Tcp { host, port: resolve_port(&tcp.port, container)? });
    }
    if let Some(exec) = &probe.exec {
        let argv = exec_argv(exec.command.as_deref().unwrap_or_default());
        if argv.is_empty() {
            return Err("exec probe without a command".into());
        }
        return Ok(Check::Exec { argv });
    }
    Err("probe has no supported handler (httpGet, tcpSocket or exec)".into())
}

/// Parses the status code of an HTTP/1.x status line.
pub fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    let version = parts.next()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    parts.next()?.parse().ok()
}

async fn http_get(host: IpAddr, port: u16, path: &str, headers: &[(String, String)]) -> Result<u16, String> {
    let mut stream = TcpStream::connect((host, port)).await.map_err(|e| e.to_string())?;
    let has_host = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host"));
    let mut req = format!("GET {path} HTTP/1.1\r\n");
    if !has_host {
        req.push_str(&format!("Host: {host}:{port}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("User-Agent: kube-probe/1.32\r\nAccept: */*\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.contains(&b'\n') && head.len() < 8192 {
        let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    status_code(&head).ok_or_else(|| "malformed HTTP response".to_string())
}

/// Runs a check once; Ok on success, Err with the failure's reason.
pub async fn run(check: &Check, timeout: Duration, env: &[(String, String)]) -> Result<(), String> {
    let attempt = async {
        match check {
            Check::Http { host, port, path, headers } => {
                let code = http_get(*host, *port, path, headers).await?;
                if (200..400).contains(&code) {
                    Ok(())
                } else {
                    Err(format!("HTTP probe failed with statuscode: {code}"))
                }
            }
            Check::Tcp { host, port } => {
                TcpStream::connect((*host, *port)).await.map(|_| ()).map_err(|e| e.to_string())
            }
            Check::Exec { argv } => {
                let status = tokio::process::Command::new(&argv[0])
                    .args(&argv[1..])
                    .env_clear()
                    .envs(env.iter().map(|(k, v)| (k, v)))
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .kill_on_drop(true)
                    .status()
                    .await
                    .map_err(|e| e.to_string())?;
                if status.success() { Ok(()) } else { Err(format!("command exited with {status}")) }
            }
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!("probe timed out after {timeout:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerPort, HTTPGetAction};

    #[test]
    fn resolves_ports_and_status_lines() {
        let c = Container {
            name: "c".into(),
            ports: Some(vec![ContainerPort { name: Some("http".into()), container_port: 8080, ..Default::default() }]),
            ..Default::default()
        };
        assert_eq!(resolve_port(&IntOrString::String("http".into()), &c), Ok(8080));
        assert_eq!(resolve_port(&IntOrString::Int(81), &c), Ok(81));
        assert!(resolve_port(&IntOrString::String("grpc".into()), &c).is_err());
        assert!(resolve_port(&IntOrString::Int(70000), &c).is_err());
        assert_eq!(status_code(b"HTTP/1.0 204 No Content\r\n"), Some(204));
        assert_eq!(status_code(b"garbage"), None);

        let probe = Probe {
            http_get: Some(HTTPGetAction {
                port: IntOrString::String("http".into()),
                path: Some("healthz".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let ip: IpAddr = "127.0.9.9".parse().unwrap();
        assert_eq!(
            check(&probe, &c, ip, |a| a.to_vec()),
            Ok(Check::Http { host: ip, port: 8080, path: "/healthz".into(), headers: vec![] })
        );
        assert!(check(&Probe::default(), &c, ip, |a| a.to_vec()).is_err());
        assert_eq!(timing(&probe).period, Duration::from_secs(10));
    }

    #[tokio::test]
    async fn http_probe_against_a_tiny_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            for code in [200, 503] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n").as_bytes()).await;
            }
        });
        let check = Check::Http { host: "127.0.0.1".parse().unwrap(), port, path: "/".into(), headers: vec![] };
        assert_eq!(run(&check, Duration::from_secs(5), &[]).await, Ok(()));
        assert!(run(&check, Duration::from_secs(5), &[]).await.is_err());
    }
}
