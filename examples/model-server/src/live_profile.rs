//! The live profile: counts of served rows on the reference bins.
//!
//! Predictions record without any lock or locked instruction: the counts are
//! `ThreadCounters`, one shard per recording thread, and a row's adds are one
//! update (a read sees the row in `samples` and in every feature, or not at
//! all). The counters only grow; a read sums them and hands the ledger what
//! was counted since the previous read.
//!
//! A drift monitor reads what was counted and acknowledges it once it has
//! recorded its judgement; only the acknowledged rows are subtracted (see
//! `profile_ledger`), so no row is lost when a reader stops between its read
//! and its record, and none counts twice.

use std::sync::{Mutex, PoisonError};

use std::ops::Range;

use trainloop_contract::{Bins, FeatureProfile, FeatureValue};

use crate::profile_ledger::{AckError, Ledger, Totals};
use crate::thread_counters::ThreadCounters;

pub struct LiveProfile {
    /// The reference bins with zero counts: the shape of every snapshot.
    empty: FeatureProfile,
    /// Where each feature's bins start among the bin counters.
    offsets: Vec<usize>,
    /// Per feature, where its number bins' edges are in `edges` (`None` for
    /// category bins, and for edges out of order, which `Bins::index_of`
    /// then looks up): every feature's edges in one array, looked up for
    /// every recorded value.
    edge_ranges: Vec<Option<Range<usize>>>,
    edges: Vec<f64>,
    /// Counter 0 counts rows (`samples`), counter `1 + offset + bin` a bin.
    counters: ThreadCounters,
    /// Taken by reads and acknowledgements only (never by predictions).
    reader: Mutex<Reader>,
}

struct Reader {
    ledger: Ledger,
    /// The counters as the previous read summed them.
    summed: Vec<u64>,
}

/// What a read answers: the rows not yet acknowledged, and the cursor that
/// acknowledges exactly them.
#[derive(Debug)]
pub struct Read {
    pub profile: FeatureProfile,
    pub cursor: String,
}

impl LiveProfile {
    /// An empty live profile on the bins of `reference`.
    pub fn new(reference: &FeatureProfile) -> Self {
        let empty = reference.empty_like();
        let mut offsets = Vec::with_capacity(empty.features.len());
        let mut bins = 0;
        let (mut edge_ranges, mut edges) = (Vec::new(), Vec::new());
        for feature in &empty.features {
            offsets.push(bins);
            bins += feature.counts.len();
            edge_ranges.push(match &feature.bins {
                Bins::Number { edges: feature_edges } if feature_edges.is_sorted() => {
                    edges.extend_from_slice(feature_edges);
                    Some(edges.len() - feature_edges.len()..edges.len())
                }
                _ => None,
            });
        }
        LiveProfile {
            empty,
            offsets,
            edge_ranges,
            edges,
            counters: ThreadCounters::new(1 + bins),
            reader: Mutex::new(Reader { ledger: Ledger::new(bins), summed: vec![0; 1 + bins] }),
        }
    }

    /// Counts checked rows (schema order, `width` values each, as a flat
    /// slice); values of a mismatched type are skipped, as
    /// `FeatureProfile::observe` does.
    pub fn record(&self, values: &[FeatureValue], width: usize) {
        if width == 0 {
            return;
        }
        self.counters.update(|adder| {
            for row in values.chunks_exact(width) {
                for ((feature, offset), value) in (0..).zip(&self.offsets).zip(row) {
                    if let Some(bin) = self.bin_of(feature, value) {
                        adder.add(1 + offset + bin, 1);
                    }
                }
            }
            adder.add(0, (values.len() / width) as u64);
        });
    }

    /// `Bins::index_of` on feature `feature`'s reference bins.
    fn bin_of(&self, feature: usize, value: &FeatureValue) -> Option<usize> {
        match (self.edge_ranges.get(feature)?, value) {
            // `Bins::number_index` is the partition point of `e <= x`; on
            // sorted edges that is how many edges are `<= x`, and counting
            // them is independent compares, not a binary search's chain of
            // dependent loads (a tenth of the request's time).
            (Some(range), FeatureValue::Number(x)) => {
                Some(self.edges.get(range.clone())?.iter().filter(|e| **e <= *x).count())
            }
            _ => self.empty.features.get(feature)?.bins.index_of(value),
        }
    }

    /// Every row counted and not yet acknowledged, and its cursor.
    pub fn read(&self) -> Read {
        let mut reader = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
        let summed = self.counters.sum();
        let since = |now: &u64, then: &u64| now.wrapping_sub(*then);
        let drained = Totals {
            samples: since(&summed[0], &reader.summed[0]),
            counts: summed[1..].iter().zip(&reader.summed[1..]).map(|(now, then)| since(now, then)).collect(),
        };
        reader.summed = summed;
        let (totals, cursor) = reader.ledger.read(&drained);
        Read { profile: self.profile_of(&totals), cursor }
    }

    /// Subtracts the rows of the read `cursor` names, once.
    pub fn acknowledge(&self, cursor: &str) -> Result<(), AckError> {
        self.reader.lock().unwrap_or_else(PoisonError::into_inner).ledger.acknowledge(cursor)
    }

    /// `totals` as a profile on the reference bins.
    fn profile_of(&self, totals: &Totals) -> FeatureProfile {
        let mut profile = self.empty.clone();
        profile.samples = totals.samples;
        for (feature, offset) in profile.features.iter_mut().zip(&self.offsets) {
            let bins = feature.counts.len();
            feature.counts.copy_from_slice(&totals.counts[*offset..offset + bins]);
        }
        profile
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;
    use trainloop_contract::FeatureSchema;

    fn reference() -> FeatureProfile {
        let schema = FeatureSchema::from_json(
            r#"[{"name":"x","type":"number"},{"name":"k","type":"category","values":["a","b"]}]"#,
        )
        .unwrap();
        let rows: Vec<Vec<FeatureValue>> =
            (0..40).map(|i| vec![FeatureValue::Number(f64::from(i)), FeatureValue::Category("a".into())]).collect();
        FeatureProfile::reference(&schema, &rows, 4)
    }

    fn row(x: f64, k: &str) -> [FeatureValue; 2] {
        [FeatureValue::Number(x), FeatureValue::Category(k.into())]
    }

    #[test]
    fn counts_like_the_reference_binning_one_row_or_a_batch() {
        let reference = reference();
        let live = LiveProfile::new(&reference);
        let mut expected = reference.empty_like();
        let rows: Vec<[FeatureValue; 2]> =
            (0..100).map(|i| row(f64::from(i) - 20.0, ["a", "b", "zzz"][i as usize % 3])).collect();
        live.record(&rows[0], 2);
        expected.observe(&rows[0]);
        let batch: Vec<FeatureValue> = rows[1..].iter().flatten().cloned().collect();
        live.record(&batch, 2);
        rows[1..].iter().for_each(|r| expected.observe(r));
        let read = live.read();
        assert_eq!(read.profile, expected);
        assert_eq!(live.read().profile, expected, "not acknowledged: read again");
        live.acknowledge(&read.cursor).unwrap();
        assert_eq!(live.read().profile, reference.empty_like());
        live.record(&rows[0], 2);
        assert_eq!(live.read().profile.samples, 1);
    }

    /// Many threads record while another reads and acknowledges some reads
    /// (some twice, some after an older one, some never, as readers that stop
    /// and come back do): every read holds whole rows, and the acknowledged
    /// reads add up to exactly the rows sent. The writers go on until the
    /// reader is done, so that every read races recordings.
    #[test]
    fn acknowledged_reads_under_concurrent_recording_lose_and_double_nothing() {
        const WRITERS: usize = 8;
        const READS: usize = 20;
        let live = LiveProfile::new(&reference());
        let reading = std::sync::atomic::AtomicBool::new(true);
        let writing = std::sync::atomic::AtomicUsize::new(0);
        let (acknowledged, sent) = std::thread::scope(|scope| {
            let writers: Vec<_> = (0..WRITERS)
                .map(|w| {
                    let (live, reading, writing) = (&live, &reading, &writing);
                    scope.spawn(move || {
                        let single = row(w as f64, "b");
                        let batch: Vec<FeatureValue> = (0..50).flat_map(|i| row(f64::from(i), "a")).collect();
                        let mut sent = 0u64;
                        writing.fetch_add(1, Ordering::SeqCst);
                        while reading.load(Ordering::SeqCst) {
                            if sent.is_multiple_of(100) {
                                live.record(&batch, 2);
                                sent += 50;
                            } else {
                                live.record(&single, 2);
                                sent += 1;
                            }
                        }
                        sent
                    })
                })
                .collect();
            while writing.load(Ordering::SeqCst) < WRITERS {
                std::thread::yield_now();
            }
            let (mut acknowledged, mut older) = (0, None);
            for reads in 1..=READS {
                let read = live.read();
                for feature in &read.profile.features {
                    assert_eq!(feature.counts.iter().sum::<u64>(), read.profile.samples, "a read split a row");
                }
                match reads % 4 {
                    // Never acknowledged: read again by the next.
                    0 => {}
                    1 => {
                        live.acknowledge(&read.cursor).unwrap();
                        live.acknowledge(&read.cursor).unwrap();
                        acknowledged += read.profile.samples;
                    }
                    _ => {
                        live.acknowledge(&read.cursor).unwrap();
                        acknowledged += read.profile.samples;
                    }
                }
                if let Some(older) = older.replace(read.cursor) {
                    live.acknowledge(&older).unwrap();
                }
            }
            reading.store(false, Ordering::SeqCst);
            (acknowledged, writers.into_iter().map(|w| w.join().unwrap()).sum::<u64>())
        });
        let last = live.read();
        live.acknowledge(&last.cursor).unwrap();
        assert!(acknowledged > 0 && acknowledged < sent, "no read raced the writers: {acknowledged} of {sent}");
        assert_eq!(acknowledged + last.profile.samples, sent);
        assert_eq!(live.read().profile.samples, 0);
    }
}
