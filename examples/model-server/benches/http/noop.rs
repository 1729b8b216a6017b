//! The no-op baseline: the bench binary itself, started again with
//! `--noop-server ADDR BODY_FILE`, serves one fixed answer on the model
//! server's HTTP stack (same runtime, same `serve`, same route shape), after
//! reading the request body as the real handler does.

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;
use trainloop_example_model_server::serve::serve;

pub fn run(address: &str, body_file: &str) -> ExitCode {
    match serve_fixed(address, body_file) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("no-op server: {error}");
            ExitCode::FAILURE
        }
    }
}

fn serve_fixed(address: &str, body_file: &str) -> Result<(), Box<dyn std::error::Error>> {
    let address: SocketAddr = address.parse()?;
    let answer = Bytes::from(std::fs::read(body_file)?);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(address).await?;
        let handler = move |_body: Bytes| {
            let answer = answer.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], answer).into_response() }
        };
        let router = Router::new().route("/v1/models/{name}", post(handler));
        serve(listener, router, std::future::pending()).await?;
        Ok(())
    })
}
