//! trainloop: a Kubernetes operator for continuous training of ML models.
//!
//! The library holds the API types of the four custom resources, the shared
//! artifact and profile formats of the trainer and serving contracts, and the
//! controllers; the binary in `main.rs` wires them to a cluster.

/// The custom resources, their own crate so that clients need not link the controllers.
pub use trainloop_api as api;
/// The artifact and profile contract, its own crate so that workloads need not link this one.
pub use trainloop_contract as artifact;
pub mod cli;
pub mod controllers;
pub mod leader;
pub mod monitors;
pub mod server;
pub mod stats;
pub mod triggers;
