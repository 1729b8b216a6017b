//! Data-change polling off the reconcile path. One task per pipeline reads the data's
//! fingerprint every interval; a reconcile takes the latest reading without waiting (a slow or
//! hung data server never delays another trigger), and a changed reading wakes the pipeline.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kube::runtime::reflector::ObjectRef;
use tokio::sync::mpsc;
use tokio::time::Instant;

use trainloop_storage::StorageConfig;

use crate::api::TrainingPipeline;

use super::fingerprint;

/// The latest reading of a pipeline's data: its fingerprint, or why it could not be read.
pub type Reading = Result<String, String>;

/// What one pipeline polls, as its spec says now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub uri: String,
    pub interval: Duration,
}

struct Entry {
    target: Target,
    latest: Option<Reading>,
    /// When a reconcile last asked: a poller nobody asks for stops (its pipeline is gone or no
    /// longer polls).
    wanted: Instant,
    task: tokio::task::AbortHandle,
}

/// Polls the data of every pipeline with `onDataChange`.
pub struct DataPoller {
    http: reqwest::Client,
    /// The operator's own storage credentials, for object-store data.
    storage: StorageConfig,
    entries: Arc<Mutex<HashMap<ObjectRef<TrainingPipeline>, Entry>>>,
    wake: mpsc::UnboundedSender<ObjectRef<TrainingPipeline>>,
    wakeups: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<ObjectRef<TrainingPipeline>>>>,
}

impl DataPoller {
    pub fn new(http: reqwest::Client, storage: StorageConfig) -> Self {
        let (wake, wakeups) = mpsc::unbounded_channel();
        DataPoller { http, storage, entries: Arc::default(), wake, wakeups: Arc::new(tokio::sync::Mutex::new(wakeups)) }
    }

    /// The pipelines whose data changed (or became readable, or unreadable): for the controller's
    /// `reconcile_on`. One stream reads at a time (a restarted controller takes over).
    pub fn wakeups(&self) -> impl futures::Stream<Item = ObjectRef<TrainingPipeline>> + Send + 'static {
        futures::stream::unfold(self.wakeups.clone(), |wakeups| async move {
            let next = wakeups.lock().await.recv().await;
            next.map(|pipeline| (pipeline, wakeups))
        })
    }

    /// The latest reading for `pipeline`, starting (or restarting, when its target changed) its
    /// poller. `None` until the first reading arrives, which then wakes the pipeline.
    pub fn latest(&self, pipeline: ObjectRef<TrainingPipeline>, target: Target) -> Option<Reading> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = entries.get_mut(&pipeline)
            && entry.target == target
        {
            entry.wanted = Instant::now();
            return entry.latest.clone();
        }
        if let Some(old) = entries.remove(&pipeline) {
            old.task.abort();
        }
        let task = tokio::spawn(poll(
            self.http.clone(),
            self.storage.clone(),
            Arc::downgrade(&self.entries),
            pipeline.clone(),
            target.clone(),
            self.wake.clone(),
        ));
        let entry = Entry { target, latest: None, wanted: Instant::now(), task: task.abort_handle() };
        entries.insert(pipeline, entry);
        None
    }
}

impl Drop for DataPoller {
    fn drop(&mut self) {
        for entry in self.entries.lock().unwrap_or_else(PoisonError::into_inner).values() {
            entry.task.abort();
        }
    }
}

/// Read the data every interval until nobody has asked for three intervals.
async fn poll(
    http: reqwest::Client,
    storage: StorageConfig,
    entries: std::sync::Weak<Mutex<HashMap<ObjectRef<TrainingPipeline>, Entry>>>,
    pipeline: ObjectRef<TrainingPipeline>,
    target: Target,
    wake: mpsc::UnboundedSender<ObjectRef<TrainingPipeline>>,
) {
    let mut ticks = tokio::time::interval(target.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        // A hung server must not hold this poller past its next reading.
        let reading = match tokio::time::timeout(target.interval, fingerprint(&http, &storage, &target.uri)).await {
            Ok(Ok(fingerprint)) => Ok(fingerprint),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("no answer within {}s", target.interval.as_secs())),
        };
        let Some(entries) = entries.upgrade() else { return };
        let mut entries = entries.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = entries.get_mut(&pipeline).filter(|e| e.target == target) else { return };
        if entry.wanted.elapsed() > target.interval * 3 {
            entries.remove(&pipeline);
            return;
        }
        if entry.latest.as_ref() != Some(&reading) {
            entry.latest = Some(reading);
            let _ = wake.send(pipeline.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reading_arrives_without_waiting_and_a_change_wakes_the_pipeline() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data.csv");
        std::fs::write(&data, "a\n1\n").unwrap();
        let poller = DataPoller::new(crate::triggers::http_client().unwrap(), StorageConfig::default());
        let mut wakeups = Box::pin(poller.wakeups());
        let pipeline = ObjectRef::new("churn").within("ml");
        let target = Target { uri: format!("file://{}", data.display()), interval: Duration::from_millis(50) };
        assert_eq!(poller.latest(pipeline.clone(), target.clone()), None, "no reading yet, and no waiting");
        assert_eq!(futures::StreamExt::next(&mut wakeups).await, Some(pipeline.clone()));
        let first = poller.latest(pipeline.clone(), target.clone()).unwrap().unwrap();
        std::fs::write(&data, "a\n2\n").unwrap();
        assert_eq!(futures::StreamExt::next(&mut wakeups).await, Some(pipeline.clone()));
        let second = poller.latest(pipeline.clone(), target.clone()).unwrap().unwrap();
        assert_ne!(first, second);
        std::fs::remove_file(&data).unwrap();
        assert_eq!(futures::StreamExt::next(&mut wakeups).await, Some(pipeline.clone()));
        let error = poller.latest(pipeline, target).unwrap().unwrap_err();
        assert!(error.contains("data.csv"), "{error}");
    }
}
