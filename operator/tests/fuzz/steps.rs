//! Every pure step the controllers run on an accepted resource, as they run it. A step that
//! panics fails the test by itself; a step that reports a problem must name the field; and what
//! the operator would create from the resource must be something the API server accepts (else
//! the resource was accepted although it cannot work). Each function returns those findings.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus};
use k8s_openapi::api::core::v1::{ContainerState, ContainerStateTerminated, ContainerStatus, Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use trainloop::api::{
    Evaluation, EvaluationResult, GateOutcome, RunPhase, TrainingPipeline, TrainingRun, TrainingRunStatus,
};
use trainloop::controllers::pipeline::{data_target, history, plan, resolve};
use trainloop::controllers::run::gates::{self, Champion};
use trainloop::controllers::run::{build, outcome, status};
use trainloop::triggers::CronSchedule;

use crate::support::{is_label_value, is_subdomain, server_problems};

const NOW: Timestamp = Timestamp::constant(1_800_000_000, 0);
const DIGEST: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// The fields the API server fills in on create.
fn as_stored(meta: &mut ObjectMeta) {
    meta.namespace.get_or_insert_with(|| "ml".into());
    meta.uid.get_or_insert_with(|| "00000000-0000-0000-0000-000000000001".into());
    meta.generation.get_or_insert(1);
    meta.creation_timestamp.get_or_insert(Time(NOW));
}

/// Read `doc` into the operator's type; the API server accepted it, so failing is a finding.
pub fn typed<K: DeserializeOwned>(doc: &Value) -> Result<K, String> {
    serde_json::from_value(doc.clone())
        .map_err(|e| format!("accepted by the API server, but the operator cannot read it: {e}"))
}

/// What the operator writes back of a resource must read back the same.
pub fn round_trips<K: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(object: &K) -> Vec<String> {
    let back = serde_json::to_value(object).map_err(|e| e.to_string()).and_then(|v| typed::<K>(&v));
    match back {
        Ok(back) if &back == object => Vec::new(),
        Ok(back) => vec![format!("does not read back as written: {back:?}")],
        Err(error) => vec![format!("does not read back: {error}")],
    }
}

/// The pipeline controller's pure steps: schedule, data target, plan, the run it creates, and
/// history pruning over runs made from it.
pub fn pipeline(mut pipeline: TrainingPipeline) -> Vec<String> {
    as_stored(&mut pipeline.metadata);
    let mut findings = Vec::new();
    let mut tick = None;
    if let Some(schedule) = &pipeline.spec.triggers.schedule {
        match CronSchedule::parse(&schedule.cron, &schedule.time_zone) {
            Ok(parsed) => {
                tick = parsed.due(Timestamp::constant(1_700_000_000, 0), NOW).tick;
                parsed.next_after(NOW);
            }
            // The controller reports it as `spec.triggers.schedule: <error>`.
            Err(error) => {
                let message = error.to_string();
                if !(message.contains(&format!("{:?}", schedule.cron))
                    || message.contains(&format!("{:?}", schedule.time_zone)))
                {
                    findings.push(format!("spec.triggers.schedule: the error does not quote the value: {message}"));
                }
            }
        }
    }
    if let Some(trigger) = &pipeline.spec.triggers.on_data_change
        && data_target(&pipeline).is_none()
    {
        findings.push(format!(
            "spec.triggers.onDataChange.interval {:?} is accepted, but the operator cannot read it and never polls",
            trigger.interval
        ));
    }
    let sources =
        plan::Sources { schedule_tick: tick, data_fingerprint: Some(DIGEST.into()), ..plan::Sources::default() };
    let decision = plan::plan(&pipeline, &[], &sources, 0);
    if let plan::Action::Create { index, trigger, .. } = decision.action {
        let run = resolve::run_object(&pipeline, index, trigger, &decision.handled);
        findings.extend(created("the run it creates", &run));
        findings.extend(self::run(run));
    }
    findings.extend(history(&pipeline));
    findings
}

/// Runs made from the pipeline, with every outcome: pruning keeps the champions.
fn history(pipeline: &TrainingPipeline) -> Vec<String> {
    let runs: Vec<TrainingRun> = (1..=7)
        .map(|index| {
            let trigger = Default::default();
            let mut run = resolve::run_object(pipeline, index, trigger, &Default::default());
            run.status = Some(finished(index, &pipeline.spec.evaluation));
            run
        })
        .collect();
    let protected = history::champions(&runs, &pipeline.spec.evaluation);
    let doomed = history::prune(&runs, &pipeline.spec.history, &protected);
    doomed
        .iter()
        .filter(|name| protected.contains(*name))
        .map(|name| format!("history prunes champion {name}"))
        .collect()
}

/// A finished run's status: every third failed, the others passed or rejected, with a value for
/// each gate's metric.
fn finished(index: i64, evaluation: &Evaluation) -> TrainingRunStatus {
    let metrics = metrics(evaluation, index as f64 / 10.0);
    let (phase, result) = match index % 3 {
        0 => (RunPhase::Failed, None),
        1 => (RunPhase::Succeeded, Some(GateOutcome::Passed)),
        _ => (RunPhase::Succeeded, Some(GateOutcome::Rejected)),
    };
    TrainingRunStatus {
        phase,
        metrics,
        evaluation: result.map(|result| EvaluationResult { result, ..Default::default() }),
        ..TrainingRunStatus::default()
    }
}

fn metrics(evaluation: &Evaluation, value: f64) -> BTreeMap<String, f64> {
    evaluation.gates.iter().map(|gate| (gate.metric.clone(), value)).collect()
}

/// The run controller's pure steps: validate, the Job, and what the Job's outcome
/// makes of the run.
pub fn run(mut run: TrainingRun) -> Vec<String> {
    as_stored(&mut run.metadata);
    // Pods sharing the operator's files, as on localplane: every file:// path is reachable.
    let settings = trainloop::controllers::Settings {
        local_files: true,
        ..trainloop::controllers::Settings::new("file:///var/lib/trainloop/artifacts/")
    };
    let validated = match build::validate(&run, &settings) {
        Ok(validated) => validated,
        // The controller reports it as the run's Stalled condition.
        Err(invalid) if invalid.field.starts_with("spec.") => return Vec::new(),
        Err(problem) => return vec![format!("build::validate refuses without naming a field: {problem}")],
    };
    let job = build::job(&validated);
    let mut findings = created("its Job", &job);
    let result = trainloop::artifact::TrainerResult {
        metrics: metrics(&run.spec.evaluation, 0.5),
        artifact: trainloop::artifact::ArtifactRef { uri: validated.artifact_uri.clone(), digest: DIGEST.into() },
        data_digest: DIGEST.into(),
        profile: format!("{}profile.json", validated.artifact_uri),
    };
    let message = result.to_message();
    if message.len() > outcome::TERMINATION_MESSAGE_LIMIT {
        findings.push(format!(
            "a result with just the gates' metrics takes {} bytes, over the termination message limit",
            message.len()
        ));
    }
    let pods = [terminated_pod(0, &message)];
    let observed = outcome::observe(Some(&finished_job(&job, "Complete")), &pods, None);
    if !matches!(observed, outcome::Outcome::Succeeded { .. }) {
        findings.push(format!("a valid trainer result is not a success: {observed:?}"));
    }
    let champion = Champion { name: "champion".into(), metrics: metrics(&run.spec.evaluation, 0.4) };
    status::observed(&run, &TrainingRunStatus::default(), &validated, &observed, Some(&champion));
    gates::judge(&run.spec.evaluation, &result.metrics, Some(&champion));
    let failed = outcome::observe(Some(&finished_job(&job, "Failed")), &[terminated_pod(1, "boom")], None);
    status::observed(&run, &TrainingRunStatus::default(), &validated, &failed, None);
    findings
}

/// What the operator creates must pass the API server's checks on names and labels.
fn created<K: kube::Resource + Serialize>(what: &str, object: &K) -> Vec<String> {
    let meta = object.meta();
    let mut findings = Vec::new();
    let name = meta.name.clone().unwrap_or_default();
    if !is_subdomain(&name) {
        findings.push(format!("{what}: name {name:?} is not a DNS subdomain"));
    }
    let mut labels: Vec<(&String, &String)> = meta.labels.iter().flatten().collect();
    let json = serde_json::to_value(object).unwrap_or_default();
    let template_labels = json.pointer("/spec/template/metadata/labels").and_then(Value::as_object).cloned();
    let template_labels: Vec<(String, String)> =
        template_labels.into_iter().flatten().map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string())).collect();
    labels.extend(template_labels.iter().map(|(k, v)| (k, v)));
    for (key, value) in labels {
        if !is_label_value(value) {
            findings.push(format!("{what}: label {key}={value:?} is not a valid label value"));
        }
    }
    if json["kind"] == "TrainingRun" {
        findings.extend(server_problems(&json).into_iter().map(|p| format!("{what} is refused: {p}")));
    }
    findings
}

fn finished_job(job: &Job, condition: &str) -> Job {
    Job {
        status: Some(JobStatus {
            conditions: Some(vec![JobCondition {
                type_: condition.into(),
                status: "True".into(),
                ..JobCondition::default()
            }]),
            ..JobStatus::default()
        }),
        ..job.clone()
    }
}

/// A pod whose trainer container exited with `exit_code`, leaving `message`.
pub fn terminated_pod(exit_code: i32, message: &str) -> Pod {
    Pod {
        status: Some(PodStatus {
            container_statuses: Some(vec![ContainerStatus {
                name: build::CONTAINER.into(),
                state: Some(ContainerState {
                    terminated: Some(ContainerStateTerminated {
                        exit_code,
                        message: Some(message.into()),
                        finished_at: Some(Time(NOW)),
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
