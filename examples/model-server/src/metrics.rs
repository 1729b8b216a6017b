//! Prometheus metrics of the served model (factor 11: inputs, counts, outputs).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::exponential_buckets;
use prometheus_client::registry::Registry;

use crate::latency::LatencyHistogram;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassLabel {
    pub class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabel {
    /// `schema` (a feature broke the schema), `malformed` (not the protocol's
    /// shape), `not_found` (another model name), `not_ready` or `internal`.
    pub reason: String,
}

pub struct ServerMetrics {
    pub registry: Registry,
    pub predictions: Counter,
    pub latency: LatencyHistogram,
    pub predicted_class: Family<ClassLabel, Counter>,
    pub rejected: Family<RejectLabel, Counter>,
}

impl Default for ServerMetrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let predictions = Counter::default();
        // 50µs .. ~1.6s: a linear model answers in microseconds, queues in milliseconds.
        let latency = LatencyHistogram::new(exponential_buckets(0.000_05, 2.0, 16));
        let predicted_class = Family::<ClassLabel, Counter>::default();
        let rejected = Family::<RejectLabel, Counter>::default();
        registry.register(
            "trainloop_model_predictions",
            "Rows predicted (a request may hold many)",
            predictions.clone(),
        );
        registry.register(
            "trainloop_model_request_duration_seconds",
            "Time to answer a prediction request",
            latency.clone(),
        );
        registry.register("trainloop_model_predicted_class", "Predictions by predicted class", predicted_class.clone());
        registry.register(
            "trainloop_model_rejected_requests",
            "Prediction requests answered with an error, by reason",
            rejected.clone(),
        );
        ServerMetrics { registry, predictions, latency, predicted_class, rejected }
    }
}

impl ServerMetrics {
    pub fn reject(&self, reason: &str) {
        self.rejected.get_or_create(&RejectLabel { reason: reason.to_string() }).inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
