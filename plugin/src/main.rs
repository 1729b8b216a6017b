//! `kubectl-trainloop`: kubectl runs it for `kubectl trainloop ...`; it also runs alone.

fn main() -> std::process::ExitCode {
    trainloop_plugin::main()
}
