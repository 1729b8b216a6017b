//! Forgets what the operator keeps per DriftPolicy beside the cache (the cursors acknowledged,
//! the webhook firings pending) once the watch says the policy is gone: a Delete, or a relist
//! that no longer lists it. A policy deleted while the watch was down gets no Delete: only the
//! relist (`Init`, `InitApply` per policy, `InitDone`) tells, by leaving it out.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use kube::runtime::watcher;

use super::acknowledged::Acknowledged;
use crate::api::DriftPolicy;
use crate::controllers::caches::Guarded;
use crate::monitors::webhook::{Firings, PolicyKey};

/// The policies gone, as one event of the watch tells.
pub enum Gone {
    Deleted(PolicyKey),
    /// Every policy but these: a relist listed only them.
    AllBut(HashSet<PolicyKey>),
}

impl Gone {
    /// Whether `policy` is still there, so what is kept of it stays.
    pub fn keeps(&self, policy: &PolicyKey) -> bool {
        match self {
            Gone::Deleted(deleted) => policy != deleted,
            Gone::AllBut(listed) => listed.contains(policy),
        }
    }
}

/// Follows the DriftPolicies' watch: the policies listed by the relist in progress.
#[derive(Default)]
pub struct PoliciesGone(Mutex<HashSet<PolicyKey>>);

impl PoliciesGone {
    /// Follow one event of the watch: forget, in `acknowledged` and `firings`, the policies it
    /// says are gone.
    pub fn observe(
        &self,
        event: &watcher::Event<Guarded<DriftPolicy>>,
        acknowledged: &Acknowledged,
        firings: &Firings,
    ) {
        if let Some(gone) = self.gone(event) {
            acknowledged.forget(&gone);
            firings.retain_policies(|policy| gone.keeps(policy));
        }
    }

    fn gone(&self, event: &watcher::Event<Guarded<DriftPolicy>>) -> Option<Gone> {
        let mut listed = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match event {
            // A relist that broke off starts again with `Init`: it lists anew.
            watcher::Event::Init => listed.clear(),
            watcher::Event::InitApply(policy) => {
                listed.insert(PolicyKey::of(policy));
            }
            watcher::Event::InitDone => return Some(Gone::AllBut(std::mem::take(&mut listed))),
            watcher::Event::Delete(policy) => return Some(Gone::Deleted(PolicyKey::of(policy))),
            watcher::Event::Apply(_) => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::monitors::webhook::Firing;

    fn key(name: &str) -> PolicyKey {
        PolicyKey { namespace: "ml".into(), name: name.into() }
    }

    fn policy(name: &str) -> Guarded<DriftPolicy> {
        serde_json::from_value(json!({
            "apiVersion": "trainloop.dev/v1alpha1", "kind": "DriftPolicy",
            "metadata": {"name": name, "namespace": "ml"},
            "spec": {"deploymentRef": {"name": "cancer"}, "monitors": [{"name": "inputs", "featureDrift": {"threshold": 0.2}}]}
        }))
        .unwrap()
    }

    #[test]
    fn a_deleted_policys_firings_go_and_so_do_those_of_a_policy_a_relist_leaves_out() {
        let (gone, acknowledged, firings) = (PoliciesGone::default(), Acknowledged::default(), Firings::default());
        let alert = Firing {
            labels: BTreeMap::from([("alertname".into(), "Drift".into())]),
            summary: None,
            received: crate::api::Time(k8s_openapi::jiff::Timestamp::now()),
            count: 1,
        };
        let names = ["cancer", "audit", "churn", "fraud"];
        for name in names {
            firings.record(key(name), "alerts", alert.clone());
        }
        let pending = || names.map(|name| firings.any_pending(&key(name), ["alerts"].into_iter()));
        let observe = |event| gone.observe(&event, &acknowledged, &firings);

        observe(watcher::Event::Apply(policy("cancer")));
        assert_eq!(pending(), [true, true, true, true], "a change forgets nothing");
        observe(watcher::Event::Delete(policy("cancer")));
        assert_eq!(pending(), [false, true, true, true]);
        // A first try at the relist breaks off; audit is deleted before the second, and the watch
        // is down: no Delete.
        observe(watcher::Event::Init);
        observe(watcher::Event::InitApply(policy("audit")));
        observe(watcher::Event::Init);
        for name in ["churn", "fraud"] {
            observe(watcher::Event::InitApply(policy(name)));
            assert_eq!(pending(), [false, true, true, true], "nothing is forgotten before the relist is done");
        }
        observe(watcher::Event::InitDone);
        assert_eq!(pending(), [false, false, true, true]);
    }
}
