//! An account's generation slots: how many replies it may generate at once. A slot is a lease
//! with an expiry, so a release that is lost frees itself; taking one is synchronous, so it is
//! exact however many turns race for the last slot. The object mirrors these leases in its
//! SQLite, so a restart (an eviction, a deploy) neither frees nor forgets a running one.

use std::collections::HashMap;

use crate::accounts::model::Admission;

#[derive(Default)]
pub struct Slots {
    /// Lease id → expiry (Unix ms).
    leases: HashMap<String, i64>,
}

/// What the account's day looks like to an admission: its tokens so far and its quota (0: none).
#[derive(Debug, Clone, Copy)]
pub struct Day {
    pub used: u64,
    pub quota: u64,
}

impl Slots {
    pub fn from_leases(leases: impl IntoIterator<Item = (String, i64)>) -> Slots {
        Slots {
            leases: leases.into_iter().collect(),
        }
    }

    /// Takes one of `max` slots for `ttl_ms` if the day is under its quota. Faults in the
    /// contract's order: no free slot (retry in 1–2 s), then the quota; a refusal takes nothing.
    pub fn admit(&mut self, lease: &str, max: u64, ttl_ms: i64, day: Day, now: i64) -> Admission {
        self.leases.retain(|_, expires| *expires > now);
        if self.leases.len() as u64 >= max {
            // A slot frees when a generation ends, usually within seconds; the lease expiry
            // is only the upper bound.
            let soonest = self.leases.values().min().copied().unwrap_or(now);
            return Admission::Busy {
                retry_after: ((soonest - now) / 1000).clamp(1, 2) as u64,
            };
        }
        if day.quota > 0 && day.used >= day.quota {
            return Admission::OverQuota;
        }
        self.leases.insert(lease.to_owned(), now + ttl_ms);
        Admission::Admitted
    }

    /// Keeps a slot that is still held for `ttl_ms` more; false when it is not (released or
    /// expired), which then stays free.
    pub fn confirm(&mut self, lease: &str, ttl_ms: i64, now: i64) -> bool {
        match self.leases.get_mut(lease) {
            Some(expires) if *expires > now => {
                *expires = now + ttl_ms;
                true
            }
            _ => false,
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

    const OPEN: Day = Day { used: 0, quota: 0 };

    #[test]
    fn the_last_slot_goes_to_one_lease_and_frees_on_release_or_expiry() {
        let mut slots = Slots::default();
        assert_eq!(slots.admit("a", 2, 60_000, OPEN, 0), Admission::Admitted);
        assert_eq!(slots.admit("b", 2, 60_000, OPEN, 0), Admission::Admitted);
        assert_eq!(
            slots.admit("c", 2, 60_000, OPEN, 500),
            Admission::Busy { retry_after: 2 }
        );
        slots.release("a");
        slots.release("a");
        assert_eq!(slots.admit("c", 2, 60_000, OPEN, 500), Admission::Admitted);
        assert!(matches!(
            slots.admit("d", 2, 60_000, OPEN, 500),
            Admission::Busy { .. }
        ));
        // Leases b and c expire at 60 000 and 60 500: a lost release frees itself.
        assert_eq!(
            slots.admit("d", 2, 60_000, OPEN, 60_001),
            Admission::Admitted
        );
        assert_eq!(
            slots.admit("e", 2, 60_000, OPEN, 60_501),
            Admission::Admitted
        );
    }

    #[test]
    fn a_held_slot_counts_at_once_and_is_kept_only_while_still_held() {
        let mut slots = Slots::default();
        // Held for 30 s before the caller's verdict: the last slot is taken.
        assert_eq!(slots.admit("a", 1, 30_000, OPEN, 0), Admission::Admitted);
        assert!(matches!(
            slots.admit("b", 1, 60_000, OPEN, 10),
            Admission::Busy { .. }
        ));
        // Confirmed as its generation starts: kept past the hold's end.
        assert!(slots.confirm("a", 600_000, 20));
        assert!(matches!(
            slots.admit("b", 1, 60_000, OPEN, 31_000),
            Admission::Busy { .. }
        ));
        // A generation that ended (released) before its confirmation stays released.
        slots.release("a");
        assert!(!slots.confirm("a", 600_000, 31_000));
        assert_eq!(
            slots.admit("b", 1, 60_000, OPEN, 31_000),
            Admission::Admitted
        );
        // Nor is an expired hold brought back.
        assert_eq!(
            slots.admit("c", 2, 30_000, OPEN, 31_000),
            Admission::Admitted
        );
        assert!(!slots.confirm("c", 600_000, 61_001));
    }

    #[test]
    fn concurrency_answers_before_the_quota_and_a_spent_day_takes_no_slot() {
        let spent = Day {
            used: 1000,
            quota: 1000,
        };
        let mut slots = Slots::from_leases([("a".to_owned(), 60_000)]);
        assert!(matches!(
            slots.admit("b", 1, 60_000, spent, 0),
            Admission::Busy { .. }
        ));
        slots.release("a");
        assert_eq!(slots.admit("b", 1, 60_000, spent, 0), Admission::OverQuota);
        // Refused for the quota, it holds nothing: the next turn under quota gets the slot.
        let under = Day { used: 999, ..spent };
        assert_eq!(slots.admit("c", 1, 60_000, under, 0), Admission::Admitted);
    }
}
