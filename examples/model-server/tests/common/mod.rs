//! What the in-process tests share: a small model and a server on loopback.

use std::sync::Arc;

use trainloop_contract::{FeatureSchema, sha256_digest};
use trainloop_example_model_server::load::LoadedModel;
use trainloop_example_model_server::{AppState, router};
use trainloop_example_trainer::config::Hyperparameters;
use trainloop_example_trainer::train::{TrainInputs, train};

/// A model on `x` (a number in [0, 100]) and `k` (category `a` or `b`).
pub fn small_model() -> LoadedModel {
    let mut csv = String::from("x,k,y\n");
    for i in 0..40 {
        csv.push_str(&format!("{i},{},{}\n", if i % 2 == 0 { "a" } else { "b" }, if i < 20 { "no" } else { "yes" }));
    }
    let trained = train(&TrainInputs {
        data: csv.into_bytes(),
        schema: FeatureSchema::from_json(
            r#"[{"name":"x","type":"number","min":0,"max":100},{"name":"k","type":"category","values":["a","b"]}]"#,
        )
        .expect("schema"),
        config: Hyperparameters::from_json(r#"{"target":"y"}"#).expect("config"),
        seed: 1,
    })
    .expect("training");
    LoadedModel { digest: sha256_digest(&trained.bytes), artifact: trained.artifact }
}

/// The router served on an ephemeral loopback port; aborting the task stops it.
pub struct InProcessServer {
    pub base: String,
    pub state: Arc<AppState>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for InProcessServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start_server() -> InProcessServer {
    let state = Arc::new(AppState::new("model"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let task = tokio::spawn(axum::serve(listener, router(state.clone())).into_future());
    trainloop_example_trainer::fetch::install_crypto_provider();
    InProcessServer { base, state, task }
}
