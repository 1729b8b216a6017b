//! Which of the cursors recorded in policies' statuses this operator has acknowledged to their
//! pods. A pod keeps the rows of a read until that read's cursor is acknowledged; the operator
//! acknowledges a cursor once the status records the judgement of its rows, and, before a
//! monitor reads again, every recorded cursor it has not acknowledged yet: after a restart (this
//! memory is empty) that re-sends them all, which a pod counts once. A deleted policy's memory
//! goes with it, and so does a monitor's that left the spec.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use super::gone::Gone;
use super::live::{self, Server};
use crate::api::ProfileCursor;
use crate::monitors::webhook::PolicyKey;

/// Per monitor of a policy: the cursor last acknowledged to each pod.
#[derive(Default)]
pub struct Acknowledged(Mutex<HashMap<(PolicyKey, String), BTreeMap<String, String>>>);

impl Acknowledged {
    /// Acknowledge to the pods among `servers`, as `reader`, every cursor of `recorded` not
    /// acknowledged before: the status of `monitor` of `policy` records their judgement. Pods
    /// not among `servers` are not read either; theirs wait in the status.
    pub async fn deliver(
        &self,
        http: &reqwest::Client,
        servers: &[Server],
        policy: &PolicyKey,
        (monitor, reader): (&str, &str),
        recorded: &[ProfileCursor],
    ) -> Result<(), String> {
        let key = (policy.clone(), monitor.to_string());
        let due: Vec<(&Server, &ProfileCursor)> = {
            let acknowledged = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            let done = acknowledged.get(&key);
            recorded
                .iter()
                .filter(|c| done.and_then(|done| done.get(&c.pod)) != Some(&c.cursor))
                .filter_map(|c| Some((servers.iter().find(|server| server.pod == c.pod)?, c)))
                .collect()
        };
        let answers =
            futures::future::join_all(due.iter().map(|(server, c)| live::acknowledge(http, server, reader, &c.cursor)))
                .await;
        let mut acknowledged = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let done = acknowledged.entry(key).or_default();
        // Only the pods the status still names: the others are gone.
        done.retain(|pod, _| recorded.iter().any(|c| c.pod == *pod));
        let mut failed = None;
        for ((_, c), answer) in due.into_iter().zip(answers) {
            match answer {
                Ok(()) => {
                    done.insert(c.pod.clone(), c.cursor.clone());
                }
                Err(message) => failed = Some(message),
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Forget the policies the watch says are gone: their statuses, and the cursors they
    /// recorded, are gone too.
    pub fn forget(&self, gone: &Gone) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).retain(|(policy, _), _| gone.keeps(policy));
    }

    /// Keep, of `policy`, only what was acknowledged for `monitors`: a monitor renamed or
    /// removed records no cursors any more.
    pub fn keep_monitors<'a>(&self, policy: &PolicyKey, monitors: impl Iterator<Item = &'a str> + Clone) {
        let mut acknowledged = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        acknowledged.retain(|(of, monitor), _| of != policy || monitors.clone().any(|kept| kept == monitor));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::extract::{Query, State};
    use axum::{Json, Router, routing::post};
    use serde_json::Value;

    use super::*;

    const INPUTS: (&str, &str) = ("inputs", "uid-1/inputs");

    /// A pod that records the cursors acknowledged to it, each as `<reader> <cursor>`.
    async fn pod(name: &str) -> (Server, Arc<Mutex<Vec<String>>>, tokio::task::JoinHandle<()>) {
        let received = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route(
                "/trainloop/profile/ack",
                post(
                    |State(received): State<Arc<Mutex<Vec<String>>>>,
                     Query(query): Query<HashMap<String, String>>,
                     Json(body): Json<Value>| async move {
                        let cursor = body["cursor"].as_str().unwrap_or_default();
                        received.lock().unwrap().push(format!("{} {cursor}", query["reader"]));
                    },
                ),
            )
            .with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (Server { pod: name.into(), base }, received, task)
    }

    fn cursor(pod: &str, cursor: &str) -> ProfileCursor {
        ProfileCursor { pod: pod.into(), cursor: cursor.into() }
    }

    #[tokio::test]
    async fn each_recorded_cursor_is_acknowledged_once_per_operator_life_and_again_after_a_restart() {
        let http = crate::triggers::data::http_client().unwrap();
        let (a, to_a, task_a) = pod("a").await;
        let (b, to_b, task_b) = pod("b").await;
        let servers = [a, b];
        let policy = PolicyKey { namespace: "ml".into(), name: "cancer".into() };
        let recorded = [cursor("a", "a-1"), cursor("b", "b-1"), cursor("gone", "g-1")];
        let acknowledged = Acknowledged::default();
        acknowledged.deliver(&http, &servers, &policy, INPUTS, &recorded).await.unwrap();
        acknowledged.deliver(&http, &servers, &policy, INPUTS, &recorded).await.unwrap();
        let next = [cursor("a", "a-2"), cursor("b", "b-1")];
        acknowledged.deliver(&http, &servers, &policy, INPUTS, &next).await.unwrap();
        assert_eq!(*to_a.lock().unwrap(), ["uid-1/inputs a-1", "uid-1/inputs a-2"]);
        assert_eq!(*to_b.lock().unwrap(), ["uid-1/inputs b-1"]);
        // Another monitor's cursors are its own, acknowledged as its own reader.
        acknowledged.deliver(&http, &servers, &policy, ("other", "uid-1/other"), &[cursor("b", "b-1")]).await.unwrap();
        assert_eq!(*to_b.lock().unwrap(), ["uid-1/inputs b-1", "uid-1/other b-1"]);
        // A new operator knows only the status: it acknowledges what that records again.
        Acknowledged::default().deliver(&http, &servers, &policy, INPUTS, &next).await.unwrap();
        assert_eq!(to_a.lock().unwrap().last().map(String::as_str), Some("uid-1/inputs a-2"));
        assert_eq!(to_a.lock().unwrap().len(), 3);
        // A pod that does not answer keeps its cursor due.
        task_b.abort();
        let _ = task_b.await;
        let later = [cursor("b", "b-2")];
        assert!(
            acknowledged.deliver(&http, &servers, &policy, INPUTS, &later).await.unwrap_err().starts_with("pod b:")
        );
        task_a.abort();
    }

    #[tokio::test]
    async fn a_gone_policys_memory_goes_with_it_and_so_does_a_monitor_that_left_the_spec() {
        let http = crate::triggers::data::http_client().unwrap();
        let (a, to_a, task) = pod("a").await;
        let servers = [a];
        let acknowledged = Acknowledged::default();
        let recorded = [cursor("a", "a-1")];
        let key = |name: &str| PolicyKey { namespace: "ml".into(), name: name.into() };
        let held = || {
            let mut held: Vec<String> = acknowledged
                .0
                .lock()
                .unwrap()
                .keys()
                .map(|(policy, monitor)| format!("{}/{monitor}", policy.name))
                .collect();
            held.sort();
            held
        };
        for (policy, monitor) in [("cancer", "inputs"), ("cancer", "renamed"), ("audit", "inputs"), ("churn", "inputs")]
        {
            let reader = format!("uid/{monitor}");
            acknowledged.deliver(&http, &servers, &key(policy), (monitor, &reader), &recorded).await.unwrap();
        }
        assert_eq!(to_a.lock().unwrap().len(), 4);

        acknowledged.keep_monitors(&key("cancer"), ["inputs", "new"].into_iter());
        assert_eq!(held(), ["audit/inputs", "cancer/inputs", "churn/inputs"], "only cancer's monitors are pruned");
        acknowledged.forget(&Gone::Deleted(key("cancer")));
        assert_eq!(held(), ["audit/inputs", "churn/inputs"]);
        // A relist that lists only churn: audit was deleted while the watch was down.
        acknowledged.forget(&Gone::AllBut([key("churn")].into()));
        assert_eq!(held(), ["churn/inputs"]);
        task.abort();
    }
}
