//! The webhook monitor's source: firings that the Alertmanager receiver
//! (`server::alertmanager`) records and the DriftPolicy controller takes. Repeats of a firing
//! the controller has not taken yet coalesce into it, and only the first wakes the policy: a
//! storm of alerts is one pending firing and one reconcile, however long it lasts.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use tokio::sync::mpsc;

use crate::api::Time;

/// A DriftPolicy by namespace and name: what a firing is filed under and what a wakeup names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PolicyKey {
    pub namespace: String,
    pub name: String,
}

impl PolicyKey {
    /// The key of a DriftPolicy, or of a `DeserializeGuard` of one as the caches hold it.
    pub fn of(policy: &impl Resource) -> Self {
        PolicyKey { namespace: policy.namespace().unwrap_or_default(), name: policy.name_any() }
    }

    /// The reference a controller's `reconcile_on` takes, for whichever form of DriftPolicy the
    /// controller watches (the resource itself or a `DeserializeGuard` of it).
    pub fn object_ref<K: Resource<DynamicType = ()>>(&self) -> ObjectRef<K> {
        ObjectRef::new(&self.name).within(&self.namespace)
    }
}

impl std::fmt::Display for PolicyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A firing alert, as the retrain reason needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct Firing {
    /// The alert's labels (`alertname` among them).
    pub labels: BTreeMap<String, String>,
    /// The alert's `summary` annotation, else its `description`.
    pub summary: Option<String>,
    /// When the first of the coalesced alerts arrived.
    pub received: Time,
    /// How many alerts coalesced into this firing (1 for a single one).
    pub count: u64,
}

impl Firing {
    /// A reason a person understands: `alert ModelDrift{model="cancer"}: inputs shifted`.
    pub fn describe(&self) -> String {
        let name = self.labels.get("alertname").map_or("alert", String::as_str);
        let labels: Vec<String> =
            self.labels.iter().filter(|(k, _)| *k != "alertname").map(|(k, v)| format!("{k}={v:?}")).collect();
        let mut text = format!("alert {name}{{{}}}", labels.join(","));
        if let Some(summary) = &self.summary {
            text.push_str(": ");
            text.push_str(summary);
        }
        if self.count > 1 {
            text.push_str(&format!(" ({} alerts)", self.count));
        }
        text
    }
}

type Pending = HashMap<(PolicyKey, String), Firing>;

/// The firings no controller has taken yet, shared by the receiver and the controller.
#[derive(Clone)]
pub struct Firings {
    pending: Arc<Mutex<Pending>>,
    wake: mpsc::UnboundedSender<PolicyKey>,
    wakeups: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<PolicyKey>>>,
}

impl Default for Firings {
    fn default() -> Self {
        let (wake, wakeups) = mpsc::unbounded_channel();
        Firings { pending: Arc::default(), wake, wakeups: Arc::new(tokio::sync::Mutex::new(wakeups)) }
    }
}

impl Firings {
    /// File a firing of `monitor` of `policy`. A firing already pending for it absorbs this one
    /// (keeping the first alert, counting the repeat); otherwise the policy is woken.
    pub fn record(&self, policy: PolicyKey, monitor: &str, firing: Firing) {
        let mut pending = self.lock();
        match pending.get_mut(&(policy.clone(), monitor.to_string())) {
            Some(first) => first.count += firing.count,
            None => {
                pending.insert((policy.clone(), monitor.to_string()), firing);
                // The receiver lives as long as `self`: sending cannot fail while we hold it.
                let _ = self.wake.send(policy);
            }
        }
    }

    /// The pending firing of `monitor` of `policy`, removing it: the next alert starts anew.
    pub fn take(&self, policy: &PolicyKey, monitor: &str) -> Option<Firing> {
        self.lock().remove(&(policy.clone(), monitor.to_string()))
    }

    /// Whether a firing of any of `monitors` of `policy` waits to be taken.
    pub fn any_pending<'a>(&self, policy: &PolicyKey, mut monitors: impl Iterator<Item = &'a str>) -> bool {
        let pending = self.lock();
        monitors.any(|monitor| pending.contains_key(&(policy.clone(), monitor.to_string())))
    }

    /// Drop the firings of every policy but those `keeps` accepts: a deleted policy's firing
    /// would wait forever.
    pub fn retain_policies(&self, keeps: impl Fn(&PolicyKey) -> bool) {
        self.lock().retain(|(policy, _), _| keeps(policy));
    }

    /// The policies that have a new pending firing, for the controller's `reconcile_on`
    /// (through [`PolicyKey::object_ref`]). One stream reads at a time: a restarted controller
    /// takes over from the last.
    pub fn wakeups(&self) -> impl futures::Stream<Item = PolicyKey> + Send + 'static {
        futures::stream::unfold(self.wakeups.clone(), |wakeups| async move {
            let next = wakeups.lock().await.recv().await;
            next.map(|policy| (policy, wakeups))
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use std::time::Duration;

    fn key(name: &str) -> PolicyKey {
        PolicyKey { namespace: "ml".into(), name: name.into() }
    }

    fn firing(alert: &str) -> Firing {
        Firing {
            labels: BTreeMap::from([("alertname".into(), alert.into()), ("model".into(), "cancer".into())]),
            summary: Some("inputs shifted".into()),
            received: Time(k8s_openapi::jiff::Timestamp::now()),
            count: 1,
        }
    }

    /// Whether a wakeup is already waiting (the channel is filled synchronously by `record`).
    async fn next_wakeup(wakeups: &mut (impl futures::Stream<Item = PolicyKey> + Unpin)) -> Option<PolicyKey> {
        tokio::time::timeout(Duration::ZERO, wakeups.next()).await.ok().flatten()
    }

    #[tokio::test]
    async fn a_storm_within_a_second_is_one_pending_firing_and_one_wakeup() {
        let firings = Firings::default();
        let mut wakeups = Box::pin(firings.wakeups());
        let started = std::time::Instant::now();
        for n in 0..1000 {
            firings.record(key("cancer"), "alerts", firing(&format!("Drift{n}")));
        }
        assert!(started.elapsed() < Duration::from_secs(1), "1,000 firings took {:?}", started.elapsed());
        assert_eq!(next_wakeup(&mut wakeups).await, Some(key("cancer")));
        assert_eq!(next_wakeup(&mut wakeups).await, None, "repeats must not wake the policy again");
        let pending = firings.take(&key("cancer"), "alerts").expect("one pending firing");
        assert_eq!((pending.count, pending.labels["alertname"].as_str()), (1000, "Drift0"));
        assert_eq!(firings.take(&key("cancer"), "alerts"), None);
        // Taken: the next alert is a new firing and wakes the policy again.
        firings.record(key("cancer"), "alerts", firing("Drift"));
        assert_eq!(next_wakeup(&mut wakeups).await, Some(key("cancer")));
    }

    #[tokio::test]
    async fn firings_are_kept_per_policy_and_monitor() {
        let firings = Firings::default();
        firings.record(key("a"), "one", firing("A1"));
        firings.record(key("a"), "two", firing("A2"));
        firings.record(key("b"), "one", firing("B1"));
        assert_eq!(firings.take(&key("b"), "one").map(|f| f.labels["alertname"].clone()), Some("B1".into()));
        assert_eq!(firings.take(&key("a"), "two").map(|f| f.labels["alertname"].clone()), Some("A2".into()));
        assert_eq!(firings.take(&key("a"), "one").map(|f| f.labels["alertname"].clone()), Some("A1".into()));
        assert_eq!(firings.take(&key("b"), "two"), None);
    }

    #[test]
    fn the_description_names_the_alert_its_labels_and_summary() {
        let mut storm = firing("ModelDrift");
        assert_eq!(storm.describe(), r#"alert ModelDrift{model="cancer"}: inputs shifted"#);
        storm.count = 3;
        storm.summary = None;
        assert_eq!(storm.describe(), r#"alert ModelDrift{model="cancer"} (3 alerts)"#);
    }
}
