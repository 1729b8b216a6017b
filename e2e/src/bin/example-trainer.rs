//! The example trainer, built with the end-to-end tests so that they know its path
//! (`CARGO_BIN_EXE_example-trainer`) and run the current code.

fn main() -> std::process::ExitCode {
    trainloop_example_trainer::process::main()
}
