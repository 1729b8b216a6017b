//! The example model server, built with the end-to-end tests so that they know its path
//! (`CARGO_BIN_EXE_example-model-server`) and run the current code.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    trainloop_example_model_server::process::main().await
}
