//! Everything the API server showed of runs and Jobs, from watches that outlive operator
//! restarts: each uid ever seen under each name, and each run's latest state. From it, the
//! invariants that must hold at every moment, however the operator was stopped.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use trainloop::api::{HandledTriggers, RunPhase, TrainingRun};
use trainloop::controllers::labels;

/// What a watch just showed: the conditions the kill test waits for.
#[derive(Clone, Debug, PartialEq)]
pub enum Seen {
    NewRun(String),
    NewJob(String),
    RunFinished { name: String, phase: RunPhase },
}

#[derive(Default)]
struct Record {
    /// Per run name, each uid seen and the latest state of that object.
    runs: BTreeMap<String, BTreeMap<String, TrainingRun>>,
    /// Per Job name, each uid seen.
    jobs: BTreeMap<String, BTreeSet<String>>,
}

pub struct Recorder {
    record: Arc<Mutex<Record>>,
    seen: broadcast::Sender<Seen>,
    tasks: Vec<JoinHandle<()>>,
}

impl Recorder {
    /// Start watching the runs and Jobs of the default namespace.
    pub fn start(client: &Client) -> Recorder {
        let record = Arc::new(Mutex::new(Record::default()));
        let (seen, _) = broadcast::channel(256);
        let runs = watch(
            Api::<TrainingRun>::namespaced(client.clone(), "default"),
            record.clone(),
            seen.clone(),
            |record, run, seen| {
                let name = run.name_any();
                let uids = record.runs.entry(name.clone()).or_default();
                let phase = run.status.as_ref().map(|s| s.phase);
                let was = uids.get(&run.uid().unwrap_or_default()).and_then(|r| r.status.as_ref()).map(|s| s.phase);
                if uids.insert(run.uid().unwrap_or_default(), run).is_none() {
                    let _ = seen.send(Seen::NewRun(name.clone()));
                }
                if let Some(phase) =
                    phase.filter(|p| was != Some(*p) && !matches!(p, RunPhase::Pending | RunPhase::Running))
                {
                    let _ = seen.send(Seen::RunFinished { name, phase });
                }
            },
        );
        let jobs = watch(
            Api::<Job>::namespaced(client.clone(), "default"),
            record.clone(),
            seen.clone(),
            |record, job, seen| {
                let name = job.name_any();
                if record.jobs.entry(name.clone()).or_default().insert(job.uid().unwrap_or_default()) {
                    let _ = seen.send(Seen::NewJob(name));
                }
            },
        );
        Recorder { record, seen, tasks: vec![runs, jobs] }
    }

    /// What the watches show from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Seen> {
        self.seen.subscribe()
    }

    /// Wait (up to 10 s) until the watches have shown every run and Job that exists now: the
    /// invariants at rest are judged on a record that is complete.
    pub async fn catch_up(&self, client: &Client) {
        let runs = Api::<TrainingRun>::namespaced(client.clone(), "default");
        let jobs = Api::<Job>::namespaced(client.clone(), "default");
        let mut seen = self.subscribe();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline {
            let listed = (runs.list(&Default::default()).await, jobs.list(&Default::default()).await);
            let complete = if let (Ok(runs), Ok(jobs)) = listed {
                let record = self.lock();
                let has = |names: &BTreeMap<String, BTreeSet<String>>, name: String, uid: Option<String>| {
                    names.get(&name).is_some_and(|uids| uids.contains(&uid.unwrap_or_default()))
                };
                let run_uids: BTreeMap<String, BTreeSet<String>> =
                    record.runs.iter().map(|(name, uids)| (name.clone(), uids.keys().cloned().collect())).collect();
                runs.items.into_iter().all(|run| has(&run_uids, run.name_any(), run.uid()))
                    && jobs.items.into_iter().all(|job| has(&record.jobs, job.name_any(), job.uid()))
            } else {
                false
            };
            if complete {
                return;
            }
            let _ = tokio::time::timeout(std::time::Duration::from_millis(100), seen.recv()).await;
        }
    }

    /// Every run name ever seen.
    pub fn run_names(&self) -> BTreeSet<String> {
        self.lock().runs.keys().cloned().collect()
    }

    /// The invariants, given how often each run trained (the trainer's execution log). `at_rest`
    /// adds those that hold only once everything finished: every run trained exactly once.
    pub fn violations(&self, executions: &BTreeMap<String, Vec<String>>, at_rest: bool) -> Vec<String> {
        let record = self.lock();
        let mut problems = Vec::new();
        let mut triggers: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for (name, uids) in &record.runs {
            if uids.len() > 1 {
                problems.push(format!("run name {name} was used by {} objects: {:?}", uids.len(), uids.keys()));
            }
            for run in uids.values() {
                let handled: Option<HandledTriggers> =
                    run.annotations().get(labels::HANDLED).and_then(|h| serde_json::from_str(h).ok());
                match handled.and_then(|h| h.generation) {
                    Some(generation) => triggers.entry(generation).or_default().push(name.clone()),
                    None => problems.push(format!("run {name} carries no handled generation")),
                }
                let status = run.status.clone().unwrap_or_default();
                if status.phase == RunPhase::Succeeded && (status.metrics.is_empty() || status.artifact.is_none()) {
                    problems.push(format!("run {name} Succeeded without its result: {status:?}"));
                }
                let pods = executions.get(name).cloned().unwrap_or_default();
                let finished = matches!(status.phase, RunPhase::Succeeded | RunPhase::Failed);
                if pods.len() > 1 || (at_rest && finished && pods.len() != 1) {
                    problems.push(format!("run {name} trained {} times, in pods {pods:?}", pods.len()));
                }
            }
        }
        for (generation, names) in triggers.iter().filter(|(_, names)| names.len() > 1) {
            problems.push(format!("the trigger of generation {generation} has {} runs: {names:?}", names.len()));
        }
        for (name, uids) in &record.jobs {
            if uids.len() > 1 {
                problems.push(format!("Job {name} was created {} times", uids.len()));
            }
            if at_rest && !record.runs.contains_key(name) {
                problems.push(format!("Job {name} belongs to no run"));
            }
        }
        for name in executions.keys().filter(|name| at_rest && !record.runs.contains_key(*name)) {
            problems.push(format!("{name} trained but no run of that name was ever seen"));
        }
        problems
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Feed every object a watch shows (across its restarts: faults end watches) to `on_object`.
fn watch<K>(
    api: Api<K>,
    record: Arc<Mutex<Record>>,
    seen: broadcast::Sender<Seen>,
    on_object: fn(&mut Record, K, &broadcast::Sender<Seen>),
) -> JoinHandle<()>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff().applied_objects());
        while let Some(item) = stream.next().await {
            if let Ok(object) = item {
                let mut record = record.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                on_object(&mut record, object, &seen);
            }
        }
    })
}
