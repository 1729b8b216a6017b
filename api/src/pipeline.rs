//! TrainingPipeline: how to train a model, when to retrain it, and how to judge the result.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{
    Condition, DURATION_PATTERN, DataSource, Evaluation, FeatureSpec, NAME_PATTERN, StorageAccess, Time,
    TrainerTemplate,
};

/// How to train a model, when to retrain it, and how to judge each run.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "trainloop.dev",
    version = "v1alpha1",
    kind = "TrainingPipeline",
    namespaced,
    shortname = "tp",
    category = "trainloop",
    status = "TrainingPipelineStatus",
    cel,
    validation = Rule::new("size(self.metadata.name) <= 52")
        .message("metadata.name: a pipeline name has at most 52 characters, so that its runs' names (<pipeline>-<n>) fit in a 63-character label"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Last Run", type_ = "string", json_path = ".status.lastRun"),
    printcolumn(name = "Champion", type_ = "string", json_path = ".status.lastPassingRun"),
    printcolumn(name = "Next Run", type_ = "string", json_path = ".status.nextScheduleTime"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct TrainingPipelineSpec {
    /// The trainer container.
    pub template: TrainerTemplate,
    /// The training data.
    pub data: DataSource,
    /// Credentials of the trainer pods for the data and the artifact root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageAccess>,
    /// The feature schema that training and serving input must follow.
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    #[schemars(length(min = 1))]
    pub features: Vec<FeatureSpec>,
    /// Hyperparameters, delivered to the trainer as a JSON config file (never baked into code).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hyperparameters: BTreeMap<String, String>,
    /// Random seed handed to the trainer, so a run can be reproduced.
    #[serde(default)]
    // Bounded so that every JSON reader holds it exactly and common trainers accept it (NumPy and
    // scikit-learn seeds are below 2^32); an unbounded integer could overflow the operator's i64.
    #[schemars(range(min = 0, max = 4_294_967_295_i64))]
    pub seed: i64,
    /// The gates a run must pass to be promoted.
    pub evaluation: Evaluation,
    /// What starts a run.
    #[serde(default)]
    pub triggers: Triggers,
    /// What a new trigger does while a run is still active.
    #[serde(default)]
    pub concurrency_policy: ConcurrencyPolicy,
    /// Retries of a failed trainer pod before the run fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub backoff_limit: Option<i32>,
    /// How long a run's trainer may take to start (image pulled, container running) before the
    /// run fails with the reason it could not start. Default 600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 2_147_483_647))]
    pub start_timeout_seconds: Option<i64>,
    /// Time limit of a run's Job, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 2_147_483_647))]
    pub active_deadline_seconds: Option<i64>,
    /// How many finished runs to keep.
    #[serde(default)]
    pub history: History,
    /// Kueue queue to submit training Jobs to (label `kueue.x-k8s.io/queue-name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63), regex(pattern = NAME_PATTERN))]
    pub queue_name: Option<String>,
    /// Stop starting new runs; active runs go on.
    #[serde(default)]
    pub suspend: bool,
}

/// What starts a run. Several may be combined.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Triggers {
    /// Train on a cron schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// Train when the pipeline spec changes (a new generation).
    #[serde(default = "enabled")]
    pub on_spec_change: bool,
    /// Changing this string requests a run: the GitOps way to ask for retraining.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub retrain_token: Option<String>,
    /// Train when the content of the data changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_data_change: Option<DataChangeTrigger>,
}

impl Default for Triggers {
    fn default() -> Self {
        Triggers { schedule: None, on_spec_change: true, retrain_token: None, on_data_change: None }
    }
}

fn enabled() -> bool {
    true
}

/// A cron schedule.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(cron_rule()).field_path(".cron").message(CRON_MESSAGE))]
pub struct Schedule {
    /// Five-field cron expression (minute hour day-of-month month day-of-week), e.g. `0 3 * * 1`,
    /// or a macro: `@yearly`, `@monthly`, `@weekly`, `@daily`, `@hourly`.
    #[schemars(length(min = 1, max = 256))]
    pub cron: String,
    /// IANA time zone the expression is read in.
    #[serde(default = "utc")]
    #[schemars(length(min = 1))]
    pub time_zone: String,
}

const CRON_MESSAGE: &str = "cron must be five fields: minute (0-59), hour (0-23), day of month (1-31), \
month (1-12 or JAN-DEC), day of week (0-7 or SUN-SAT), each *, a value, a range a-b or a list, with an \
optional /step; or a macro: @yearly, @monthly, @weekly, @daily, @hourly";

/// The CEL rule that checks a cron expression at apply time: every field in its range. Written
/// without backslashes, so that it reads the same in CEL, YAML and every CEL implementation.
fn cron_rule() -> String {
    let field = |value: &str| {
        let item = format!("([*?]|({value})(-({value}))?)(/[0-9]+)?");
        format!("{item}(,{item})*")
    };
    let minute = field("[0-5]?[0-9]");
    let hour = field("[01]?[0-9]|2[0-3]");
    let day = field("0?[1-9]|[12][0-9]|3[01]");
    let month = field("0?[1-9]|1[0-2]|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC");
    let weekday = field("[0-7]|SUN|MON|TUE|WED|THU|FRI|SAT");
    let gap = "[ \t]+";
    let fields = format!("({minute}){gap}({hour}){gap}({day}){gap}({month}){gap}({weekday})");
    let macros = "@(yearly|annually|monthly|weekly|daily|midnight|hourly)";
    format!("self.cron.matches('(?i)^[ \t]*({macros}|{fields})[ \t]*$')")
}

fn utc() -> String {
    "UTC".into()
}

/// Poll the data for changes.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("duration(self.interval) >= duration('10s')").message("interval must be at least 10s"),
    // Also refuses what overflows a duration, which the operator could not poll by.
    validation = Rule::new("duration(self.interval) <= duration('168h')").message("interval must be at most 168h")
)]
pub struct DataChangeTrigger {
    /// How often to check the data digest (ETag or content hash).
    #[serde(default = "five_minutes")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub interval: String,
}

fn five_minutes() -> String {
    "5m".into()
}

/// What a new trigger does while a run is still active.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ConcurrencyPolicy {
    /// New triggers wait and coalesce into one pending run.
    #[default]
    Forbid,
    /// The active run is stopped and marked Superseded.
    Replace,
    /// Runs may overlap.
    Allow,
}

/// How many finished runs to keep. Runs a ModelDeployment serves or may roll back to are kept
/// regardless.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct History {
    /// Succeeded runs to keep.
    #[serde(default = "five")]
    #[schemars(range(min = 0, max = 1000))]
    pub succeeded: i32,
    /// Failed runs to keep.
    #[serde(default = "three")]
    #[schemars(range(min = 0, max = 1000))]
    pub failed: i32,
}

impl Default for History {
    fn default() -> Self {
        History { succeeded: five(), failed: three() }
    }
}

fn five() -> i32 {
    5
}

fn three() -> i32 {
    3
}

/// What the controller observed of the pipeline.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TrainingPipelineStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Reconciling` and `Stalled`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The newest run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<String>,
    /// The highest run number this pipeline has used (`<pipeline>-<n>`), recorded before the run
    /// is created. It never decreases, so a run name, and the artifact path derived from it, is
    /// never used twice, even after the run is pruned or deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_index: Option<i64>,
    /// The newest run that passed its gates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_passing_run: Option<String>,
    /// When the schedule fires next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_schedule_time: Option<Time>,
    /// The newest trigger of each kind that already has its run.
    #[serde(default)]
    pub handled: HandledTriggers,
    /// Triggers waiting for the active run to finish (`concurrencyPolicy: Forbid`); they start one
    /// run together.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_triggers: Vec<String>,
    /// The latest fingerprint of the data (`onDataChange`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_fingerprint: Option<String>,
}

/// The newest trigger of each kind that already has its run. The controller also records this on
/// each run it creates (annotation `trainloop.dev/handled`), so a crash between creating a run and
/// writing this status never starts a second run for one trigger.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct HandledTriggers {
    /// The number of the run that consumed these triggers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_index: Option<i64>,
    /// Spec generation (`onSpecChange`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// Retrain token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrain_token: Option<String>,
    /// Schedule tick.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_time: Option<Time>,
    /// Data fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_fingerprint: Option<String>,
    /// Retrain requests of DriftPolicies: the id consumed, by policy name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub drift_requests: BTreeMap<String, String>,
}
