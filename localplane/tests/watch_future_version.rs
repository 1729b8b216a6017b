//! A watch from a resourceVersion the server has not reached (the client outlived a server that
//! lost its state) is refused as the real server refuses it: 504 Timeout, "Too large resource
//! version", so clients notice instead of waiting forever for events that never come.

mod common;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, WatchParams};

#[tokio::test]
async fn a_watch_from_the_future_is_refused() {
    let plane = common::start().await;
    // Without kube's default retries, which retry a 504 after its Retry-After up to 15 times.
    let mut config = plane.client_config().expect("a client config");
    config.default_namespace = "default".into();
    config.default_retry = false;
    let cms: Api<ConfigMap> = Api::default_namespaced(kube::Client::try_from(config).expect("client"));
    let error = match cms.watch(&WatchParams::default(), "999999999").await {
        Ok(stream) => Box::pin(stream).next().await.expect("an item").expect_err("an error"),
        Err(error) => error,
    };
    let kube::Error::Api(status) = &error else { panic!("{error:?}") };
    assert_eq!(status.code, 504, "{status:?}");
    assert!(status.message.starts_with("Too large resource version: 999999999, current: "), "{}", status.message);
    plane.shutdown().await;
}
