//! Loopback address allocation: every pod gets its own 127.0.x.y and every Service its own
//! 127.1.x.y. Linux routes all of 127.0.0.0/8 to `lo`, so binding them needs no setup.
//!
//! Several localplanes may run on one machine (tests run in parallel), so each pool starts at a
//! random offset; 127.0.0.1 (where the API server and everything else listens) is never handed out.

use std::collections::HashSet;
use std::net::Ipv4Addr;

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

    /// The next free address, or None when all 65,024 are taken.
    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        for _ in 0..SLOTS {
            let ip = self.addr(self.next);
            self.next = (self.next + 1) % SLOTS;
            if ip != Ipv4Addr::LOCALHOST && self.in_use.insert(ip) {
                return Some(ip);
            }
        }
        None
    }

    /// Claims a specific address (e.g. one already recorded in an object); false if taken.
    pub fn claim(&mut self, ip: Ipv4Addr) -> bool {
        self.contains(ip) && self.in_use.insert(ip)
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        self.in_use.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut pool = IpPool::with_start(1, SLOTS - 1);
        assert_eq!(pool.allocate(), Some(Ipv4Addr::new(127, 1, 255, 254)));
        assert_eq!(pool.allocate(), Some(Ipv4Addr::new(127, 1, 0, 1)));
        let mut small = IpPool::with_start(1, 0);
        for _ in 0..SLOTS {
            assert!(small.allocate().is_some());
        }
        assert_eq!(small.allocate(), None);
    }
}
