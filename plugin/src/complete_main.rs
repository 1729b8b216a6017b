//! `kubectl_complete-trainloop`: kubectl runs it to complete `kubectl trainloop ...`.

fn main() -> std::process::ExitCode {
    trainloop_plugin::complete_main()
}
