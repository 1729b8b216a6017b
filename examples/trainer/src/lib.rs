//! The example trainer behind `trainloop-example-trainer`: reads a CSV, checks
//! it against the declared feature schema, fits a logistic regression with
//! preprocessing fitted on the training split only, evaluates it on the
//! held-out split and writes a deterministic artifact plus the trainer result.
//!
//! The library half exists so tests, the traffic generator and the model
//! server's integration test reuse the same loading code.

pub mod config;
pub mod error;
pub mod fetch;
pub mod fit;
pub mod metrics;
pub mod output;
pub mod process;
pub mod split;
pub mod table;
pub mod train;
pub mod trainer_env;

pub use error::TrainError;
pub use train::{TrainInputs, TrainedModel, run, train};
pub use trainer_env::TrainerEnv;
