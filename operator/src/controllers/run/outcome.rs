//! Pure: what the Job and its pods say about a run, including the trainer's result.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

// Kubernetes keeps at most TERMINATION_MESSAGE_LIMIT bytes of a termination message (the last ones).
pub use crate::artifact::TERMINATION_MESSAGE_LIMIT;
use crate::artifact::{TrainerResult, is_sha256_digest};

use super::build::CONTAINER;

/// What the Job says.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// No Job yet, or its pod has not started.
    Pending,
    /// The pod cannot start (bad image, missing ConfigMap or Secret): `reason` is the
    /// kubelet's, e.g. `ErrImagePull`.
    Blocked { reason: String, message: String },
    /// The trainer is running.
    Running { started: Option<Timestamp> },
    /// The trainer exited 0 and reported a valid result.
    Succeeded { started: Option<Timestamp>, finished: Option<Timestamp>, result: TrainerResult },
    /// The Job failed, or the trainer's result is missing or malformed.
    Failed { finished: Option<Timestamp>, reason: &'static str, message: String },
}

/// Judge a Job; `pods` are the Job's pods, `logs` the tail of the succeeded pod's log, fetched
/// only when its termination message is empty.
pub fn observe(job: Option<&Job>, pods: &[Pod], logs: Option<&str>) -> Outcome {
    let Some(job) = job else { return Outcome::Pending };
    let status = job.status.clone().unwrap_or_default();
    let started = status.start_time.map(|t| t.0);
    let finished = status.completion_time.map(|t| t.0);
    let condition =
        |type_: &str| status.conditions.iter().flatten().find(|c| c.type_ == type_ && c.status == "True").cloned();
    if let Some(failed) = condition("Failed") {
        let finished = failed.last_transition_time.map(|t| t.0).or(finished);
        let cause =
            newest_terminated(pods, false).map(|message| format!(": {}", last_lines(&message, 10))).unwrap_or_default();
        let reason = failed.reason.unwrap_or_else(|| "JobFailed".into());
        return Outcome::Failed {
            finished,
            reason: "JobFailed",
            message: format!("the training Job failed ({reason}){cause}"),
        };
    }
    if condition("Complete").is_none() {
        if let Some((reason, message)) = blocked(pods) {
            return Outcome::Blocked { reason, message };
        }
        let running = status.active.unwrap_or(0) > 0 || started.is_some();
        return if running { Outcome::Running { started } } else { Outcome::Pending };
    }
    // The Job keeps its pods until the run controller has read the result and deletes them, so
    // a complete Job without its pod means someone else removed it before the result was read.
    let Some(message) = newest_terminated(pods, true) else {
        return Outcome::Failed {
            finished,
            reason: "ResultLost",
            message: "the training Job completed, but its pod was deleted before the operator read the result \
                      (the trainer itself succeeded); start a new run to train again"
                .into(),
        };
    };
    if message.trim().is_empty() {
        let tail = logs.map(|l| format!("; last log lines:\n{}", last_lines(l, 10))).unwrap_or_default();
        return Outcome::Failed {
            finished,
            reason: "NoResult",
            message: format!("the trainer exited 0 but wrote no result to /dev/termination-log{tail}"),
        };
    }
    if message.len() >= TERMINATION_MESSAGE_LIMIT && TrainerResult::parse(&message).is_err() {
        return Outcome::Failed {
            finished,
            reason: "ResultTooLarge",
            message: format!(
                "the trainer's result was cut: a termination message holds at most {TERMINATION_MESSAGE_LIMIT} \
                 bytes; report fewer metrics and keep large data in the artifact"
            ),
        };
    }
    match parse_result(&message) {
        Ok(result) => Outcome::Succeeded { started, finished, result },
        Err(problem) => Outcome::Failed {
            finished,
            reason: "MalformedResult",
            message: format!("the trainer's result is malformed: {problem}; it wrote: {}", excerpt(&message, &problem)),
        },
    }
}

/// The part of `message` a parse error points at (`... column N`), else its start.
fn excerpt(message: &str, problem: &str) -> String {
    const WIDTH: usize = 300;
    let column = problem.rsplit_once("column ").and_then(|(_, n)| n.trim().parse::<usize>().ok()).unwrap_or(1);
    let chars: Vec<char> = message.trim().chars().collect();
    let start = column.saturating_sub(WIDTH / 2).min(chars.len().saturating_sub(WIDTH));
    let end = (start + WIDTH).min(chars.len());
    let (before, after) = (if start > 0 { "..." } else { "" }, if end < chars.len() { "..." } else { "" });
    format!("{before}{}{after}", chars[start..end].iter().collect::<String>())
}

/// How long a trainer may take to start when the run does not say.
pub const DEFAULT_START_TIMEOUT_SECONDS: i64 = 600;

/// A run whose trainer has not started `timeout` seconds after the run was created fails, with
/// the reason it could not start; `None` while it may still start (or has started).
pub fn start_timed_out(outcome: &Outcome, created: Timestamp, now: Timestamp, timeout: i64) -> Option<Outcome> {
    let why = match outcome {
        Outcome::Blocked { message, .. } => message.clone(),
        Outcome::Pending => "its pod never started".to_string(),
        _ => return None,
    };
    if (now - created).get_seconds() < timeout {
        return None;
    }
    Some(Outcome::Failed {
        finished: Some(now),
        reason: "StartTimeout",
        message: format!("the trainer did not start within {timeout}s (startTimeoutSeconds): {why}"),
    })
}

/// Waiting reasons that will not resolve by themselves.
const BLOCKING: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// Why the trainer container cannot start, if it cannot.
fn blocked(pods: &[Pod]) -> Option<(String, String)> {
    pods.iter().find_map(|pod| {
        let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
        let waiting = statuses.iter().find(|c| c.name == CONTAINER)?.state.as_ref()?.waiting.as_ref()?;
        let reason = waiting.reason.clone().filter(|r| BLOCKING.contains(&r.as_str()))?;
        let detail = waiting.message.clone().unwrap_or_default();
        Some((reason.clone(), format!("the trainer cannot start: {reason}: {detail}")))
    })
}

/// Parse and check the trainer's result JSON.
pub fn parse_result(message: &str) -> Result<TrainerResult, String> {
    let result = TrainerResult::parse(message).map_err(|e| e.to_string())?;
    if let Some((name, value)) = result.metrics.iter().find(|(_, v)| !v.is_finite()) {
        return Err(format!("metric {name} is {value}, not a finite number"));
    }
    if result.artifact.uri.trim().is_empty() {
        return Err("artifact.uri is empty".into());
    }
    for (field, digest) in [("artifact.digest", &result.artifact.digest), ("dataDigest", &result.data_digest)] {
        if !is_sha256_digest(digest) {
            return Err(format!("{field} {digest:?} is not sha256:<64 hex digits>"));
        }
    }
    if result.profile.trim().is_empty() {
        return Err("profile is empty".into());
    }
    Ok(result)
}

/// Whether `pods` show how the finished `job` ended: a trainer that exited 0 for a complete Job,
/// one that failed for a failed Job. Pods read from a cache may not yet.
pub fn pods_show_end(job: &Job, pods: &[Pod]) -> bool {
    let complete = job
        .status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .any(|c| c.type_ == "Complete" && c.status == "True");
    newest_terminated(pods, complete).is_some()
}

/// The termination message of the trainer container in the newest pod that exited
/// successfully (`succeeded`) or not.
fn newest_terminated(pods: &[Pod], succeeded: bool) -> Option<String> {
    pods.iter()
        .filter_map(|pod| {
            let status = pod.status.as_ref()?;
            let container = status.container_statuses.iter().flatten().find(|c| c.name == CONTAINER)?;
            let terminated = container.state.as_ref()?.terminated.as_ref()?;
            if (terminated.exit_code == 0) != succeeded {
                return None;
            }
            let at = terminated.finished_at.clone().map(|t| t.0);
            Some((at, terminated.message.clone().unwrap_or_default()))
        })
        .max_by_key(|(at, _)| *at)
        .map(|(_, message)| message)
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    truncate(&lines[lines.len().saturating_sub(n)..].join("\n"), 800)
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let tail: String = text.chars().rev().take(max).collect::<Vec<_>>().into_iter().rev().collect();
    format!("...{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
    use k8s_openapi::api::core::v1::{ContainerState, ContainerStateTerminated, ContainerStatus, PodStatus};

    const GOOD: &str = r#"{"metrics":{"auc":0.93},"artifact":{"uri":"file:///a/model.json","digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},"dataDigest":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","profile":"file:///a/profile.json"}"#;

    fn job_with(condition: &str, reason: &str) -> Job {
        Job {
            status: Some(JobStatus {
                conditions: Some(vec![JobCondition {
                    type_: condition.into(),
                    status: "True".into(),
                    reason: Some(reason.into()),
                    ..JobCondition::default()
                }]),
                ..JobStatus::default()
            }),
            ..Job::default()
        }
    }

    fn pod(exit_code: i32, message: &str) -> Pod {
        Pod {
            status: Some(PodStatus {
                container_statuses: Some(vec![ContainerStatus {
                    name: CONTAINER.into(),
                    state: Some(ContainerState {
                        terminated: Some(ContainerStateTerminated {
                            exit_code,
                            message: Some(message.into()),
                            ..ContainerStateTerminated::default()
                        }),
                        ..ContainerState::default()
                    }),
                    ..ContainerStatus::default()
                }]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    #[test]
    fn a_complete_job_with_a_valid_result_succeeds() {
        let outcome = observe(Some(&job_with("Complete", "")), &[pod(0, GOOD)], None);
        let Outcome::Succeeded { result, .. } = outcome else { panic!("{outcome:?}") };
        assert_eq!(result.metrics["auc"], 0.93);
    }

    #[test]
    fn a_malformed_result_fails_quoting_it() {
        let outcome = observe(Some(&job_with("Complete", "")), &[pod(0, r#"{"metrics":{"auc":"high"}}"#)], None);
        let Outcome::Failed { reason, message, .. } = outcome else { panic!("{outcome:?}") };
        assert_eq!(reason, "MalformedResult");
        assert!(message.contains(r#""auc":"high""#), "{message}");
    }

    #[test]
    fn a_parse_error_quotes_the_part_of_the_result_it_points_at() {
        let padding = format!(r#""notes":"{}""#, "x".repeat(400));
        let result = format!(r#"{{{padding},"metrics":{{"auc":NaN}}}}"#);
        let outcome = observe(Some(&job_with("Complete", "")), &[pod(0, &result)], None);
        let Outcome::Failed { reason, message, .. } = outcome else { panic!("{outcome:?}") };
        assert_eq!(reason, "MalformedResult");
        assert!(message.contains(r#""auc":NaN"#), "{message}");
    }

    #[test]
    fn a_result_cut_at_the_termination_message_limit_says_so() {
        let cut = format!(r#"0.5,"m{}":0.5}}}}"#, "x".repeat(TERMINATION_MESSAGE_LIMIT));
        let cut = &cut[cut.len() - TERMINATION_MESSAGE_LIMIT..];
        let outcome = observe(Some(&job_with("Complete", "")), &[pod(0, cut)], None);
        let Outcome::Failed { reason, message, .. } = outcome else { panic!("{outcome:?}") };
        assert_eq!(reason, "ResultTooLarge");
        assert!(message.contains("at most 4096 bytes"), "{message}");
    }

    #[test]
    fn a_bad_digest_is_named() {
        let bad = GOOD.replace("sha256:bbbb", "md5:bbbb");
        let error = parse_result(&bad).unwrap_err();
        assert!(error.starts_with("dataDigest"), "{error}");
    }

    #[test]
    fn an_empty_message_fails_with_the_last_log_lines() {
        let outcome = observe(Some(&job_with("Complete", "")), &[pod(0, "")], Some("loading\nsaved model\n"));
        let Outcome::Failed { reason, message, .. } = outcome else { panic!("{outcome:?}") };
        assert_eq!(reason, "NoResult");
        assert!(message.contains("saved model"), "{message}");
    }

    #[test]
    fn a_failed_job_quotes_the_trainer() {
        let outcome = observe(
            Some(&job_with("Failed", "BackoffLimitExceeded")),
            &[pod(1, "column age missing in rows 3, 7")],
            None,
        );
        let Outcome::Failed { message, .. } = outcome else { panic!("{outcome:?}") };
        assert!(message.contains("BackoffLimitExceeded") && message.contains("column age missing"), "{message}");
    }

    #[test]
    fn a_pod_that_cannot_pull_its_image_blocks_the_run() {
        use k8s_openapi::api::core::v1::ContainerStateWaiting;
        let mut stuck = pod(0, "");
        let status = &mut stuck.status.as_mut().unwrap().container_statuses.as_mut().unwrap()[0];
        status.state = Some(ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some("ErrImagePull".into()),
                message: Some("image \"nope:1\" not found".into()),
            }),
            ..ContainerState::default()
        });
        let running = Job { status: Some(JobStatus { active: Some(1), ..JobStatus::default() }), ..Job::default() };
        let Outcome::Blocked { reason, message } = observe(Some(&running), &[stuck], None) else { panic!() };
        assert_eq!(reason, "ErrImagePull");
        assert!(message.contains("nope:1"), "{message}");
    }

    #[test]
    fn a_complete_job_whose_pod_is_gone_lost_its_result_and_says_so() {
        let outcome = observe(Some(&job_with("Complete", "")), &[], None);
        let Outcome::Failed { reason, message, .. } = outcome else { panic!("{outcome:?}") };
        assert_eq!(reason, "ResultLost");
        assert!(message.contains("pod was deleted before the operator read the result"), "{message}");
    }

    #[test]
    fn a_trainer_that_cannot_start_fails_once_its_start_timeout_passed() {
        let created = Timestamp::from_second(1_800_000_000).unwrap();
        let later = |seconds: i64| Timestamp::from_second(1_800_000_000 + seconds).unwrap();
        let blocked = Outcome::Blocked { reason: "ErrImagePull".into(), message: "image nope:1 not found".into() };
        assert_eq!(start_timed_out(&blocked, created, later(59), 60), None);
        let Some(Outcome::Failed { reason, message, .. }) = start_timed_out(&blocked, created, later(60), 60) else {
            panic!()
        };
        assert_eq!(reason, "StartTimeout");
        assert!(message.contains("within 60s") && message.contains("nope:1"), "{message}");
        let running = Outcome::Running { started: Some(created) };
        assert_eq!(start_timed_out(&running, created, later(9999), 60), None, "a started trainer has no start limit");
    }

    #[test]
    fn pods_show_how_a_job_ended_only_with_a_trainer_that_ended_that_way() {
        let (complete, failed) = (job_with("Complete", ""), job_with("Failed", "BackoffLimitExceeded"));
        assert!(pods_show_end(&complete, &[pod(1, "crash"), pod(0, GOOD)]));
        assert!(!pods_show_end(&complete, &[pod(1, "an earlier attempt")]), "the pod that succeeded is not cached yet");
        assert!(pods_show_end(&failed, &[pod(1, "crash")]));
        assert!(!pods_show_end(&complete, &[]));
    }

    #[test]
    fn no_job_is_pending() {
        assert_eq!(observe(None, &[], None), Outcome::Pending);
    }
}
