//! Which counted rows each reader has acknowledged: the cursor arithmetic
//! behind `GET /trainloop/profile?reader=` and `POST /trainloop/profile/ack`.
//!
//! Every reader (a drift monitor: one per monitor of a policy) has its own
//! cursors, so one reader's acknowledgement never changes what another reads:
//! two monitors watching one server each judge every row once.
//!
//! The server never forgets a row on a read: each read answers everything
//! counted and not yet acknowledged by that reader, with a cursor naming
//! exactly those rows. A reader that has recorded its judgement of them
//! acknowledges the cursor, and only then are they subtracted, for that
//! reader; rows counted after that read stay. So a reader that stops between
//! its read and its record loses nothing (it reads the rows again), and one
//! that acknowledges twice (after a restart, from its record) subtracts once.
//!
//! Kept as running totals: `counted` is every row counted since start, each
//! read remembers the totals it answered up to, and an acknowledgement moves
//! its reader's `acknowledged` baseline to those totals. A read answers
//! `counted - acknowledged`.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};

/// Readers held at once; the least recently seen is forgotten beyond it.
pub const READERS: usize = 64;

/// Reads held per reader until acknowledged. A reader acknowledges its
/// latest judged read before it reads again, so only a reader that reads
/// often without judging (below its minimum of rows) gets near it.
pub const HELD_READS: usize = 16;

/// The longest reader name, in bytes (a policy's uid and a monitor's name fit
/// many times over).
pub const READER_NAME_LIMIT: usize = 256;

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
    /// Older than the reader's reads held and newer than its last
    /// acknowledgement, or handed to another reader: its rows can no longer
    /// be told apart, so they stay counted.
    #[error("cursor {0:?} is not held for this reader (more than {HELD_READS} reads since, or another reader's)")]
    Forgotten(String),
    /// A reader the server does not hold (forgotten beyond [`READERS`]
    /// readers, or that never read): its next read starts anew.
    #[error("reader {0:?} is not held (more than {READERS} readers since it was last seen, or it never read)")]
    UnknownReader(String),
}

/// One reader's cursors.
struct Reader {
    /// The totals of its newest acknowledged read, and that read's sequence number.
    acknowledged: (u64, Totals),
    /// Its reads newer than that, oldest first, with the totals each answered up to.
    reads: VecDeque<(u64, Totals)>,
    /// When it last read or acknowledged, as a sequence number: who is forgotten first.
    seen: u64,
}

pub struct Ledger {
    /// This process's reads, told apart from an earlier process's.
    boot: u64,
    /// Every row counted since start.
    counted: Totals,
    readers: HashMap<String, Reader>,
    /// Where a reader the ledger does not hold starts: the totals when a
    /// reader was last forgotten (zero until then), so that a forgotten
    /// reader coming back never reads again a row it may have judged.
    newcomers_start: Totals,
    /// Numbers reads (for cursors) and every reader's last sighting.
    next: u64,
}

impl Ledger {
    pub fn new(bins: usize) -> Self {
        // A random number per process, from the standard library's own seed.
        let boot = RandomState::new().hash_one(std::process::id());
        Ledger {
            boot,
            counted: Totals::zero(bins),
            readers: HashMap::new(),
            newcomers_start: Totals::zero(bins),
            next: 1,
        }
    }

    /// Takes in rows drained from the counters, then answers every row
    /// `reader` has not acknowledged yet and the cursor that names them.
    pub fn read(&mut self, reader: &str, drained: &Totals) -> (Totals, String) {
        if !self.readers.contains_key(reader) && self.readers.len() >= READERS {
            self.forget_least_recently_seen();
        }
        self.counted.add(drained);
        let sequence = self.next;
        self.next += 1;
        let start = &self.newcomers_start;
        let held = self.readers.entry(reader.to_string()).or_insert_with(|| Reader {
            acknowledged: (0, start.clone()),
            reads: VecDeque::new(),
            seen: sequence,
        });
        held.seen = sequence;
        held.reads.push_back((sequence, self.counted.clone()));
        if held.reads.len() > HELD_READS {
            held.reads.pop_front();
        }
        (self.counted.since(&held.acknowledged.1), format!("{:016x}-{sequence}", self.boot))
    }

    /// Takes in rows drained from the counters, then answers every row
    /// counted since start, for a reader that acknowledges nothing (a person
    /// comparing with `trainloop drift compare`). Holds nothing for it.
    pub fn peek(&mut self, drained: &Totals) -> Totals {
        self.counted.add(drained);
        self.counted.clone()
    }

    /// Subtracts, for `reader`, the rows `cursor` answered, once:
    /// acknowledging it again, or a cursor older than one acknowledged,
    /// changes nothing.
    pub fn acknowledge(&mut self, reader: &str, cursor: &str) -> Result<(), AckError> {
        let parsed = cursor
            .split_once('-')
            .and_then(|(boot, sequence)| Some((u64::from_str_radix(boot, 16).ok()?, sequence.parse::<u64>().ok()?)));
        let Some((boot, sequence)) = parsed else { return Err(AckError::Malformed(cursor.to_string())) };
        if boot != self.boot || sequence == 0 || sequence >= self.next {
            return Err(AckError::NotOurs(cursor.to_string()));
        }
        let Some(held) = self.readers.get_mut(reader) else {
            return Err(AckError::UnknownReader(reader.to_string()));
        };
        held.seen = self.next;
        self.next += 1;
        if sequence <= held.acknowledged.0 {
            return Ok(());
        }
        let Some(position) = held.reads.iter().position(|(read, _)| *read == sequence) else {
            return Err(AckError::Forgotten(cursor.to_string()));
        };
        let totals = held.reads[position].1.clone();
        held.reads.drain(..=position);
        held.acknowledged = (sequence, totals);
        Ok(())
    }

    /// Forgets the reader seen least recently; readers unknown from now on
    /// start from here.
    fn forget_least_recently_seen(&mut self) {
        let oldest = self.readers.iter().min_by_key(|(_, reader)| reader.seen).map(|(name, _)| name.clone());
        if let Some(oldest) = oldest {
            self.readers.remove(&oldest);
            self.newcomers_start = self.counted.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(samples: u64, counts: [u64; 2]) -> Totals {
        Totals { samples, counts: counts.to_vec() }
    }

    fn none() -> Totals {
        Totals::zero(2)
    }

    #[test]
    fn a_read_answers_the_unacknowledged_rows_and_its_acknowledgement_subtracts_exactly_those() {
        let mut ledger = Ledger::new(2);
        let (first, cursor) = ledger.read("a", &rows(3, [1, 2]));
        assert_eq!(first, rows(3, [1, 2]));
        // Not acknowledged: the next read answers them again, with the new rows.
        let (second, second_cursor) = ledger.read("a", &rows(1, [1, 0]));
        assert_eq!(second, rows(4, [2, 2]));
        // The first read's rows acknowledged: the rows counted after it stay.
        ledger.acknowledge("a", &cursor).unwrap();
        assert_eq!(ledger.read("a", &none()).0, rows(1, [1, 0]));
        ledger.acknowledge("a", &cursor).unwrap();
        assert_eq!(ledger.read("a", &none()).0, rows(1, [1, 0]), "twice subtracts once");
        ledger.acknowledge("a", &second_cursor).unwrap();
        ledger.acknowledge("a", &cursor).unwrap();
        assert_eq!(ledger.read("a", &none()).0, rows(0, [0, 0]), "an older cursor changes nothing");
        assert_eq!(ledger.peek(&rows(1, [0, 1])), rows(5, [2, 3]), "a peek answers every row since start");
    }

    #[test]
    fn one_readers_acknowledgement_never_changes_what_another_reads() {
        let mut ledger = Ledger::new(2);
        let (a, a_cursor) = ledger.read("policy-1/inputs", &rows(3, [1, 2]));
        ledger.acknowledge("policy-1/inputs", &a_cursor).unwrap();
        // The second reader reads after the first acknowledged: it still sees every row.
        let (b, b_cursor) = ledger.read("policy-2/inputs", &rows(2, [2, 0]));
        assert_eq!((a, b), (rows(3, [1, 2]), rows(5, [3, 2])));
        assert_eq!(ledger.read("policy-1/inputs", &none()).0, rows(2, [2, 0]));
        // Its cursor is its own: another reader cannot acknowledge with it.
        assert_eq!(ledger.acknowledge("policy-1/inputs", &b_cursor), Err(AckError::Forgotten(b_cursor.clone())));
        ledger.acknowledge("policy-2/inputs", &b_cursor).unwrap();
        assert_eq!(ledger.read("policy-2/inputs", &none()).0, rows(0, [0, 0]));
        assert_eq!(ledger.read("policy-1/inputs", &none()).0, rows(2, [2, 0]));
    }

    #[test]
    fn cursors_of_another_process_malformed_or_forgotten_subtract_nothing() {
        let mut ledger = Ledger::new(2);
        let (_, cursor) = ledger.read("a", &rows(1, [1, 0]));
        let mut restarted = Ledger::new(2);
        restarted.read("a", &none());
        assert!(matches!(restarted.acknowledge("a", &cursor), Err(AckError::NotOurs(_))));
        assert!(matches!(ledger.acknowledge("a", "x"), Err(AckError::Malformed(_))));
        let never = format!("{}99", &cursor[..cursor.len() - 1]);
        assert!(matches!(ledger.acknowledge("a", &never), Err(AckError::NotOurs(_))));
        assert_eq!(ledger.acknowledge("b", &cursor), Err(AckError::UnknownReader("b".into())));
        for _ in 0..HELD_READS {
            ledger.read("a", &none());
        }
        assert_eq!(ledger.acknowledge("a", &cursor), Err(AckError::Forgotten(cursor.clone())));
        assert_eq!(ledger.read("a", &none()).0, rows(1, [1, 0]), "its rows stay counted");
    }

    #[test]
    fn readers_beyond_the_cap_forget_the_least_recently_seen_which_then_starts_from_its_forgetting() {
        let mut ledger = Ledger::new(2);
        let (_, cursor) = ledger.read("early", &rows(4, [4, 0]));
        ledger.read("kept", &none());
        for reader in 2..READERS {
            ledger.read(&format!("reader-{reader}"), &none());
        }
        // Seen again: "kept" is no longer the least recently seen, "early" is.
        ledger.read("kept", &none());
        let (newcomer, _) = ledger.read("newcomer", &rows(1, [0, 1]));
        assert_eq!(newcomer, rows(1, [0, 1]), "a newcomer starts from the forgetting: the rows counted since");
        assert_eq!(ledger.readers.len(), READERS);
        assert_eq!(ledger.acknowledge("early", &cursor), Err(AckError::UnknownReader("early".into())));
        // Coming back forgets another reader, and starts from there: never a row it may have judged.
        let (back, _) = ledger.read("early", &rows(2, [1, 1]));
        assert_eq!(back, rows(2, [1, 1]));
        assert_eq!(ledger.read("kept", &none()).0, rows(7, [5, 2]), "held readers keep their own cursors");
    }
}
