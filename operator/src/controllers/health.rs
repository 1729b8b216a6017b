//! Whether the operator sees the cluster: its caches have synced and no watch is failing. Ready
//! means both; a watch that keeps failing (an API server that lost its state, a removed CRD)
//! makes the operator unready and, past a limit, restarts its controllers so that they relist.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use kube::runtime::watcher;

/// Shared by the watchers that report and the endpoints that ask.
#[derive(Clone, Default)]
pub struct WatchHealth {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    synced: bool,
    /// Watches whose last event was an error: since when, and the error.
    failing: BTreeMap<String, (Instant, String)>,
}

impl WatchHealth {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every cache has been listed once.
    pub fn set_synced(&self) {
        self.state().synced = true;
    }

    /// A hook for `watch`'s event stream: an error marks it failing, any event healthy again.
    pub fn observe<K>(&self, watch: String) -> impl Fn(&Result<watcher::Event<K>, watcher::Error>) + use<K> {
        let health = self.clone();
        move |event| {
            let mut state = health.state();
            match event {
                Ok(_) => {
                    state.failing.remove(&watch);
                }
                Err(error) => {
                    state.failing.entry(watch.clone()).or_insert_with(|| (Instant::now(), error.to_string()));
                }
            }
        }
    }

    /// Ok when ready; else what is wrong, for `/readyz`.
    pub fn check(&self) -> Result<(), String> {
        let state = self.state();
        if !state.synced {
            return Err("caches not synced".into());
        }
        match state.failing.iter().next() {
            Some((watch, (since, error))) => {
                Err(format!("watch of {watch} failing for {}s: {error}", since.elapsed().as_secs()))
            }
            None => Ok(()),
        }
    }

    /// Whether some watch has failed without a break for longer than `limit`.
    pub fn failing_longer_than(&self, limit: Duration) -> bool {
        self.state().failing.values().any(|(since, _)| since.elapsed() > limit)
    }

    /// Forget the watches of controllers that are being restarted.
    pub fn reset(&self) {
        *self.state() = State::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_once_synced_and_while_no_watch_fails() {
        let health = WatchHealth::default();
        assert_eq!(health.check(), Err("caches not synced".into()));
        health.set_synced();
        assert_eq!(health.check(), Ok(()));
        let observe = health.observe::<k8s_openapi::api::core::v1::ConfigMap>("configmaps".into());
        observe(&Err(watcher::Error::NoResourceVersion));
        let problem = health.check().unwrap_err();
        assert!(problem.starts_with("watch of configmaps failing for 0s"), "{problem}");
        assert!(health.failing_longer_than(Duration::ZERO));
        assert!(!health.failing_longer_than(Duration::from_secs(60)));
        observe(&Ok(watcher::Event::InitDone));
        assert_eq!(health.check(), Ok(()));
    }
}
