//! `trainloop-example-trainer`: the trainer contract as a process. Prints the
//! result JSON and writes it (or the failure) to the termination log.

use std::process::ExitCode;

use trainloop_example_trainer::output::write_termination_message;
use trainloop_example_trainer::{TrainerEnv, run};

fn main() -> ExitCode {
    let env = match TrainerEnv::from_env() {
        Ok(env) => env,
        Err(error) => {
            eprintln!("error: {error}");
            // Without the environment there is only the default path to report to.
            let path = std::env::var("TRAINLOOP_TERMINATION_LOG")
                .unwrap_or_else(|_| trainloop_example_trainer::trainer_env::DEFAULT_TERMINATION_LOG.into());
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
