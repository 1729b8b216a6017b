//! Which counted rows a reader has acknowledged: the cursor arithmetic behind
//! `GET /trainloop/profile` and `POST /trainloop/profile/ack`.
//!
//! The server never forgets a row on a read: each read answers everything
//! counted and not yet acknowledged, with a cursor naming exactly those rows.
//! A reader that has recorded its judgement of them acknowledges the cursor,
//! and only then are they subtracted; rows counted after that read stay. So a
//! reader that stops between its read and its record loses nothing (it reads
//! the rows again), and one that acknowledges twice (after a restart, from
//! its record) subtracts once.
//!
//! Kept as running totals: `drained` is every row counted since start, each
//! read remembers the totals it answered up to, and an acknowledgement moves
//! the `acknowledged` baseline to those totals. A read answers `drained -
//! acknowledged`.

use std::collections::VecDeque;
use std::hash::{BuildHasher, RandomState};

/// Reads remembered until acknowledged: a reader acknowledges its latest
/// read, so only readers far behind (a hundred reads by others in between)
/// find theirs forgotten.
pub const HELD_READS: usize = 128;

/// Rows as counted: the number of rows and the flat per-bin counts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Totals {
    pub samples: u64,
    pub counts: Vec<u64>,
}

impl Totals {
    pub fn zero(bins: usize) -> Self {
        Totals { samples: 0, counts: vec![0; bins] }
    }

    pub fn add(&mut self, more: &Totals) {
        self.samples += more.samples;
        self.counts.iter_mut().zip(&more.counts).for_each(|(count, more)| *count += more);
    }

    /// `self - earlier`, where `earlier` is totals this one grew from.
    fn since(&self, earlier: &Totals) -> Totals {
        let counts = self.counts.iter().zip(&earlier.counts).map(|(now, then)| now.saturating_sub(*then)).collect();
        Totals { samples: self.samples.saturating_sub(earlier.samples), counts }
    }
}

/// Why an acknowledgement subtracted nothing.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum AckError {
    #[error("{0:?} is not a profile cursor")]
    Malformed(String),
    /// Another process's cursor (the server restarted, its rows went with
    /// it), or one this server never handed out.
    #[error("cursor {0:?} was not handed out by this server since it started")]
    NotOurs(String),
    /// Older than the reads held and newer than the last acknowledgement:
    /// its rows can no longer be told apart, so they stay counted.
    #[error("cursor {0:?} is no longer held (more than {HELD_READS} reads since)")]
    Forgotten(String),
}

pub struct Ledger {
    /// This process's reads, told apart from an earlier process's.
    boot: u64,
    /// Every row counted since start.
    drained: Totals,
    /// The rows of the newest acknowledged read, and its sequence number.
    acknowledged: (u64, Totals),
    /// Reads newer than it, oldest first, with the totals each answered up to.
    reads: VecDeque<(u64, Totals)>,
    next: u64,
}

impl Ledger {
    pub fn new(bins: usize) -> Self {
        // A random number per process, from the standard library's own seed.
        let boot = RandomState::new().hash_one(std::process::id());
        Ledger {
            boot,
            drained: Totals::zero(bins),
            acknowledged: (0, Totals::zero(bins)),
            reads: VecDeque::new(),
            next: 1,
        }
    }

    /// Takes in rows drained from the counters, then answers every row not
    /// yet acknowledged and the cursor that names them.
    pub fn read(&mut self, drained: &Totals) -> (Totals, String) {
        self.drained.add(drained);
        let sequence = self.next;
        self.next += 1;
        self.reads.push_back((sequence, self.drained.clone()));
        if self.reads.len() > HELD_READS {
            self.reads.pop_front();
        }
        (self.drained.since(&self.acknowledged.1), format!("{:016x}-{sequence}", self.boot))
    }

    /// Subtracts the rows `cursor` answered, once: acknowledging it again, or
    /// a cursor older than one acknowledged, changes nothing.
    pub fn acknowledge(&mut self, cursor: &str) -> Result<(), AckError> {
        let parsed = cursor
            .split_once('-')
            .and_then(|(boot, sequence)| Some((u64::from_str_radix(boot, 16).ok()?, sequence.parse::<u64>().ok()?)));
        let Some((boot, sequence)) = parsed else { return Err(AckError::Malformed(cursor.to_string())) };
        if boot != self.boot || sequence == 0 || sequence >= self.next {
            return Err(AckError::NotOurs(cursor.to_string()));
        }
        if sequence <= self.acknowledged.0 {
            return Ok(());
        }
        let Some(held) = self.reads.iter().position(|(read, _)| *read == sequence) else {
            return Err(AckError::Forgotten(cursor.to_string()));
        };
        let totals = self.reads[held].1.clone();
        self.reads.drain(..=held);
        self.acknowledged = (sequence, totals);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(samples: u64, counts: [u64; 2]) -> Totals {
        Totals { samples, counts: counts.to_vec() }
    }

    #[test]
    fn a_read_answers_the_unacknowledged_rows_and_its_acknowledgement_subtracts_exactly_those() {
        let mut ledger = Ledger::new(2);
        let (first, cursor) = ledger.read(&rows(3, [1, 2]));
        assert_eq!(first, rows(3, [1, 2]));
        // Not acknowledged: the next read answers them again, with the new rows.
        let (second, second_cursor) = ledger.read(&rows(1, [1, 0]));
        assert_eq!(second, rows(4, [2, 2]));
        // The first read's rows acknowledged: the rows counted after it stay.
        ledger.acknowledge(&cursor).unwrap();
        assert_eq!(ledger.read(&Totals::zero(2)).0, rows(1, [1, 0]));
        ledger.acknowledge(&cursor).unwrap();
        assert_eq!(ledger.read(&Totals::zero(2)).0, rows(1, [1, 0]), "twice subtracts once");
        ledger.acknowledge(&second_cursor).unwrap();
        ledger.acknowledge(&cursor).unwrap();
        assert_eq!(ledger.read(&Totals::zero(2)).0, rows(0, [0, 0]), "an older cursor changes nothing");
    }

    #[test]
    fn cursors_of_another_process_malformed_or_forgotten_subtract_nothing() {
        let mut ledger = Ledger::new(2);
        let (_, cursor) = ledger.read(&rows(1, [1, 0]));
        let mut restarted = Ledger::new(2);
        restarted.read(&Totals::zero(2));
        assert!(matches!(restarted.acknowledge(&cursor), Err(AckError::NotOurs(_))));
        assert!(matches!(ledger.acknowledge("x"), Err(AckError::Malformed(_))));
        let never = format!("{}99", &cursor[..cursor.len() - 1]);
        assert!(matches!(ledger.acknowledge(&never), Err(AckError::NotOurs(_))));
        for _ in 0..HELD_READS {
            ledger.read(&Totals::zero(2));
        }
        assert_eq!(ledger.acknowledge(&cursor), Err(AckError::Forgotten(cursor.clone())));
        assert_eq!(ledger.read(&Totals::zero(2)).0, rows(1, [1, 0]), "its rows stay counted");
    }
}
