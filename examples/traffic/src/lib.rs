//! The traffic generator behind `trainloop-example-traffic`: samples rows of
//! a dataset, optionally shifts features to simulate drift, and sends them to
//! a model server's KServe V1 endpoint at a given rate.

pub mod send;
pub mod shift;

pub use send::{TrafficOptions, TrafficReport, send_traffic};
pub use shift::Shift;
