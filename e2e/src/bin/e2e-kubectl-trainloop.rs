//! The kubectl plugin, built with the end-to-end tests so that they know its path
//! (`CARGO_BIN_EXE_e2e-kubectl-trainloop`) and run the current code. Its own name, not the plugin
//! package's, so that one output file has one package; the tests link it on kubectl's PATH as
//! `kubectl-trainloop`.

fn main() -> std::process::ExitCode {
    trainloop_plugin::main()
}
