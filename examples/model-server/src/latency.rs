//! The request latency histogram without a lock. prometheus-client's `Histogram` takes a mutex on
//! every observation, so concurrent requests queued on it; here each bucket and the sum are
//! `ThreadCounters` (plain adds into the observing thread's own shard), summed on a scrape.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use crate::thread_counters::ThreadCounters;

/// When a request started (see `LatencyHistogram::start`).
#[derive(Clone, Copy, Debug)]
pub struct Started(u64);

/// A handle: clones share the counts (as prometheus-client's metrics do), so the registry holds
/// one and the routes another.
#[derive(Clone, Debug)]
pub struct LatencyHistogram(Arc<Buckets>);

#[derive(Debug)]
struct Buckets {
    clock: quanta::Clock,
    /// Upper bounds in seconds, ascending, the last one infinite.
    bounds: Vec<f64>,
    /// Per bound, the fewest nanoseconds above it (see `first_above`).
    first_above: Vec<u64>,
    /// Observations per bucket (not cumulative), one counter per bound, then
    /// the sum of the observations in nanoseconds.
    counts: ThreadCounters,
}

impl LatencyHistogram {
    /// A histogram with these finite upper bounds (seconds, ascending) and `+Inf`.
    pub fn new(bounds: impl IntoIterator<Item = f64>) -> Self {
        let bounds: Vec<f64> =
            bounds.into_iter().filter(|b| b.is_finite()).chain(std::iter::once(f64::INFINITY)).collect();
        let counts = ThreadCounters::new(bounds.len() + 1);
        let first_above = bounds.iter().map(|&bound| first_above(bound)).collect();
        LatencyHistogram(Arc::new(Buckets { clock: quanta::Clock::new(), bounds, first_above, counts }))
    }

    /// Now, for `observe_since`: the CPU's time-stamp counter, read by
    /// quanta (calibrated once against the OS clock) where it is invariant.
    /// Two `Instant::now()` were a tenth of a single-row prediction's own
    /// work: 18 ns each through the vDSO on the benchmark machine, against 8.
    pub fn start(&self) -> Started {
        Started(self.0.clock.raw())
    }

    /// Observes the time since `started`.
    pub fn observe_since(&self, started: Started) {
        let clock = &self.0.clock;
        self.observe_nanos(clock.delta_as_nanos(started.0, clock.raw()));
    }

    fn observe_nanos(&self, nanos: u64) {
        let me = &self.0;
        let bucket = me.bucket(nanos);
        me.counts.update(|adder| {
            adder.add(bucket, 1);
            adder.add(me.bounds.len(), nanos);
        });
    }
}

impl Buckets {
    /// The first bound at or above `nanos` (Prometheus buckets are `le`): the
    /// bounds are ascending, so it is the number of bounds below the value,
    /// counted with independent compares rather than a binary search's chain
    /// of dependent loads. (`u64::MAX` nanoseconds, 584 years, count as one
    /// fewer: `first_above` is `u64::MAX` for a bound that none is above.)
    fn bucket(&self, nanos: u64) -> usize {
        let nanos = nanos.min(u64::MAX - 1);
        self.first_above.iter().filter(|above| **above <= nanos).count().min(self.bounds.len() - 1)
    }
}

/// The fewest nanoseconds whose `Duration::as_secs_f64` is above `bound`
/// (seconds), or `u64::MAX` if no `u64` of them is: an observation is above
/// the bound exactly when it has at least these many nanoseconds, so each one
/// is compared as an integer, not converted to seconds first.
fn first_above(bound: f64) -> u64 {
    let above = |nanos: u64| Duration::from_nanos(nanos).as_secs_f64() > bound;
    if above(0) {
        return 0;
    }
    if !above(u64::MAX) {
        return u64::MAX;
    }
    // `above` fails at `low` and holds at `high`, and from there on.
    let (mut low, mut high) = (0u64, u64::MAX);
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if above(middle) {
            high = middle;
        } else {
            low = middle;
        }
    }
    high
}

impl EncodeMetric for LatencyHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let me = &self.0;
        let counts = me.counts.sum();
        let buckets: Vec<(f64, u64)> = me.bounds.iter().copied().zip(counts.iter().copied()).collect();
        let count = buckets.iter().map(|(_, c)| c).sum();
        let sum = counts.get(me.bounds.len()).copied().unwrap_or(0) as f64 / 1e9;
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

    #[test]
    fn a_request_timed_from_its_start_is_observed_once() {
        let histogram = LatencyHistogram::new([60.0]);
        let started = histogram.start();
        histogram.observe_since(started);
        let counts = histogram.0.counts.sum();
        assert_eq!(counts[..2], [1, 0], "one observation, under a minute");
        assert!(counts[2] < 60_000_000_000, "{counts:?}");
    }

    /// Around each bound, an observation lands in the bucket that comparing its seconds with
    /// the bounds gives (as prometheus-client's histogram compares them).
    #[test]
    fn nanoseconds_find_the_bucket_their_seconds_find() {
        let bounds = [-1.0, 0.0, 1e-9, 0.3, 0.000_05, 0.000_1, 0.1 + 0.2, 1.5e-9, 7.0, 1e300];
        let histogram = LatencyHistogram::new(bounds);
        for bound in bounds {
            let around = first_above(bound);
            for nanos in around.saturating_sub(3)..=around.saturating_add(3) {
                let seconds = Duration::from_nanos(nanos).as_secs_f64();
                let expected = histogram.0.bounds.iter().filter(|b| **b < seconds).count().min(bounds.len());
                assert_eq!(histogram.0.bucket(nanos), expected, "{nanos} ns, bound {bound}");
            }
        }
    }

    /// The same observations give the same exposition as prometheus-client's own histogram.
    #[test]
    fn it_encodes_as_the_locking_histogram_does() {
        let bounds = [0.001, 0.002, 0.004];
        let (ours, theirs) = (LatencyHistogram::new(bounds), Histogram::new(bounds));
        for micros in [500, 1000, 1500, 2000, 3999, 4001, 90_000] {
            let elapsed = Duration::from_micros(micros);
            ours.observe_nanos(micros * 1000);
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
        assert_eq!(ours.0.counts.sum()[bounds.len() + 1], 103_000_000);
    }
}
