//! The kubectl plugin, built with the end-to-end tests so that they know its path
//! (`CARGO_BIN_EXE_kubectl-trainloop`) and run the current code.

fn main() -> std::process::ExitCode {
    trainloop_plugin::main()
}
