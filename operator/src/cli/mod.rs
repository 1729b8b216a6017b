//! What the binary's subcommands do, kept in the library so that tests can call them.

mod cluster;
mod crds;
pub mod drift;
mod logging;
mod run;

pub use cluster::{SERVICE_ACCOUNT_DIR, cluster_config, in_cluster_config};
pub use crds::{chart_crds, crds_yaml, print_crds, write_chart_crds, write_crds};
pub use logging::{LogFormat, init_logging};
pub use run::{RunArgs, check_crds_installed, run};
