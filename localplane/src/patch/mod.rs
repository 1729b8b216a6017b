//! The four patch types of the Kubernetes API, as pure functions on JSON.

pub mod apply;
pub mod json;
pub mod merge;
pub mod strategic;
