//! An account's generation slots: how many replies it may generate at once. A slot is a lease
//! with an expiry, so a release that is lost frees itself; taking one is synchronous, so it is
//! exact however many turns race for the last slot.

use std::collections::HashMap;

use crate::limits::protocol::Slot;

#[derive(Default)]
pub struct Slots {
    /// Lease id → expiry (Unix ms).
    leases: HashMap<String, i64>,
}

impl Slots {
    /// Takes one of `max` slots for `ttl_ms`, or says when to retry (seconds, 1–2).
    pub fn acquire(&mut self, lease: &str, max: u64, ttl_ms: i64, now: i64) -> Slot {
        self.leases.retain(|_, expires| *expires > now);
        if self.leases.len() as u64 >= max {
            // A slot frees when a generation ends, usually within seconds; the lease expiry
            // is only the upper bound.
            let soonest = self.leases.values().min().copied().unwrap_or(now);
            return Slot {
                acquired: false,
                retry_after: ((soonest - now) / 1000).clamp(1, 2) as u64,
            };
        }
        self.leases.insert(lease.to_owned(), now + ttl_ms);
        Slot {
            acquired: true,
            retry_after: 0,
        }
    }

    /// Gives a slot back (a lease already gone is no error: release is idempotent).
    pub fn release(&mut self, lease: &str) {
        self.leases.remove(lease);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_slot_goes_to_one_lease_and_frees_on_release_or_expiry() {
        let mut slots = Slots::default();
        assert!(slots.acquire("a", 2, 60_000, 0).acquired);
        assert!(slots.acquire("b", 2, 60_000, 0).acquired);
        let refused = slots.acquire("c", 2, 60_000, 500);
        assert!(!refused.acquired);
        assert_eq!(refused.retry_after, 2);
        slots.release("a");
        slots.release("a");
        assert!(slots.acquire("c", 2, 60_000, 500).acquired);
        assert!(!slots.acquire("d", 2, 60_000, 500).acquired);
        // Leases b and c expire at 60 000 and 60 500: a lost release frees itself.
        assert!(slots.acquire("d", 2, 60_000, 60_001).acquired);
        assert!(slots.acquire("e", 2, 60_000, 60_501).acquired);
    }
}
