//! The plugin's completion executable, built with the end-to-end tests so that they know its
//! path (`CARGO_BIN_EXE_e2e-kubectl_complete-trainloop`) and run the current code; linked on
//! kubectl's PATH as `kubectl_complete-trainloop`, like the plugin.

fn main() -> std::process::ExitCode {
    trainloop_plugin::complete_main()
}
