//! A bounded replay cache for signature nonces.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

/// Why [`NonceCache::check_and_insert`] refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Replay {
    /// The (keyid, nonce) pair was seen before and has not yet expired.
    #[error("nonce already used")]
    Duplicate,
    /// The cache holds `entries_max` unexpired nonces; try again later.
    #[error("replay cache full, retry later")]
    CacheFull,
    /// The signature's retention window already ended: it cannot be
    /// remembered, so it is not accepted.
    #[error("signature expired")]
    Expired,
}

impl Replay {
    /// A stable short code for logs.
    pub fn code(&self) -> &'static str {
        match self {
            Replay::Duplicate => "nonce-replayed",
            Replay::CacheFull => "nonce-cache-full",
            Replay::Expired => "nonce-expired",
        }
    }
}

/// Remembers every (keyid, nonce) pair until its signature can no longer
/// be accepted (`expires + grace_secs`, where `grace_secs` should be the
/// verifier's clock skew), so a captured request cannot be replayed while
/// it is still valid.
///
/// Memory is bounded by `entries_max`. When the cache is full of
/// unexpired nonces it refuses new requests ([`Replay::CacheFull`]) rather
/// than evicting: forgetting a nonce that is still within its validity
/// window would let whoever can fill the cache (for example by sending
/// many validly signed requests) replay a captured request. Refusing fails
/// closed: the worst a flood does is a temporary denial of service, which
/// ends by itself once entries pass their expiry, and never an accepted
/// replay. With a maximum signature lifetime `L` seconds, `entries_max / L`
/// is the sustained request rate the cache admits.
///
/// Time is always passed in; the cache never reads a clock. It is safe to
/// share between threads (`&self` methods, internal mutex).
#[derive(Debug)]
pub struct NonceCache {
    entries_max: usize,
    grace_secs: i64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// (keyid, nonce) -> retain-until time.
    seen: HashMap<(String, String), i64>,
    /// The same entries ordered by retain-until time, for purging.
    by_expiry: BTreeSet<(i64, String, String)>,
}

impl NonceCache {
    /// A cache holding at most `entries_max` nonces, each kept until its
    /// signature's `expires + grace_secs` (negative grace counts as 0).
    pub fn new(entries_max: usize, grace_secs: i64) -> Self {
        NonceCache {
            entries_max,
            grace_secs: grace_secs.max(0),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock cannot leave `Inner`
        // in a state that breaks its invariants worse than a lost insert,
        // so recover the guard rather than propagate the poison.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records (keyid, nonce) for a signature that expires at `expires`
    /// (unix seconds), refusing it if already present. Call this only
    /// after the signature verified, so unauthenticated requests cannot
    /// fill the cache.
    pub fn check_and_insert(
        &self,
        keyid: &str,
        nonce: &str,
        expires: i64,
        now: i64,
    ) -> Result<(), Replay> {
        let retain_until = expires.saturating_add(self.grace_secs);
        if retain_until < now {
            return Err(Replay::Expired);
        }
        let mut inner = self.lock();
        inner.purge(now);
        let key = (keyid.to_owned(), nonce.to_owned());
        if inner.seen.contains_key(&key) {
            return Err(Replay::Duplicate);
        }
        if inner.seen.len() >= self.entries_max {
            return Err(Replay::CacheFull);
        }
        inner
            .by_expiry
            .insert((retain_until, key.0.clone(), key.1.clone()));
        inner.seen.insert(key, retain_until);
        Ok(())
    }

    /// Drops every entry whose retention ended before `now`.
    pub fn purge(&self, now: i64) {
        self.lock().purge(now);
    }

    /// Number of remembered nonces (including any not yet purged).
    pub fn len(&self) -> usize {
        self.lock().seen.len()
    }

    /// True if no nonce is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The configured hard cap.
    pub fn entries_max(&self) -> usize {
        self.entries_max
    }
}

impl Inner {
    fn purge(&mut self, now: i64) {
        while let Some(first) = self.by_expiry.first() {
            if first.0 >= now {
                break;
            }
            if let Some((_, keyid, nonce)) = self.by_expiry.pop_first() {
                self.seen.remove(&(keyid, nonce));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_replay_until_expiry() {
        let cache = NonceCache::new(10, 5);
        assert_eq!(cache.check_and_insert("k", "n1", 100, 50), Ok(()));
        assert_eq!(
            cache.check_and_insert("k", "n1", 100, 60),
            Err(Replay::Duplicate)
        );
        // Same nonce under another key is a different entry.
        assert_eq!(cache.check_and_insert("k2", "n1", 100, 60), Ok(()));
        // Still remembered within the grace period.
        assert_eq!(
            cache.check_and_insert("k", "n1", 200, 105),
            Err(Replay::Duplicate)
        );
        // Purged after expires + grace.
        assert_eq!(cache.check_and_insert("k", "n1", 200, 106), Ok(()));
    }

    #[test]
    fn cap_refuses_instead_of_forgetting() {
        let cache = NonceCache::new(3, 0);
        for n in ["a", "b", "c"] {
            assert_eq!(cache.check_and_insert("k", n, 100, 0), Ok(()));
        }
        assert_eq!(
            cache.check_and_insert("k", "d", 100, 0),
            Err(Replay::CacheFull)
        );
        // Earlier nonces are still refused: nothing was evicted.
        assert_eq!(
            cache.check_and_insert("k", "a", 100, 1),
            Err(Replay::Duplicate)
        );
        assert_eq!(cache.len(), 3);
        // Once they expire there is room again.
        assert_eq!(cache.check_and_insert("k", "d", 300, 101), Ok(()));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn already_expired_is_refused() {
        let cache = NonceCache::new(3, 10);
        assert_eq!(
            cache.check_and_insert("k", "a", 100, 111),
            Err(Replay::Expired)
        );
        assert!(cache.is_empty());
        assert_eq!(cache.check_and_insert("k", "a", i64::MAX, i64::MIN), Ok(()));
    }
}
