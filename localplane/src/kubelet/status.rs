//! What the kubelet knows about a pod's containers, and the PodStatus it reports from it.

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, HostIP,
    PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// One run state of a container.
#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: Timestamp,
    },
    Terminated {
        exit_code: i32,
        reason: String,
        message: Option<String>,
        started_at: Option<Timestamp>,
        finished_at: Timestamp,
    },
}

impl RunState {
    pub fn waiting(reason: &str, message: Option<String>) -> RunState {
        RunState::Waiting { reason: reason.to_string(), message }
    }

    fn to_k8s(&self) -> ContainerState {
        match self {
            RunState::Waiting { reason, message } => ContainerState {
                waiting: Some(ContainerStateWaiting { reason: Some(reason.clone()), message: message.clone() }),
                ..Default::default()
            },
            RunState::Running { started_at } => ContainerState {
                running: Some(ContainerStateRunning { started_at: Some(Time(*started_at)) }),
                ..Default::default()
            },
            RunState::Terminated { exit_code, reason, message, started_at, finished_at } => ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: *exit_code,
                    reason: Some(reason.clone()),
                    message: message.clone().filter(|m| !m.is_empty()),
                    started_at: started_at.map(Time),
                    finished_at: Some(Time(*finished_at)),
                    ..Default::default()
                }),
                ..Default::default()
            },
        }
    }
}

/// The kubelet's record of one container.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerRecord {
    pub name: String,
    pub image: String,
    pub state: RunState,
    pub last_state: Option<RunState>,
    pub restart_count: i32,
    pub ready: bool,
    /// Whether it ever got running (a pod is Pending until all containers have).
    pub ever_started: bool,
    /// No further restart will happen: its last termination is final.
    pub finished: bool,
    pub container_id: Option<String>,
}

impl ContainerRecord {
    pub fn new(name: &str, image: &str) -> ContainerRecord {
        ContainerRecord {
            name: name.to_string(),
            image: image.to_string(),
            state: RunState::waiting("ContainerCreating", None),
            last_state: None,
            restart_count: 0,
            ready: false,
            ever_started: false,
            finished: false,
            container_id: None,
        }
    }

    fn succeeded(&self) -> bool {
        matches!(self.state, RunState::Terminated { exit_code: 0, .. })
    }

    fn to_k8s(&self) -> ContainerStatus {
        ContainerStatus {
            name: self.name.clone(),
            image: self.image.clone(),
            image_id: String::new(),
            container_id: self.container_id.clone(),
            ready: self.ready,
            started: Some(matches!(self.state, RunState::Running { .. })),
            restart_count: self.restart_count,
            state: Some(self.state.to_k8s()),
            last_state: Some(self.last_state.as_ref().map(RunState::to_k8s).unwrap_or_default()),
            ..Default::default()
        }
    }
}

/// The kubelet's record of a pod.
#[derive(Debug, Clone, PartialEq)]
pub struct PodRecord {
    pub init: Vec<ContainerRecord>,
    pub containers: Vec<ContainerRecord>,
    pub initialized: bool,
    pub pod_ip: String,
    pub start_time: Timestamp,
    /// A failure of the whole pod (reason, message), e.g. an init container that failed.
    pub failure: Option<(String, String)>,
}

/// The pod phase the record implies.
pub fn phase(rec: &PodRecord) -> &'static str {
    if rec.failure.is_some() {
        return "Failed";
    }
    if !rec.initialized {
        return "Pending";
    }
    if !rec.containers.is_empty() && rec.containers.iter().all(|c| c.finished) {
        return if rec.containers.iter().all(ContainerRecord::succeeded) { "Succeeded" } else { "Failed" };
    }
    if rec.containers.iter().any(|c| !c.ever_started) {
        return "Pending";
    }
    "Running"
}

fn condition(
    previous: &[PodCondition],
    type_: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    now: Timestamp,
) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let since = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    PodCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.map(str::to_string),
        message,
        last_transition_time: Some(since),
        ..Default::default()
    }
}

/// The condition types the kubelet writes; every other condition belongs to another client
/// (readiness gates) and is left as it is.
pub const KUBELET_CONDITIONS: [&str; 4] = ["PodScheduled", "Initialized", "ContainersReady", "Ready"];

/// Why the readiness gates hold a pod back, worded as the kubelet words it
/// (pkg/kubelet/status/generate.go); None when every gate's condition is True.
fn gates_not_ready(gates: &[String], observed: &[PodCondition]) -> Option<String> {
    let messages: Vec<String> = gates
        .iter()
        .filter_map(|gate| match observed.iter().find(|c| &c.type_ == gate) {
            None => Some(format!("corresponding condition of pod readiness gate {gate:?} does not exist.")),
            Some(c) if c.status != "True" => {
                Some(format!("the status of pod readiness gate {gate:?} is not \"True\", but {}", c.status))
            }
            Some(_) => None,
        })
        .collect();
    (!messages.is_empty()).then(|| messages.join(", "))
}

/// The PodStatus of a record; `previous` conditions keep their lastTransitionTime while their
/// status does not change, so an unchanged pod produces an identical status (and no write).
/// `observed` are the pod's conditions as the server has them (other clients write the
/// readiness gates' conditions there); Ready needs ready containers and every gate True.
pub fn pod_status(
    rec: &PodRecord,
    previous: &[PodCondition],
    gates: &[String],
    observed: &[PodCondition],
    now: Timestamp,
) -> PodStatus {
    let phase = phase(rec);
    let terminal = phase == "Succeeded" || phase == "Failed";
    let unready: Vec<&str> = rec.containers.iter().filter(|c| !c.ready).map(|c| c.name.as_str()).collect();
    let all_ready = unready.is_empty() && !terminal;
    let (ready_reason, ready_message) = if terminal {
        (Some("PodCompleted"), None)
    } else if all_ready {
        (None, None)
    } else {
        (Some("ContainersNotReady"), Some(format!("containers with unready status: [{}]", unready.join(" "))))
    };
    let uninitialized: Vec<&str> = rec.init.iter().filter(|c| !c.succeeded()).map(|c| c.name.as_str()).collect();
    let (init_reason, init_message) = if rec.initialized {
        (terminal.then_some("PodCompleted"), None)
    } else {
        (
            Some("ContainersNotInitialized"),
            Some(format!("containers with incomplete status: [{}]", uninitialized.join(" "))),
        )
    };
    // As the kubelet: containers not ready (or finished) decide first, then the gates.
    let gates_message = if all_ready { gates_not_ready(gates, observed) } else { None };
    let pod_ready = all_ready && gates_message.is_none();
    let (pod_ready_reason, pod_ready_message) = match gates_message {
        Some(m) => (Some("ReadinessGatesNotReady"), Some(m)),
        None => (ready_reason, ready_message.clone()),
    };
    let conditions = vec![
        condition(previous, "PodScheduled", true, None, None, now),
        condition(previous, "Initialized", rec.initialized, init_reason, init_message, now),
        condition(previous, "ContainersReady", all_ready, ready_reason, ready_message, now),
        condition(previous, "Ready", pod_ready, pod_ready_reason, pod_ready_message, now),
    ];
    let (reason, message) = match &rec.failure {
        Some((r, m)) => (Some(r.clone()), Some(m.clone())),
        None => (None, None),
    };
    PodStatus {
        phase: Some(phase.to_string()),
        conditions: Some(conditions),
        host_ip: Some(super::HOST_IP.to_string()),
        host_ips: Some(vec![HostIP { ip: super::HOST_IP.to_string() }]),
        pod_ip: Some(rec.pod_ip.clone()).filter(|ip| !ip.is_empty()),
        pod_ips: Some(vec![PodIP { ip: rec.pod_ip.clone() }]).filter(|_| !rec.pod_ip.is_empty()),
        start_time: Some(Time(rec.start_time)),
        container_statuses: Some(rec.containers.iter().map(ContainerRecord::to_k8s).collect()),
        init_container_statuses: Some(rec.init.iter().map(ContainerRecord::to_k8s).collect())
            .filter(|v: &Vec<ContainerStatus>| !v.is_empty()),
        qos_class: Some("BestEffort".to_string()),
        reason,
        message,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> PodRecord {
        PodRecord {
            init: vec![],
            containers: vec![ContainerRecord::new("a", "img"), ContainerRecord::new("b", "img")],
            initialized: true,
            pod_ip: "127.0.1.2".into(),
            start_time: Timestamp::UNIX_EPOCH,
            failure: None,
        }
    }

    fn terminate(c: &mut ContainerRecord, code: i32) {
        c.ever_started = true;
        c.finished = true;
        c.state = RunState::Terminated {
            exit_code: code,
            reason: if code == 0 { "Completed" } else { "Error" }.into(),
            message: Some("msg".into()),
            started_at: None,
            finished_at: Timestamp::UNIX_EPOCH,
        };
    }

    #[test]
    fn phases_follow_container_states() {
        let mut rec = record();
        assert_eq!(phase(&rec), "Pending");
        rec.containers[0].ever_started = true;
        rec.containers[0].state = RunState::Running { started_at: Timestamp::UNIX_EPOCH };
        assert_eq!(phase(&rec), "Pending");
        rec.containers[1].ever_started = true;
        assert_eq!(phase(&rec), "Running");
        terminate(&mut rec.containers[0], 0);
        assert_eq!(phase(&rec), "Running");
        terminate(&mut rec.containers[1], 0);
        assert_eq!(phase(&rec), "Succeeded");
        terminate(&mut rec.containers[1], 2);
        assert_eq!(phase(&rec), "Failed");
        let mut rec = record();
        rec.initialized = false;
        assert_eq!(phase(&rec), "Pending");
        rec.failure = Some(("InitFailed".into(), "x".into()));
        assert_eq!(phase(&rec), "Failed");
    }

    #[test]
    fn conditions_keep_transition_times_and_report_readiness() {
        let mut rec = record();
        for c in &mut rec.containers {
            c.ever_started = true;
            c.state = RunState::Running { started_at: Timestamp::UNIX_EPOCH };
        }
        rec.containers[0].ready = true;
        let t1 = Timestamp::from_second(100).unwrap();
        let s1 = pod_status(&rec, &[], &[], &[], t1);
        let ready = |s: &PodStatus| s.conditions.iter().flatten().find(|c| c.type_ == "Ready").cloned().unwrap();
        assert_eq!(ready(&s1).status, "False");
        assert_eq!(ready(&s1).message.as_deref(), Some("containers with unready status: [b]"));
        let t2 = Timestamp::from_second(200).unwrap();
        let s2 = pod_status(&rec, s1.conditions.as_deref().unwrap(), &[], &[], t2);
        assert_eq!(s1, s2, "nothing changed, so nothing to write");
        rec.containers[1].ready = true;
        let s3 = pod_status(&rec, s2.conditions.as_deref().unwrap(), &[], &[], t2);
        assert_eq!(ready(&s3).status, "True");
        assert_eq!(ready(&s3).last_transition_time, Some(Time(t2)));
        let cs = s3.container_statuses.unwrap();
        assert!(cs[0].state.as_ref().unwrap().running.is_some());
        terminate(&mut rec.containers[0], 1);
        terminate(&mut rec.containers[1], 0);
        let s4 = pod_status(&rec, &[], &[], &[], t2);
        assert_eq!(s4.phase.as_deref(), Some("Failed"));
        assert_eq!(ready(&s4).reason.as_deref(), Some("PodCompleted"));
        let term = s4.container_statuses.unwrap()[0].state.clone().unwrap().terminated.unwrap();
        assert_eq!((term.exit_code, term.reason.as_deref()), (1, Some("Error")));
    }

    #[test]
    fn readiness_gates_hold_ready_back_until_their_conditions_are_true() {
        let mut rec = record();
        for c in &mut rec.containers {
            c.ever_started = true;
            c.ready = true;
            c.state = RunState::Running { started_at: Timestamp::UNIX_EPOCH };
        }
        let now = Timestamp::UNIX_EPOCH;
        let gates = vec!["example.com/a".to_string(), "example.com/b".to_string()];
        let cond = |type_: &str, status: &str| PodCondition {
            type_: type_.into(),
            status: status.into(),
            ..Default::default()
        };
        let get = |s: &PodStatus, t: &str| s.conditions.iter().flatten().find(|c| c.type_ == t).cloned().unwrap();
        let s = pod_status(&rec, &[], &gates, &[cond("example.com/b", "False")], now);
        assert_eq!(get(&s, "ContainersReady").status, "True");
        let ready = get(&s, "Ready");
        assert_eq!((ready.status.as_str(), ready.reason.as_deref()), ("False", Some("ReadinessGatesNotReady")));
        assert_eq!(
            ready.message.as_deref(),
            Some(
                "corresponding condition of pod readiness gate \"example.com/a\" does not exist., \
                 the status of pod readiness gate \"example.com/b\" is not \"True\", but False"
            )
        );
        let both = [cond("example.com/a", "True"), cond("example.com/b", "True")];
        let s = pod_status(&rec, &[], &gates, &both, now);
        assert_eq!((get(&s, "Ready").status.as_str(), get(&s, "Ready").reason), ("True", None));
        // Unready containers speak first, as on the kubelet.
        rec.containers[0].ready = false;
        let s = pod_status(&rec, &[], &gates, &[], now);
        assert_eq!(get(&s, "Ready").reason.as_deref(), Some("ContainersNotReady"));
    }
}
