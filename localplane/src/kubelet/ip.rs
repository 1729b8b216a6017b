//! Pods' loopback addresses: every pod gets its own 127.0.x.y (Services' ClusterIPs come from
//! the store's service range, `store/cluster_ips.rs`). Linux routes all of 127.0.0.0/8 to `lo`,
//! so binding them needs no setup.
//!
//! Several localplanes may run in one process (tests in parallel): an address is held
//! process-wide, so two pools of the same range never hand out the same one. Planes in other
//! processes cannot be seen; each pool starts at a random offset to keep them apart.
//! 127.0.0.1 (where the API server and everything else listens) is never handed out.

use std::collections::{BTreeSet, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Every address some pool of this process holds.
static HELD: Mutex<BTreeSet<Ipv4Addr>> = Mutex::new(BTreeSet::new());

fn held() -> MutexGuard<'static, BTreeSet<Ipv4Addr>> {
    HELD.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A pool of 127.<second>.x.y addresses, x in 0..=255, y in 1..=254.
#[derive(Debug)]
pub struct IpPool {
    second: u8,
    next: u32,
    in_use: HashSet<Ipv4Addr>,
}

const SLOTS: u32 = 256 * 254;

impl IpPool {
    pub fn new(second: u8) -> IpPool {
        let seed = u32::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..4].try_into().unwrap_or([0; 4]));
        IpPool::with_start(second, seed % SLOTS)
    }

    pub fn with_start(second: u8, start: u32) -> IpPool {
        IpPool { second, next: start % SLOTS, in_use: HashSet::new() }
    }

    fn addr(&self, slot: u32) -> Ipv4Addr {
        let x = (slot / 254) as u8;
        let y = (slot % 254) as u8 + 1;
        Ipv4Addr::new(127, self.second, x, y)
    }

    /// Whether an address belongs to this pool's range.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let o = ip.octets();
        o[0] == 127 && o[1] == self.second && o[3] != 0 && o[3] != 255 && ip != Ipv4Addr::LOCALHOST
    }

    /// The next address no pool of this process holds, or None when all 65,024 are taken.
    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        let mut held = held();
        for _ in 0..SLOTS {
            let ip = self.addr(self.next);
            self.next = (self.next + 1) % SLOTS;
            if ip != Ipv4Addr::LOCALHOST && held.insert(ip) {
                self.in_use.insert(ip);
                return Some(ip);
            }
        }
        None
    }

    /// Claims a specific address (e.g. one already recorded in an object); false if taken.
    pub fn claim(&mut self, ip: Ipv4Addr) -> bool {
        if !self.contains(ip) || !held().insert(ip) {
            return false;
        }
        self.in_use.insert(ip)
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        if self.in_use.remove(&ip) {
            held().remove(&ip);
        }
    }
}

/// A pool that goes (a plane shut down) gives its addresses back to the process.
impl Drop for IpPool {
    fn drop(&mut self) {
        let mut held = held();
        for ip in &self.in_use {
            held.remove(ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Pools are process-wide: each test uses a range of its own, so that tests running in
    // parallel do not take each other's addresses.

    #[test]
    fn unique_and_never_localhost() {
        let mut pool = IpPool::with_start(0, 0);
        let first = pool.allocate().unwrap();
        assert_eq!(first, Ipv4Addr::new(127, 0, 0, 2));
        let mut seen = HashSet::from([first]);
        for _ in 0..600 {
            let ip = pool.allocate().unwrap();
            assert!(seen.insert(ip));
            assert_ne!(ip.octets()[3], 0);
            assert_ne!(ip.octets()[3], 255);
        }
        pool.release(first);
        assert!(pool.claim(first));
        assert!(!pool.claim(first));
        assert!(!pool.claim(Ipv4Addr::LOCALHOST));
        assert!(!IpPool::new(1).contains(Ipv4Addr::new(127, 0, 1, 1)));
    }

    #[test]
    fn wraps_around_and_reports_exhaustion() {
        let mut pool = IpPool::with_start(201, SLOTS - 1);
        assert_eq!(pool.allocate(), Some(Ipv4Addr::new(127, 201, 255, 254)));
        assert_eq!(pool.allocate(), Some(Ipv4Addr::new(127, 201, 0, 1)));
        drop(pool);
        let mut small = IpPool::with_start(201, 0);
        for _ in 0..SLOTS {
            assert!(small.allocate().is_some());
        }
        assert_eq!(small.allocate(), None);
    }

    #[test]
    fn two_pools_of_one_range_never_hand_out_the_same_address() {
        // Two planes in one process, started at the same offset.
        let mut a = IpPool::with_start(202, 7);
        let mut b = IpPool::with_start(202, 7);
        let from_a: HashSet<Ipv4Addr> = (0..100).filter_map(|_| a.allocate()).collect();
        let from_b: HashSet<Ipv4Addr> = (0..100).filter_map(|_| b.allocate()).collect();
        assert_eq!((from_a.len(), from_b.len()), (100, 100));
        assert!(from_a.is_disjoint(&from_b));
        let taken = *from_a.iter().next().unwrap();
        assert!(!b.claim(taken), "an address of another pool cannot be claimed");
        a.release(taken);
        assert!(b.claim(taken));
        // A pool dropped (its plane shut down) frees what it held.
        let kept = *from_a.iter().find(|ip| **ip != taken).unwrap();
        drop(a);
        assert!(b.claim(kept));
    }
}
