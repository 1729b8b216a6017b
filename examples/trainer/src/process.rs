//! The trainer as a process, so that the binary and the end-to-end tests' build of it
//! (`trainloop-e2e`'s `example-trainer`) run the same code.

use std::process::ExitCode;

use crate::output::write_termination_message;
use crate::{TrainerEnv, run};

/// The whole trainer process: read the contract's environment, train, report.
pub fn main() -> ExitCode {
    let env = match TrainerEnv::from_env() {
        Ok(env) => env,
        Err(error) => {
            eprintln!("error: {error}");
            // Without the environment there is only the default path to report to.
            let path = std::env::var("TRAINLOOP_TERMINATION_LOG")
                .unwrap_or_else(|_| crate::trainer_env::DEFAULT_TERMINATION_LOG.into());
            let _ = write_termination_message(std::path::Path::new(&path), &error.to_string());
            return ExitCode::FAILURE;
        }
    };
    if let Some(run_name) = &env.run {
        eprintln!("training run {run_name}");
    }
    let (message, code) = match run(&env) {
        Ok(result) => {
            let message = result.to_message();
            println!("{message}");
            (message, ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("error: {error}");
            (error.to_string(), ExitCode::FAILURE)
        }
    };
    if let Err(e) = write_termination_message(&env.termination_log, &message) {
        eprintln!("warning: cannot write termination log {}: {e}", env.termination_log.display());
    }
    code
}
