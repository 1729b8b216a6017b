//! Prometheus metrics of the served model (factor 11: inputs, counts, outputs).

use std::sync::{Arc, OnceLock};

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::exponential_buckets;
use prometheus_client::registry::Registry;

use crate::latency::LatencyHistogram;
use crate::thread_counters::ThreadCounters;

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

/// Rows predicted, in total and per class of `target.classes`: added on
/// every request, so `ThreadCounters` (no shared cache line), not
/// prometheus-client's atomic counters.
#[derive(Debug)]
struct Predictions {
    /// Counter 0: rows; counter `1 + i`: rows predicted as class `i`.
    counts: ThreadCounters,
    /// The class names, once a model is loaded.
    classes: OnceLock<[String; 2]>,
}

/// `trainloop_model_predictions_total`.
#[derive(Debug)]
struct PredictionsTotal(Arc<Predictions>);

/// `trainloop_model_predicted_class_total{class}`: no series until a model is loaded.
#[derive(Debug)]
struct PredictedClass(Arc<Predictions>);

impl EncodeMetric for PredictionsTotal {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let rows = self.0.counts.sum().first().copied().unwrap_or(0);
        encoder.encode_counter::<NoLabelSet, _, u64>(&rows, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

impl EncodeMetric for PredictedClass {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let Some(classes) = self.0.classes.get() else { return Ok(()) };
        let counts = self.0.counts.sum();
        for (class, count) in classes.iter().zip(counts.iter().skip(1)) {
            let label = ClassLabel { class: class.clone() };
            encoder.encode_family(&label)?.encode_counter::<NoLabelSet, _, u64>(count, None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

pub struct ServerMetrics {
    pub registry: Registry,
    pub latency: LatencyHistogram,
    predictions: Arc<Predictions>,
    pub rejected: Family<RejectLabel, Counter>,
}

impl Default for ServerMetrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let predictions = Arc::new(Predictions { counts: ThreadCounters::new(3), classes: OnceLock::new() });
        // 50µs .. ~1.6s: a linear model answers in microseconds, queues in milliseconds.
        let latency = LatencyHistogram::new(exponential_buckets(0.000_05, 2.0, 16));
        let rejected = Family::<RejectLabel, Counter>::default();
        registry.register(
            "trainloop_model_predictions",
            "Rows predicted (a request may hold many)",
            PredictionsTotal(predictions.clone()),
        );
        registry.register(
            "trainloop_model_request_duration_seconds",
            "Time to answer a prediction request",
            latency.clone(),
        );
        registry.register(
            "trainloop_model_predicted_class",
            "Predictions by predicted class",
            PredictedClass(predictions.clone()),
        );
        registry.register(
            "trainloop_model_rejected_requests",
            "Prediction requests answered with an error, by reason",
            rejected.clone(),
        );
        ServerMetrics { registry, latency, predictions, rejected }
    }
}

impl ServerMetrics {
    /// Names the classes predictions are counted by (`target.classes`), once.
    pub fn name_classes(&self, classes: [String; 2]) {
        // One model per process: a second call would be a bug, and is ignored.
        let _ = self.predictions.classes.set(classes);
    }

    /// Counts predicted rows, `per_class[i]` of them as class `i`.
    pub fn count_predictions(&self, per_class: [u64; 2]) {
        self.predictions.counts.update(|adder| {
            adder.add(0, per_class[0] + per_class[1]);
            adder.add(1, per_class[0]);
            adder.add(2, per_class[1]);
        });
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predictions_and_classes_are_exposed_as_counters() {
        let metrics = ServerMetrics::default();
        metrics.count_predictions([1, 0]);
        assert!(!metrics.encode().contains("trainloop_model_predicted_class_total{"), "no classes before a model");
        metrics.name_classes(["no".into(), "yes".into()]);
        metrics.count_predictions([2, 3]);
        let text = metrics.encode();
        for line in [
            "# TYPE trainloop_model_predictions counter",
            "trainloop_model_predictions_total 6",
            "# TYPE trainloop_model_predicted_class counter",
            "trainloop_model_predicted_class_total{class=\"no\"} 3",
            "trainloop_model_predicted_class_total{class=\"yes\"} 3",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }
}
