//! Counters that every request adds to, with one writer per shard: each thread
//! that records takes a shard of its own for as long as it lives, so its adds
//! are plain loads and stores on cache lines no other core writes (an atomic
//! read-modify-write costs a locked instruction, and a counter shared by two
//! worker threads moves its cache line between their cores on every request).
//!
//! A reader sums the shards. Each shard carries a sequence number (a seqlock):
//! odd while its writer is between the first and the last add of one update,
//! so a reader takes every update whole or not at all (a live profile's row is
//! counted in `samples` and in every feature at once). A reader that keeps
//! colliding with a busy writer raises the shard's flag, and the writer holds
//! its next update until that one shard is read (a read takes nanoseconds):
//! reads always finish, and correctness never depends on the flag.
//!
//! Threads beyond the number of shards share one overflow shard behind a
//! mutex: correct, only slower, and only with more recording threads than a
//! server has workers.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use std::sync::{Mutex, PoisonError};

/// More shards than a server has worker threads (and than tests run threads).
pub const SHARDS: usize = 32;

/// Which shard indices a living thread holds; the same index in every
/// `ThreadCounters`, so one claim per thread serves them all.
static TAKEN: [AtomicBool; SHARDS] = [const { AtomicBool::new(false) }; SHARDS];

/// A thread's shard index, given back when the thread ends.
struct Claim(Option<usize>);

impl Claim {
    fn take() -> Self {
        // Acquire: the last holder's adds happen before this thread's.
        Claim(
            (0..SHARDS).find(|&i| TAKEN[i].compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok()),
        )
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(index) = self.0 {
            // Release: the next holder sees this thread's last adds.
            TAKEN[index].store(false, Ordering::Release);
        }
    }
}

thread_local! {
    static CLAIM: Claim = Claim::take();
}

/// The calling thread's shard, or `None` when all are held (or the thread is
/// ending and its claim is gone).
fn shard_of_this_thread() -> Option<usize> {
    CLAIM.try_with(|claim| claim.0).ok().flatten()
}

/// Counters per cache line: shards start on a line of their own.
const PER_LINE: usize = 16;

#[repr(align(128))]
struct Line([AtomicU64; PER_LINE]);

impl Line {
    fn zero() -> Self {
        Line([const { AtomicU64::new(0) }; PER_LINE])
    }
}

/// A shard's words before its counters: the sequence number, the reader's flag.
const HEADER: usize = 2;
const SEQUENCE: usize = 0;
const READER_WAITING: usize = 1;

pub struct ThreadCounters {
    counters: usize,
    /// Lines per shard: the header, then the counters.
    stride: usize,
    /// `SHARDS` shards, then the overflow shard.
    lines: Box<[Line]>,
    overflow: Mutex<()>,
}

/// One update's adds into the calling thread's shard.
pub struct Adder<'a> {
    shard: &'a [Line],
    counters: usize,
}

impl Adder<'_> {
    /// Adds `n` to counter `index` (ignored past the last counter).
    pub fn add(&mut self, index: usize, n: u64) {
        if index < self.counters
            && let Some(cell) = cell(self.shard, HEADER + index)
        {
            // The only writer of this shard: no read-modify-write needed.
            cell.store(cell.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
        }
    }
}

fn cell(shard: &[Line], index: usize) -> Option<&AtomicU64> {
    shard.get(index / PER_LINE).map(|line| &line.0[index % PER_LINE])
}

impl ThreadCounters {
    pub fn new(counters: usize) -> Self {
        let stride = (HEADER + counters).div_ceil(PER_LINE);
        ThreadCounters {
            counters,
            stride,
            lines: (0..stride * (SHARDS + 1)).map(|_| Line::zero()).collect(),
            overflow: Mutex::new(()),
        }
    }

    fn shard(&self, index: usize) -> &[Line] {
        &self.lines[index * self.stride..(index + 1) * self.stride]
    }

    /// Runs one update's adds; readers see all of them or none.
    pub fn update(&self, adds: impl FnOnce(&mut Adder<'_>)) {
        match shard_of_this_thread() {
            Some(index) => self.update_shard(self.shard(index), adds),
            None => {
                let _one_writer = self.overflow.lock().unwrap_or_else(PoisonError::into_inner);
                self.update_shard(self.shard(SHARDS), adds);
            }
        }
    }

    fn update_shard(&self, shard: &[Line], adds: impl FnOnce(&mut Adder<'_>)) {
        let [sequence, reader_waiting] = [SEQUENCE, READER_WAITING].map(|word| &shard[0].0[word]);
        let mut waited = 0u32;
        while reader_waiting.load(Ordering::Relaxed) != 0 {
            back_off(&mut waited);
        }
        let before = sequence.load(Ordering::Relaxed);
        sequence.store(before.wrapping_add(1), Ordering::Relaxed);
        // The odd sequence is visible before any add (pairs with `sum`'s acquire fence).
        fence(Ordering::Release);
        adds(&mut Adder { shard, counters: self.counters });
        sequence.store(before.wrapping_add(2), Ordering::Release);
    }

    /// Every counter summed over the shards, each shard's updates whole.
    pub fn sum(&self) -> Vec<u64> {
        let mut totals = vec![0u64; self.counters];
        let mut shard_counts = vec![0u64; self.counters];
        for index in 0..=SHARDS {
            let shard = self.shard(index);
            read_whole(shard, &mut shard_counts);
            for (total, count) in totals.iter_mut().zip(&shard_counts) {
                *total = total.wrapping_add(*count);
            }
        }
        totals
    }
}

impl std::fmt::Debug for ThreadCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.sum()).finish()
    }
}

/// Reads that collide this often with a writer ask it to wait.
const PATIENCE: u32 = 2;

/// A shard's counters as of a moment when no update was half done.
fn read_whole(shard: &[Line], counts: &mut [u64]) {
    let [sequence, reader_waiting] = [SEQUENCE, READER_WAITING].map(|word| &shard[0].0[word]);
    let mut attempts = 0u32;
    loop {
        let before = sequence.load(Ordering::Acquire);
        if before.is_multiple_of(2) {
            for (index, count) in counts.iter_mut().enumerate() {
                *count = cell(shard, HEADER + index).map_or(0, |cell| cell.load(Ordering::Relaxed));
            }
            fence(Ordering::Acquire);
            if sequence.load(Ordering::Relaxed) == before {
                break;
            }
        }
        if attempts == PATIENCE {
            reader_waiting.store(1, Ordering::Relaxed);
        }
        back_off(&mut attempts);
    }
    if attempts > PATIENCE {
        reader_waiting.store(0, Ordering::Relaxed);
    }
}

/// An update or a read takes nanoseconds, but its thread may have been
/// preempted: spin a little, then let others run.
fn back_off(attempts: &mut u32) {
    *attempts += 1;
    if attempts.is_multiple_of(64) {
        std::thread::yield_now();
    } else {
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn sums_the_adds_of_every_thread() {
        let counters = ThreadCounters::new(40);
        std::thread::scope(|scope| {
            for t in 0..4u64 {
                let counters = &counters;
                scope.spawn(move || {
                    for _ in 0..1000 {
                        counters.update(|adder| {
                            adder.add(0, 1);
                            adder.add(39, t);
                            adder.add(40, 1); // past the end: ignored
                        });
                    }
                });
            }
        });
        let totals = counters.sum();
        assert_eq!((totals[0], totals[39], totals.len()), (4000, 6000, 40));
    }

    /// More threads than shards at once: the overflow shard takes the rest,
    /// nothing is lost, and every read sees updates whole.
    #[test]
    fn threads_beyond_the_shards_share_the_overflow_and_reads_see_whole_updates() {
        const THREADS: usize = SHARDS + 8;
        const UPDATES: u64 = 2000;
        let counters = ThreadCounters::new(3);
        let started = AtomicUsize::new(0);
        let finished = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..THREADS {
                let (counters, started, finished) = (&counters, &started, &finished);
                scope.spawn(move || {
                    // All alive at once, so that some find no free shard.
                    started.fetch_add(1, Ordering::SeqCst);
                    while started.load(Ordering::SeqCst) < THREADS {
                        std::thread::yield_now();
                    }
                    for _ in 0..UPDATES {
                        counters.update(|adder| (0..3).for_each(|i| adder.add(i, 1)));
                    }
                    finished.fetch_add(1, Ordering::SeqCst);
                });
            }
            let mut reads = 0;
            while finished.load(Ordering::SeqCst) < THREADS {
                let totals = counters.sum();
                assert!(totals[0] == totals[1] && totals[1] == totals[2], "a read split an update: {totals:?}");
                reads += 1;
            }
            assert!(reads > 0);
        });
        assert_eq!(counters.sum(), vec![THREADS as u64 * UPDATES; 3]);
    }
}
