//! The request latency histogram without a lock. prometheus-client's `Histogram` takes a mutex on
//! every observation, so concurrent requests queued on it; here each bucket and the sum are
//! atomic counters, and a scrape reads them one by one (a request finishing meanwhile may be in
//! a bucket but not yet in the sum: off by one request in a histogram scraped every few seconds).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// A handle: clones share the counts (as prometheus-client's metrics do), so the registry holds
/// one and the routes another.
#[derive(Clone, Debug)]
pub struct LatencyHistogram(Arc<Buckets>);

#[derive(Debug)]
struct Buckets {
    /// Upper bounds in seconds, ascending, the last one infinite.
    bounds: Vec<f64>,
    /// Observations per bucket (not cumulative), one counter per bound.
    counts: Vec<AtomicU64>,
    sum_nanos: AtomicU64,
}

impl LatencyHistogram {
    /// A histogram with these finite upper bounds (seconds, ascending) and `+Inf`.
    pub fn new(bounds: impl IntoIterator<Item = f64>) -> Self {
        let bounds: Vec<f64> =
            bounds.into_iter().filter(|b| b.is_finite()).chain(std::iter::once(f64::INFINITY)).collect();
        let counts = bounds.iter().map(|_| AtomicU64::new(0)).collect();
        LatencyHistogram(Arc::new(Buckets { bounds, counts, sum_nanos: AtomicU64::new(0) }))
    }

    pub fn observe(&self, elapsed: Duration) {
        let me = &self.0;
        let seconds = elapsed.as_secs_f64();
        // The first bound at or above the value: Prometheus buckets are `le`.
        let bucket = me.bounds.partition_point(|bound| *bound < seconds).min(me.counts.len() - 1);
        me.counts[bucket].fetch_add(1, Relaxed);
        me.sum_nanos.fetch_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }
}

impl EncodeMetric for LatencyHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let me = &self.0;
        let buckets: Vec<(f64, u64)> = me.bounds.iter().zip(&me.counts).map(|(b, c)| (*b, c.load(Relaxed))).collect();
        let count = buckets.iter().map(|(_, c)| c).sum();
        let sum = me.sum_nanos.load(Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::text::encode;
    use prometheus_client::metrics::histogram::Histogram;
    use prometheus_client::registry::{Metric, Registry};

    use super::*;

    /// The same observations give the same exposition as prometheus-client's own histogram.
    #[test]
    fn it_encodes_as_the_locking_histogram_does() {
        let bounds = [0.001, 0.002, 0.004];
        let (ours, theirs) = (LatencyHistogram::new(bounds), Histogram::new(bounds));
        for micros in [500, 1000, 1500, 2000, 3999, 4001, 90_000] {
            let elapsed = Duration::from_micros(micros);
            ours.observe(elapsed);
            theirs.observe(elapsed.as_secs_f64());
        }
        fn text(metric: impl Metric) -> String {
            let mut registry = Registry::default();
            registry.register("latency", "", metric);
            let mut text = String::new();
            encode(&mut text, &registry).unwrap();
            // The sums differ in the last bits (nanoseconds vs f64 additions).
            text.lines().filter(|l| !l.starts_with("latency_sum")).collect::<Vec<_>>().join("\n")
        }
        let ours_text = text(ours.clone());
        assert_eq!(ours_text, text(theirs));
        assert!(ours_text.contains("latency_bucket{le=\"0.002\"} 4"), "{ours_text}");
        assert_eq!(ours.0.sum_nanos.load(Relaxed), 103_000_000);
    }
}
