//! The plugin's completion executable, built with the end-to-end tests so that they know its
//! path (`CARGO_BIN_EXE_kubectl_complete-trainloop`) and run the current code.

fn main() -> std::process::ExitCode {
    trainloop_plugin::complete_main()
}
