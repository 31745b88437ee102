//! The key object's cached verification record, as a state machine. Reloading the record from
//! D1 takes an await, during which a revocation may arrive; a reload that started before the
//! revocation must not put the stale record back (else a revoked key would work until the
//! cache's TTL). Each revocation bumps an epoch, and a reload is accepted only if the epoch is
//! the one it started in.

/// A reload in flight: the epoch it started in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reload(u64);

#[derive(Debug)]
pub struct Cache<T> {
    record: Option<T>,
    epoch: u64,
}

impl<T> Default for Cache<T> {
    fn default() -> Self {
        Cache {
            record: None,
            epoch: 0,
        }
    }
}

impl<T: Clone> Cache<T> {
    pub fn get(&self) -> Option<&T> {
        self.record.as_ref()
    }

    /// Before reading D1.
    pub fn begin_reload(&self) -> Reload {
        Reload(self.epoch)
    }

    /// After reading D1: the record is kept (and returned) only if no revocation came between.
    pub fn finish_reload(&mut self, reload: Reload, record: Option<T>) -> Option<T> {
        if reload.0 != self.epoch {
            return None;
        }
        self.record.clone_from(&record);
        record
    }

    /// Updates the kept record (e.g. when `lastUsedAt` was written).
    pub fn set(&mut self, record: T) {
        self.record = Some(record);
    }

    /// The key was revoked: forget it, and void any reload in flight.
    pub fn revoke(&mut self) {
        self.record = None;
        self.epoch += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_that_raced_a_revocation_is_dropped() {
        let mut cache: Cache<&str> = Cache::default();
        let reload = cache.begin_reload();
        cache.revoke(); // lands while D1 is being read
        assert_eq!(cache.finish_reload(reload, Some("stale record")), None);
        assert_eq!(cache.get(), None, "the stale record is not kept");
        // A reload that starts after the revocation is taken as read.
        let reload = cache.begin_reload();
        assert_eq!(cache.finish_reload(reload, None), None);
        let reload = cache.begin_reload();
        assert_eq!(cache.finish_reload(reload, Some("fresh")), Some("fresh"));
        assert_eq!(cache.get(), Some(&"fresh"));
    }
}
