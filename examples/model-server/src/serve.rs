//! The HTTP stack the server runs on, shared with the benchmark's no-op
//! baseline so that both measure the same axum and hyper setup.

use std::future::Future;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

/// Serves `router` until `shutdown` completes, then drains open requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Answers are one small write each: Nagle's algorithm would only hold
    // them back waiting for an ACK that delayed-ACK clients send late.
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {error}");
        }
    });
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}
