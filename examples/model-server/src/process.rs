//! The model server as a process, so that the binary and the end-to-end tests' build of it
//! (`trainloop-e2e`'s `example-model-server`) run the same code.

use std::process::ExitCode;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::load::load_model;
use crate::serve::serve;
use crate::{AppState, Settings, router};

/// The whole server process: log to stderr, bind, load the model, serve until SIGTERM or
/// Ctrl-C. Shared by the binary and the end-to-end tests' copy of it.
pub async fn main() -> ExitCode {
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(false).init();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            tracing::error!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match TcpListener::bind(settings.bind).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!("cannot bind {}: {error}", settings.bind);
            return ExitCode::FAILURE;
        }
    };
    let state = Arc::new(AppState::new(settings.model_name.clone()));
    let server = tokio::spawn(serve(listener, router(state.clone()), shutdown_signal()));
    tracing::info!("listening on {}, loading {}", settings.bind, settings.model_uri);
    match load_model(&settings).await {
        Ok(model) => {
            tracing::info!("model {} loaded ({})", settings.model_name, model.digest);
            state.set_model(model);
        }
        Err(error) => {
            tracing::error!("cannot load the model: {error}");
            return ExitCode::from(error.exit_code());
        }
    }
    match server.await {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(error)) => {
            tracing::error!("server failed: {error}");
            ExitCode::FAILURE
        }
        Err(error) => {
            tracing::error!("server task failed: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
