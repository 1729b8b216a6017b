//! The example model server behind `trainloop-example-model-server`: loads a
//! trainloop model artifact and serves it over the Open Inference Protocol
//! (KServe V2) and KServe V1, with trainloop's live feature profile and
//! Prometheus metrics.

pub mod error;
pub mod json_scan;
pub mod latency;
pub mod live_profile;
pub mod load;
pub mod metrics;
pub mod predict;
pub mod process;
pub mod profile_ledger;
pub mod protocol_v1;
pub mod protocol_v2;
pub mod routes;
pub mod rows;
pub mod scratch;
pub mod serve;
pub mod settings;
pub mod state;
pub mod thread_counters;

pub use routes::router;
pub use settings::Settings;
pub use state::AppState;
