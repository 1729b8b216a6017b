//! trainloop: a Kubernetes operator for continuous training of ML models.
//!
//! The library holds the controllers, trigger sources and CLI, and re-exports the
//! API types (`trainloop-api`) and the trainer/serving contract
//! (`trainloop-contract`); the binary in `main.rs` wires them to a cluster.

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
