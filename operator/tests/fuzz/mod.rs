//! Generated hostile input for the operator, and the pure controller steps to feed it to.
#![allow(dead_code)] // each test binary uses a different part

pub mod mutate;
pub mod steps;
