//! Services' ClusterIPs. Each plane has a service range of its own, 127.X.0.0/16 with X in
//! 16..=127 (below 127.128.0.0/9, where the real planes of the end-to-end tests take theirs,
//! and clear of 127.0.x.y, where pods get their addresses), and allocates inside it alone.
//!
//! A plane reserves its range by holding an exclusive lock (`flock`) on a file named after it in
//! the OS temp dir for as long as the plane lives. Such a lock belongs to the open file, so two
//! planes never hold one range, whether they run in one process or in two (the bench's plane and
//! a test's, two `cargo test` binaries); the kernel drops it when the plane's store is dropped or
//! its process dies, so a crashed plane leaves no range taken.

use std::collections::HashSet;
use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// The second octets a range can have.
const SECOND_OCTETS: std::ops::RangeInclusive<u8> = 16..=127;
/// Addresses of a /16 less its network and broadcast addresses.
const USABLE: u32 = 65_534;

/// Why an explicit ClusterIP cannot be had (the real allocator's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NotInRange,
    Allocated,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::NotInRange => "the provided network does not match the current range",
            Refusal::Allocated => "provided IP is already allocated",
        })
    }
}

/// One plane's service range and the addresses its Services hold.
#[derive(Debug)]
pub struct ServiceRange {
    second: u8,
    /// Held locked while the range is this plane's.
    _lock: File,
    /// Where the search for a free address starts next (0 = the range's first address).
    next: u32,
    in_use: HashSet<Ipv4Addr>,
}

fn lock_dir() -> PathBuf {
    std::env::temp_dir().join("localplane-service-ranges")
}

impl ServiceRange {
    /// Reserves a range no other plane on this machine holds, trying them from a random one.
    pub fn reserve() -> io::Result<ServiceRange> {
        let count = SECOND_OCTETS.len();
        let start = uuid::Uuid::new_v4().as_bytes()[0] as usize % count;
        let order = SECOND_OCTETS.cycle().skip(start).take(count);
        ServiceRange::reserve_first_free(order)
    }

    /// Reserves the first of `candidates` that no other plane holds.
    pub fn reserve_first_free(candidates: impl IntoIterator<Item = u8>) -> io::Result<ServiceRange> {
        let dir = lock_dir();
        std::fs::create_dir_all(&dir)?;
        for second in candidates {
            let path = dir.join(format!("127.{second}.0.0-16.lock"));
            let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
            match file.try_lock() {
                Ok(()) => return Ok(ServiceRange { second, _lock: file, next: 0, in_use: HashSet::new() }),
                Err(TryLockError::WouldBlock) => continue,
                Err(TryLockError::Error(e)) => return Err(e),
            }
        }
        Err(io::Error::other(format!(
            "every service range 127.{{{}..{}}}.0.0/16 is held by another plane (locks in {})",
            SECOND_OCTETS.start(),
            SECOND_OCTETS.end(),
            dir.display()
        )))
    }

    /// `127.X.0.0/16`, as `--service-cluster-ip-range` would say it.
    pub fn cidr(&self) -> String {
        format!("127.{}.0.0/16", self.second)
    }

    /// The range's first address: the `kubernetes` Service's, as on a real cluster.
    pub fn first(&self) -> Ipv4Addr {
        self.address(0)
    }

    fn address(&self, offset: u32) -> Ipv4Addr {
        let host = offset + 1;
        Ipv4Addr::new(127, self.second, (host >> 8) as u8, host as u8)
    }

    /// Whether a Service may have `ip`: in the range (not its network or broadcast address)
    /// and held by no other Service.
    pub fn check(&self, ip: Ipv4Addr) -> Result<(), Refusal> {
        let [a, b, c, d] = ip.octets();
        let host = u32::from(c) << 8 | u32::from(d);
        if a != 127 || b != self.second || host == 0 || host > USABLE {
            return Err(Refusal::NotInRange);
        }
        if self.in_use.contains(&ip) {
            return Err(Refusal::Allocated);
        }
        Ok(())
    }

    /// A free address for a new Service (not yet held: `hold` it once the Service is stored).
    pub fn next_free(&mut self) -> Option<Ipv4Addr> {
        for _ in 0..USABLE {
            let ip = self.address(self.next);
            self.next = (self.next + 1) % USABLE;
            if !self.in_use.contains(&ip) {
                return Some(ip);
            }
        }
        None
    }

    pub fn hold(&mut self, ip: Ipv4Addr) {
        self.in_use.insert(ip);
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        self.in_use.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    use super::*;

    /// Ranges these tests prefer, apart from where `reserve` starts (a random one): planes of
    /// other tests running at once may still hold some, so tests compare, never name, them.
    const PREFERRED: std::ops::RangeInclusive<u8> = 100..=127;
    /// Set in a child process: reserve a range, print it, hold it until stdin closes.
    const CHILD: &str = "LOCALPLANE_TEST_RANGE_CHILD";

    fn second_octet(range: &str) -> u8 {
        range.split('.').nth(1).and_then(|s| s.parse().ok()).unwrap()
    }

    #[test]
    fn two_processes_never_hold_one_range() {
        if std::env::var_os(CHILD).is_some() {
            let range = ServiceRange::reserve_first_free(PREFERRED).unwrap();
            println!("reserved {}", range.cidr());
            io::copy(&mut io::stdin(), &mut io::sink()).unwrap();
            return;
        }
        // Both children try the same ranges in the same order.
        let children: Vec<_> = (0..2)
            .map(|_| {
                let mut child = Command::new(std::env::current_exe().unwrap())
                    .args(["--exact", "store::cluster_ips::tests::two_processes_never_hold_one_range", "--nocapture"])
                    .env(CHILD, "1")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap();
                let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
                let line = stdout.by_ref().map(Result::unwrap).find(|l| l.starts_with("reserved ")).unwrap();
                (child, stdout, line["reserved ".len()..].to_string())
            })
            .collect();
        let ranges: Vec<u8> = children.iter().map(|(_, _, range)| second_octet(range)).collect();
        assert_ne!(ranges[0], ranges[1], "two processes got one range");
        let mine = ServiceRange::reserve_first_free(PREFERRED).unwrap();
        assert!(!ranges.contains(&mine.second), "this process got a child's range");
        for (mut child, stdout, _) in children {
            drop(child.stdin.take());
            stdout.for_each(drop);
            assert!(child.wait().unwrap().success());
        }
        // The children are gone: their ranges are free again.
        let after: Vec<ServiceRange> = ranges.iter().map(|r| ServiceRange::reserve_first_free([*r]).unwrap()).collect();
        assert_eq!(after.len(), 2);
    }

    #[test]
    fn a_range_is_held_until_dropped() {
        let held = ServiceRange::reserve().unwrap();
        assert!(ServiceRange::reserve_first_free([held.second]).is_err());
        let second = held.second;
        drop(held);
        assert_eq!(ServiceRange::reserve_first_free([second]).unwrap().second, second);
    }

    #[test]
    fn addresses_inside_the_range_only_and_each_once() {
        let mut range = ServiceRange::reserve().unwrap();
        let s = range.second;
        assert_eq!(range.first(), Ipv4Addr::new(127, s, 0, 1));
        assert_eq!(range.next_free(), Some(range.first()));
        range.hold(range.first());
        assert_eq!(range.next_free(), Some(Ipv4Addr::new(127, s, 0, 2)));
        assert_eq!(range.check(range.first()), Err(Refusal::Allocated));
        assert_eq!(range.check(Ipv4Addr::new(127, s, 0, 255)), Ok(()));
        for outside in [Ipv4Addr::new(127, s, 0, 0), Ipv4Addr::new(127, s, 255, 255), Ipv4Addr::new(127, s ^ 1, 0, 9)] {
            assert_eq!(range.check(outside), Err(Refusal::NotInRange), "{outside}");
        }
        range.release(range.first());
        assert_eq!(range.check(range.first()), Ok(()));
        // The search wraps around and ends when every address is held.
        range.next = USABLE - 1;
        assert_eq!(range.next_free(), Some(Ipv4Addr::new(127, s, 255, 254)));
        for offset in 0..USABLE {
            range.hold(range.address(offset));
        }
        assert_eq!(range.next_free(), None);
    }
}
