//! The live profile: counts of served rows on the reference bins.
//!
//! Predictions record without any lock or locked instruction: the counts are
//! `ThreadCounters`, one shard per recording thread, and a row's adds are one
//! update (a read sees the row in `samples` and in every feature, or not at
//! all). The counters only grow; a read sums them and hands the ledger what
//! was counted since the previous read.
//!
//! A drift monitor reads what was counted and acknowledges it once it has
//! recorded its judgement; only the acknowledged rows are subtracted, and
//! only for that reader (see `profile_ledger`), so no row is lost when a
//! reader stops between its read and its record, none counts twice, and two
//! readers never take each other's rows.

use std::sync::{Mutex, PoisonError};

use trainloop_contract::{Bins, FeatureProfile, FeatureValue};

use crate::profile_ledger::{AckError, Ledger, Totals};
use crate::thread_counters::ThreadCounters;

pub struct LiveProfile {
    /// The reference bins with zero counts: the shape of every snapshot.
    empty: FeatureProfile,
    /// Per feature, in schema order: how its values find their bin counters.
    binners: Vec<Binner>,
    /// Counter 0 counts rows (`samples`), counter `1 + offset + bin` a bin.
    counters: ThreadCounters,
    /// Taken by reads and acknowledgements only (never by predictions).
    reader: Mutex<Reader>,
}

/// Where a feature's bins start among the bin counters and, for number bins
/// whose edges are in order, the edges (looked up for every recorded value;
/// `None` for category bins and for edges out of order, which
/// `Bins::index_of` then looks up).
struct Binner {
    offset: usize,
    sorted_edges: Option<Box<[f64]>>,
}

struct Reader {
    ledger: Ledger,
    /// The counters as the previous read or peek summed them.
    summed: Vec<u64>,
}

/// What a read answers: the rows not yet acknowledged, and the cursor that
/// acknowledges exactly them.
#[derive(Debug)]
pub struct Read {
    pub profile: FeatureProfile,
    pub cursor: String,
}

impl Binner {
    /// `bins.index_of(value)`, `bins` being this feature's reference bins.
    fn bin_of(&self, bins: &Bins, value: &FeatureValue) -> Option<usize> {
        match (&self.sorted_edges, value) {
            // `Bins::number_index` is the partition point of `e <= x`; on
            // sorted edges that is how many edges are `<= x`, and counting
            // them is independent compares, not a binary search's chain of
            // dependent loads (a tenth of the request's time).
            (Some(edges), FeatureValue::Number(x)) => Some(edges.iter().filter(|e| **e <= *x).count()),
            _ => bins.index_of(value),
        }
    }
}

impl LiveProfile {
    /// An empty live profile on the bins of `reference`.
    pub fn new(reference: &FeatureProfile) -> Self {
        let empty = reference.empty_like();
        let mut bins = 0;
        let mut binners = Vec::with_capacity(empty.features.len());
        for feature in &empty.features {
            let sorted_edges = match &feature.bins {
                Bins::Number { edges } if edges.is_sorted() => Some(edges.as_slice().into()),
                _ => None,
            };
            binners.push(Binner { offset: bins, sorted_edges });
            bins += feature.counts.len();
        }
        LiveProfile {
            empty,
            binners,
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
                for ((binner, feature), value) in self.binners.iter().zip(&self.empty.features).zip(row) {
                    if let Some(bin) = binner.bin_of(&feature.bins, value) {
                        adder.add(1 + binner.offset + bin, 1);
                    }
                }
            }
            adder.add(0, (values.len() / width) as u64);
        });
    }

    /// Every row counted and not yet acknowledged by `reader`, and its cursor.
    pub fn read(&self, reader: &str) -> Read {
        let mut state = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
        let counted = self.counted_since_last_read(&mut state);
        let (totals, cursor) = state.ledger.read(reader, &counted);
        Read { profile: self.profile_of(&totals), cursor }
    }

    /// Every row counted since start, for a reader that names none.
    pub fn peek(&self) -> FeatureProfile {
        let mut state = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
        let counted = self.counted_since_last_read(&mut state);
        let totals = state.ledger.peek(&counted);
        self.profile_of(&totals)
    }

    /// Subtracts, for `reader`, the rows of the read `cursor` names, once.
    pub fn acknowledge(&self, reader: &str, cursor: &str) -> Result<(), AckError> {
        self.reader.lock().unwrap_or_else(PoisonError::into_inner).ledger.acknowledge(reader, cursor)
    }

    /// What the counters counted since the previous read or peek.
    fn counted_since_last_read(&self, state: &mut Reader) -> Totals {
        let summed = self.counters.sum();
        let since = |now: &u64, then: &u64| now.wrapping_sub(*then);
        let counted = Totals {
            samples: since(&summed[0], &state.summed[0]),
            counts: summed[1..].iter().zip(&state.summed[1..]).map(|(now, then)| since(now, then)).collect(),
        };
        state.summed = summed;
        counted
    }

    /// `totals` as a profile on the reference bins.
    fn profile_of(&self, totals: &Totals) -> FeatureProfile {
        let mut profile = self.empty.clone();
        profile.samples = totals.samples;
        for (feature, binner) in profile.features.iter_mut().zip(&self.binners) {
            let (offset, bins) = (binner.offset, feature.counts.len());
            feature.counts.copy_from_slice(&totals.counts[offset..offset + bins]);
        }
        profile
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
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
        let read = live.read("a");
        assert_eq!(read.profile, expected);
        assert_eq!(live.read("a").profile, expected, "not acknowledged: read again");
        live.acknowledge("a", &read.cursor).unwrap();
        assert_eq!(live.read("a").profile, reference.empty_like());
        live.record(&rows[0], 2);
        assert_eq!(live.read("a").profile.samples, 1);
        assert_eq!(live.peek().samples, 101, "a peek answers every row since start");
    }

    /// Many threads record while two readers read in a loop and acknowledge
    /// some reads (some twice, some after an older one, some never, as
    /// readers that stop and come back do), each on its own rhythm: every
    /// read holds whole rows, and each reader's acknowledged reads add up to
    /// exactly the rows sent, whatever the other acknowledged in between.
    #[test]
    fn acknowledged_reads_under_concurrent_recording_lose_and_double_nothing_per_reader() {
        const WRITERS: usize = 8;
        const ROWS_PER_WRITER: usize = 100_000;
        const READERS: [&str; 2] = ["policy-1/inputs", "policy-2/inputs"];
        let live = LiveProfile::new(&reference());
        let done = AtomicUsize::new(0);
        // Reads per reader: writers wait half-way for two of each, so that both overlap them.
        let reads_of = [AtomicUsize::new(0), AtomicUsize::new(0)];
        let judged: Vec<(u64, usize)> = std::thread::scope(|scope| {
            for w in 0..WRITERS {
                let (live, done, reads_of) = (&live, &done, &reads_of);
                scope.spawn(move || {
                    let single = row(w as f64, "b");
                    let batch: Vec<FeatureValue> = (0..50).flat_map(|i| row(f64::from(i), "a")).collect();
                    let mut sent = 0;
                    while sent < ROWS_PER_WRITER {
                        while sent == ROWS_PER_WRITER / 2 && reads_of.iter().any(|r| r.load(Ordering::SeqCst) < 2) {
                            std::thread::yield_now();
                        }
                        if sent % 100 == 0 {
                            live.record(&batch, 2);
                            sent += 50;
                        } else {
                            live.record(&single, 2);
                            sent += 1;
                        }
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                });
            }
            let readers: Vec<_> = READERS
                .iter()
                .enumerate()
                .map(|(rhythm, reader)| {
                    let (live, done, read_count) = (&live, &done, &reads_of[rhythm]);
                    scope.spawn(move || {
                        let (mut acknowledged, mut reads, mut older) = (0, 0, None);
                        while done.load(Ordering::SeqCst) < WRITERS {
                            let read = live.read(reader);
                            reads += 1;
                            read_count.fetch_add(1, Ordering::SeqCst);
                            for feature in &read.profile.features {
                                assert_eq!(feature.counts.iter().sum::<u64>(), read.profile.samples, "split a row");
                            }
                            match (reads + rhythm) % (4 + rhythm) {
                                // Never acknowledged: read again by the next.
                                0 => {}
                                1 => {
                                    live.acknowledge(reader, &read.cursor).unwrap();
                                    live.acknowledge(reader, &read.cursor).unwrap();
                                    acknowledged += read.profile.samples;
                                }
                                _ => {
                                    live.acknowledge(reader, &read.cursor).unwrap();
                                    acknowledged += read.profile.samples;
                                }
                            }
                            if let Some(older) = older.replace(read.cursor) {
                                live.acknowledge(reader, &older).unwrap();
                            }
                        }
                        (acknowledged, reads)
                    })
                })
                .collect();
            readers.into_iter().map(|reader| reader.join().unwrap()).collect()
        });
        for (reader, (acknowledged, reads)) in READERS.iter().zip(judged) {
            let last = live.read(reader);
            live.acknowledge(reader, &last.cursor).unwrap();
            assert!(reads > 1, "{reader} never overlapped the writers");
            assert_eq!(acknowledged + last.profile.samples, (WRITERS * ROWS_PER_WRITER) as u64, "{reader}");
            assert_eq!(live.read(reader).profile.samples, 0);
        }
    }
}
