//! `trainloop-example-trainer`: the trainer contract as a process. Prints the
//! result JSON and writes it (or the failure) to the termination log.

fn main() -> std::process::ExitCode {
    trainloop_example_trainer::process::main()
}
