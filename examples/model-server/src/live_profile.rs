//! The live profile: counts of served rows on the reference bins.
//!
//! Predictions record without any lock: the counts are atomics. A drift
//! monitor reads what was counted and acknowledges it once it has recorded
//! its judgement; only the acknowledged rows are subtracted, and only for
//! that reader (see `profile_ledger`), so no row is lost when a reader stops
//! between its read and its record, none counts twice, and two readers never
//! take each other's rows. Each read holds whole rows
//! (`samples` and every feature's counts agree). For that there are two banks
//! of counters. Writers record into the active one; a read makes the other
//! bank active, waits for the writers still inside the old bank (a few
//! increments each), then drains the old bank's counts into the ledger's
//! totals, ready for the next flip.
//!
//! The counters are sharded by thread (each shard with its two banks, merged
//! on read), so that the server's worker threads do not pull the same cache
//! lines back and forth on every prediction.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use trainloop_contract::{FeatureProfile, FeatureValue};

use crate::profile_ledger::{AckError, Ledger, Totals};

pub struct LiveProfile {
    /// The reference bins with zero counts: the shape of every snapshot.
    empty: FeatureProfile,
    /// Where each feature's bins start in a bank's flat `counts`.
    offsets: Vec<usize>,
    /// Per shard, its two banks.
    shards: Box<[[Bank; 2]]>,
    /// Index of the bank writers record into, in every shard.
    active: AtomicUsize,
    /// Taken by reads and acknowledgements only (never by predictions), so
    /// two reads do not flip the banks under each other.
    ledger: Mutex<Ledger>,
}

/// What a read answers: the rows not yet acknowledged, and the cursor that
/// acknowledges exactly them.
#[derive(Debug)]
pub struct Read {
    pub profile: FeatureProfile,
    pub cursor: String,
}

/// More shards than a server has worker threads, typically: threads take
/// them in turn, so workers rarely share one.
const SHARDS: usize = 16;

/// The shard of the calling thread.
fn shard_of_this_thread() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|shard| *shard)
}

/// Aligned so that banks of different shards share no cache line.
#[derive(Default)]
#[repr(align(128))]
struct Bank {
    samples: AtomicU64,
    counts: Box<[AtomicU64]>,
    /// Recordings in progress in this bank.
    writers: AtomicU64,
}

impl Bank {
    fn new(bins: usize) -> Self {
        Bank { counts: (0..bins).map(|_| AtomicU64::new(0)).collect(), ..Bank::default() }
    }
}

impl LiveProfile {
    /// An empty live profile on the bins of `reference`.
    pub fn new(reference: &FeatureProfile) -> Self {
        let empty = reference.empty_like();
        let mut offsets = Vec::with_capacity(empty.features.len());
        let mut bins = 0;
        for feature in &empty.features {
            offsets.push(bins);
            bins += feature.counts.len();
        }
        LiveProfile {
            empty,
            offsets,
            shards: (0..SHARDS).map(|_| [Bank::new(bins), Bank::new(bins)]).collect(),
            active: AtomicUsize::new(0),
            ledger: Mutex::new(Ledger::new(bins)),
        }
    }

    /// Counts checked rows (schema order, `width` values each, as a flat
    /// slice); values of a mismatched type are skipped, as
    /// `FeatureProfile::observe` does.
    pub fn record(&self, values: &[FeatureValue], width: usize) {
        if width == 0 {
            return;
        }
        let bank = self.enter();
        let total_bins = bank.counts.len();
        if values.len() <= total_bins {
            // A few rows: one atomic add per value.
            for row in values.chunks_exact(width) {
                self.for_each_bin(row, |bin| {
                    bank.counts[bin].fetch_add(1, Ordering::Relaxed);
                });
            }
        } else {
            // A batch: count locally first, then one atomic add per bin hit,
            // so large requests do not bounce the counters between cores.
            let mut local = vec![0u64; total_bins];
            for row in values.chunks_exact(width) {
                self.for_each_bin(row, |bin| local[bin] += 1);
            }
            for (counter, &count) in bank.counts.iter().zip(&local) {
                if count > 0 {
                    counter.fetch_add(count, Ordering::Relaxed);
                }
            }
        }
        bank.samples.fetch_add((values.len() / width) as u64, Ordering::Relaxed);
        // Release: a read that sees this writer gone sees its counts too.
        bank.writers.fetch_sub(1, Ordering::Release);
    }

    /// Registers a writer in the active bank. The re-check after registering
    /// pairs with `drain`'s flip-then-wait (all four accesses
    /// sequentially consistent): either the read waits for this writer, or
    /// this writer sees the flip and moves to the new bank.
    fn enter(&self) -> &Bank {
        let shard = &self.shards[shard_of_this_thread()];
        loop {
            let index = self.active.load(Ordering::SeqCst);
            let bank = &shard[index];
            bank.writers.fetch_add(1, Ordering::SeqCst);
            if self.active.load(Ordering::SeqCst) == index {
                return bank;
            }
            bank.writers.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn for_each_bin(&self, row: &[FeatureValue], mut count: impl FnMut(usize)) {
        for ((feature, offset), value) in self.empty.features.iter().zip(&self.offsets).zip(row) {
            if let Some(bin) = feature.bins.index_of(value) {
                count(offset + bin);
            }
        }
    }

    /// Every row counted and not yet acknowledged by `reader`, and its cursor.
    pub fn read(&self, reader: &str) -> Read {
        let mut ledger = self.ledger.lock().unwrap_or_else(PoisonError::into_inner);
        let (totals, cursor) = ledger.read(reader, &self.drain());
        Read { profile: self.profile_of(&totals), cursor }
    }

    /// Every row counted since start, for a reader that names none.
    pub fn peek(&self) -> FeatureProfile {
        let mut ledger = self.ledger.lock().unwrap_or_else(PoisonError::into_inner);
        let totals = ledger.peek(&self.drain());
        self.profile_of(&totals)
    }

    /// Subtracts, for `reader`, the rows of the read `cursor` names, once.
    pub fn acknowledge(&self, reader: &str, cursor: &str) -> Result<(), AckError> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner).acknowledge(reader, cursor)
    }

    /// Takes the counts recorded since the last drain and zeroes them, in one
    /// step. Called with the ledger locked: one flip at a time.
    fn drain(&self) -> Totals {
        let old = self.active.load(Ordering::SeqCst);
        self.active.store(1 - old, Ordering::SeqCst);
        // Writers still in the old banks are between two atomic adds: wait
        // them out (microseconds; yield in case one was preempted).
        for shard in &self.shards {
            while shard[old].writers.load(Ordering::SeqCst) != 0 {
                std::thread::yield_now();
            }
        }
        let mut totals = Totals::zero(self.empty.features.iter().map(|f| f.counts.len()).sum());
        for bank in self.shards.iter().map(|shard| &shard[old]) {
            totals.samples += bank.samples.swap(0, Ordering::Relaxed);
            for (total, counter) in totals.counts.iter_mut().zip(&bank.counts) {
                *total += counter.swap(0, Ordering::Relaxed);
            }
        }
        totals
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
