//! What starts a training run: cron schedules and data changes.
//!
//! Both are pure building blocks for the pipeline controller: they compute what is due or what
//! the data looks like now, and leave deciding, recording and requeueing to the controller.

pub mod data;
pub mod interval;
pub mod poller;
pub mod schedule;

pub use data::{DataError, fingerprint, http_client};
pub use poller::{DataPoller, Reading, Target};
pub use schedule::{CronSchedule, Due, ScheduleError};
