//! Fault injection, off by default, switched at run time with `POST /localplane/faults`:
//! so operator tests can check they survive what real clusters do (errors, slowness, watch
//! streams that end, and 410 Expired after compaction).
//!
//! ```json
//! {"errors": {"create": {"rate": 0.5, "code": 500}, "*": {"rate": 0.1, "code": 429}},
//!  "latencyMs": 50, "watchMaxSeconds": 2, "dropWatches": true, "compact": true}
//! ```
//! The posted document replaces the whole configuration (`{}` turns everything off);
//! `dropWatches` and `compact` are one-shot actions done at once.
//!
//! A request with the header `x-localplane-observer` is spared every fault: the client that a
//! test watches the system under test with must see everything, or it reports false failures.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::server::errors::ApiError;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Per verb (get, list, watch, create, update, patch, delete, or `*`).
    pub errors: HashMap<String, ErrorFault>,
    pub latency_ms: u64,
    /// End every watch stream after this long (clients must re-watch).
    pub watch_max_seconds: Option<u64>,
    /// One-shot: end every open watch stream now.
    pub drop_watches: bool,
    /// One-shot: forget the event history; open watches get an in-stream 410 Expired.
    pub compact: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ErrorFault {
    /// Probability in [0, 1].
    pub rate: f64,
    /// 500, 429 or 409.
    pub code: u16,
}

/// The header that marks a request as the test's observer, spared by fault injection.
pub const OBSERVER_HEADER: &str = "x-localplane-observer";

pub struct Faults {
    config: RwLock<FaultConfig>,
    /// Bumped to end all open watch streams.
    pub drops: tokio::sync::watch::Sender<u64>,
    rng: Mutex<u64>,
    /// Errors injected so far, per verb: a test can wait until a fault has really been met.
    injected: Mutex<BTreeMap<String, u64>>,
}

impl Default for Faults {
    fn default() -> Self {
        let seed = u64::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..8].try_into().unwrap_or([7; 8]));
        Faults {
            config: RwLock::new(FaultConfig::default()),
            drops: tokio::sync::watch::channel(0).0,
            rng: Mutex::new(seed | 1),
            injected: Mutex::default(),
        }
    }
}

impl Faults {
    pub fn get(&self) -> FaultConfig {
        self.config.read().map(|c| c.clone()).unwrap_or_default()
    }

    /// How many errors were injected since the start, per verb.
    pub fn injected(&self) -> BTreeMap<String, u64> {
        self.injected.lock().map(|i| i.clone()).unwrap_or_default()
    }

    /// Replaces the configuration; returns whether history compaction was asked for.
    pub fn set(&self, mut cfg: FaultConfig) -> Result<bool, ApiError> {
        for (verb, e) in &cfg.errors {
            if !(0.0..=1.0).contains(&e.rate) || !matches!(e.code, 500 | 429 | 409) {
                return Err(ApiError::bad_request(format!(
                    "errors.{verb}: rate must be in [0,1] and code one of 500, 429, 409"
                )));
            }
        }
        if cfg.drop_watches {
            self.drops.send_modify(|n| *n += 1);
        }
        let compact = cfg.compact;
        cfg.drop_watches = false;
        cfg.compact = false;
        if let Ok(mut c) = self.config.write() {
            *c = cfg;
        }
        Ok(compact)
    }

    fn random(&self) -> f64 {
        let mut g = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        // xorshift64*: plenty for fault sampling.
        let mut x = *g;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *g = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.config.read().map(|c| c.latency_ms).unwrap_or(0))
    }

    pub fn watch_max(&self) -> Option<Duration> {
        self.config.read().ok().and_then(|c| c.watch_max_seconds).map(Duration::from_secs)
    }

    /// The injected error for this verb, if the dice say so.
    pub fn error_for(&self, verb: &str) -> Option<ApiError> {
        let fault = {
            let c = self.config.read().ok()?;
            c.errors.get(verb).or_else(|| c.errors.get("*")).cloned()?
        };
        if fault.rate <= 0.0 || self.random() >= fault.rate {
            return None;
        }
        if let Ok(mut injected) = self.injected.lock() {
            *injected.entry(verb.to_string()).or_default() += 1;
        }
        Some(match fault.code {
            429 => ApiError::too_many_requests(),
            409 => ApiError::new(409, "Conflict", "injected conflict (localplane fault injection)"),
            _ => ApiError::internal("injected error (localplane fault injection)"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_honoured() {
        let f = Faults::default();
        assert!(f.error_for("create").is_none());
        let mut cfg = FaultConfig::default();
        cfg.errors.insert("create".into(), ErrorFault { rate: 1.0, code: 429 });
        f.set(cfg).unwrap();
        assert_eq!(f.error_for("create").map(|e| e.code), Some(429));
        assert!(f.error_for("get").is_none());
        assert_eq!(f.injected(), BTreeMap::from([("create".to_string(), 1)]));
        let mut cfg = FaultConfig::default();
        cfg.errors.insert("*".into(), ErrorFault { rate: 0.5, code: 500 });
        f.set(cfg).unwrap();
        let hits = (0..2000).filter(|_| f.error_for("get").is_some()).count();
        assert!((800..1200).contains(&hits), "{hits}");
        let mut bad = FaultConfig::default();
        bad.errors.insert("x".into(), ErrorFault { rate: 2.0, code: 500 });
        assert!(f.set(bad).is_err());
    }
}
