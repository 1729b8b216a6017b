//! Watch streams: chunked JSON lines `{"type":..., "object":...}`. Replays history after the
//! requested resourceVersion, or sends the current state first (rv 0/unset, and streaming lists
//! with sendInitialEvents, which end that part with an `initial-events-end` bookmark). Expired
//! resourceVersions get an in-stream ERROR 410 (an HTTP 410 makes kube retry forever).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::App;
use super::errors::ApiError;
use super::ordered::event_line;
use super::table::{partial_metadata, table};
use crate::registry::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::Event;

/// How often idle watches get a BOOKMARK (real servers: about a minute).
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);

pub struct WatchParams {
    /// The type watched (events and bookmarks are in its version).
    pub rt: Arc<ResourceType>,
    /// The type its objects are stored as (see `ResourcePath::stored`).
    pub stored: Arc<ResourceType>,
    pub namespace: Option<String>,
    /// `None`: start with the current state ("0", unset, or sendInitialEvents).
    pub resource_version: Option<u64>,
    pub send_initial_events: bool,
    pub bookmarks: bool,
    pub timeout: Duration,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub meta_only: bool,
    /// `kubectl get -w`: each event carries a one-row Table.
    pub table: bool,
    /// The test's observer (`faults::OBSERVER_HEADER`): its stream is never ended by a fault.
    pub observer: bool,
}

impl WatchParams {
    fn wants(&self, key: &str, ns: &str, obj: &Value) -> bool {
        key == self.stored.key()
            && self.namespace.as_deref().is_none_or(|n| n == ns)
            && self.labels.matches(obj)
            && self.fields.matches(obj)
    }

    fn line(&self, etype: &str, obj: &Value) -> Bytes {
        let mut s = if self.table {
            let rv = obj.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("");
            event_line(etype, &table(&self.stored, &[obj], rv, "Metadata"))
        } else if self.meta_only {
            event_line(etype, &partial_metadata(obj))
        } else if let Some(c) = self.rt.conversion {
            event_line(etype, &c.to_served(obj))
        } else {
            event_line(etype, obj)
        };
        s.push('\n');
        Bytes::from(s)
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let (kind, av) = if self.meta_only {
            ("PartialObjectMetadata".to_string(), "meta.k8s.io/v1".to_string())
        } else {
            (self.rt.kind.clone(), self.rt.api_version())
        };
        let mut md = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            md["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let mut s = event_line("BOOKMARK", &json!({"kind": kind, "apiVersion": av, "metadata": md}));
        s.push('\n');
        Bytes::from(s)
    }
}

fn expired_line(msg: &str) -> Bytes {
    let mut s = event_line("ERROR", &ApiError::expired(msg).status());
    s.push('\n');
    Bytes::from(s)
}

pub fn watch(app: &App, p: WatchParams) -> Response {
    let mut first: Vec<Bytes> = vec![];
    let mut expired = false;
    let (mut live, start_rv) = {
        let st = app.store.lock();
        // A version from the server's future: the client watched a server that has since lost
        // its state. The real server refuses it the same way (after waiting briefly).
        if let Some(rv) = p.resource_version.filter(|rv| *rv > st.rv) {
            return ApiError::resource_version_too_large(rv, st.rv).into_response();
        }
        let live = app.store.subscribe();
        match p.resource_version {
            Some(rv) if !p.send_initial_events => match st.history.since(rv) {
                Ok(events) => {
                    for e in events.iter().filter(|e| p.wants(&e.key, &e.namespace, &e.object)) {
                        first.push(p.line(e.etype.as_str(), &e.object));
                    }
                }
                Err(compacted) => {
                    expired = true;
                    first.push(expired_line(&format!("too old resource version: {rv} ({compacted})")));
                }
            },
            _ => {
                for obj in st.list(&p.stored, p.namespace.as_deref()) {
                    if p.wants(
                        &p.stored.key(),
                        p.namespace.as_deref().unwrap_or(crate::store::namespace_of(&obj)),
                        &obj,
                    ) {
                        first.push(p.line("ADDED", &obj));
                    }
                }
                if p.send_initial_events {
                    first.push(p.bookmark(st.rv, true));
                }
            }
        }
        (live, st.rv)
    };

    let (mut tx, rx) = futures::channel::mpsc::channel::<Bytes>(256);
    let mut drops = app.faults.drops.subscribe();
    let mut compactions = app.store.compactions.subscribe();
    let shutdown = app.shutdown.clone();
    let timeout = match app.faults.watch_max().filter(|_| !p.observer) {
        Some(max) => p.timeout.min(max),
        None => p.timeout,
    };
    let observer = p.observer;
    tokio::spawn(async move {
        for b in first {
            if tx.send(b).await.is_err() {
                return;
            }
        }
        if expired {
            return;
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut seen = start_rv;
        let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
        ticker.tick().await;
        loop {
            let out: Option<Bytes> = tokio::select! {
                ev = live.recv() => match ev {
                    Ok(e) => on_event(&p, &e, &mut seen),
                    Err(RecvError::Lagged(_)) => {
                        let _ = tx.send(expired_line("watcher fell behind; the event history it needs was dropped")).await;
                        return;
                    }
                    Err(RecvError::Closed) => return,
                },
                _ = ticker.tick(), if p.bookmarks => Some(p.bookmark(seen, false)),
                _ = &mut deadline => return,
                _ = drops.changed(), if !observer => return,
                // Compaction only forgets history; an open stream needs none of it (the forced
                // 410 is the fault), so the observer's stream goes on.
                _ = compactions.changed(), if !observer => {
                    let _ = tx.send(expired_line("too old resource version: the history was compacted")).await;
                    return;
                }
                _ = shutdown.cancelled() => return,
            };
            if let Some(b) = out
                && tx.send(b).await.is_err()
            {
                return;
            }
        }
    });
    let body = Body::from_stream(rx.map(Ok::<Bytes, Infallible>));
    let mut resp = body.into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn on_event(p: &WatchParams, e: &Event, seen: &mut u64) -> Option<Bytes> {
    if e.rv <= *seen {
        return None;
    }
    *seen = e.rv;
    p.wants(&e.key, &e.namespace, &e.object).then(|| p.line(e.etype.as_str(), &e.object))
}
