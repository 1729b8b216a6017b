//! The sources of the DriftPolicy monitors that do not read the model servers: a Prometheus
//! query (`prometheus`) and the firings of Alertmanager's webhook (`webhook`, fed by
//! `server::alertmanager`). Each is self-contained; the DriftPolicy controller calls them.

pub mod prometheus;
pub mod webhook;
