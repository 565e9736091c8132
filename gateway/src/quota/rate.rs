//! How fast one source may ask: a token bucket per source, kept as the
//! generic cell rate algorithm (GCRA) keeps it, one number each: the time
//! at which the source's allowance is whole again. A source whose time has
//! passed holds a whole allowance, the same as one never seen, so it is
//! forgotten; the table holds only sources that asked recently.
//!
//! Our own small table rather than `governor`'s keyed limiter: that one
//! keeps every key it has seen in a map without bound until
//! `retain_recent` scans it all, which is the O(n) sweep under load this
//! replaces, and it has no bound on the number of sources. Here the table
//! is bounded (`sources_max`), ordered by that time so that forgetting
//! is O(log n) from the front, and when it is full the source nearest to
//! a whole allowance is forgotten: that only ever gives it its allowance
//! back early, so a flood of sources can make the limit looser for a few,
//! never refuse anyone.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;

use super::Refused;

/// A burst, refilled at a steady rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Requests a source may make at once after a quiet spell.
    pub burst_max: u32,
    /// Requests a source may make each minute, sustained.
    pub per_minute: u32,
}

/// A rate per source, for one kind of work.
pub struct PerSource {
    rate: Rate,
    sources_max: usize,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    /// Per source, the time (Unix milliseconds) its allowance is whole.
    whole_at: HashMap<IpAddr, i64>,
    /// The same, ordered by that time.
    by_time: BTreeSet<(i64, IpAddr)>,
}

impl Table {
    fn forget(&mut self, source: IpAddr, at: i64) {
        self.by_time.remove(&(at, source));
        self.whole_at.remove(&source);
    }
}

impl PerSource {
    pub fn new(rate: Rate, sources_max: usize) -> Self {
        Self {
            rate,
            sources_max: sources_max.max(1),
            table: Mutex::new(Table::default()),
        }
    }

    /// Milliseconds one request uses of the allowance.
    fn interval_ms(&self) -> i64 {
        (60_000 / i64::from(self.rate.per_minute.max(1))).max(1)
    }

    /// How far ahead of now a source's time may run and still be served:
    /// a burst of `burst_max` requests at once.
    fn tolerance_ms(&self) -> i64 {
        self.interval_ms() * i64::from(self.rate.burst_max.max(1) - 1)
    }

    /// Takes one request from `source`'s allowance at `now` (Unix
    /// seconds), or says how long until it has one.
    pub fn check(&self, source: IpAddr, now: i64) -> Result<(), Refused> {
        let now_ms = now.saturating_mul(1000);
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        // Each source is forgotten once, so this costs O(log n) a request
        // over time.
        while let Some(&(at, s)) = t.by_time.first() {
            if at > now_ms {
                break;
            }
            t.forget(s, at);
        }
        let known = t.whole_at.get(&source).copied();
        let start = known.unwrap_or(now_ms).max(now_ms);
        let ahead = start - now_ms;
        if ahead > self.tolerance_ms() {
            let wait_ms = ahead - self.tolerance_ms();
            return Err(Refused::TooFast {
                retry_after_secs: u64::try_from((wait_ms + 999) / 1000).unwrap_or(1).max(1),
            });
        }
        let next = start.saturating_add(self.interval_ms());
        match known {
            Some(old) => {
                t.by_time.remove(&(old, source));
            }
            None if t.whole_at.len() >= self.sources_max => {
                if let Some(&(at, s)) = t.by_time.first() {
                    t.forget(s, at);
                }
            }
            None => {}
        }
        t.whole_at.insert(source, next);
        t.by_time.insert((next, source));
        Ok(())
    }

    /// Sources with less than a whole allowance (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .whole_at
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(i: u32) -> IpAddr {
        IpAddr::from(std::net::Ipv4Addr::from(0xc000_0200 + i))
    }

    #[test]
    fn a_burst_then_the_steady_rate() {
        let l = PerSource::new(
            Rate {
                burst_max: 3,
                per_minute: 30,
            },
            16,
        );
        for _ in 0..3 {
            assert_eq!(l.check(ip(1), 1000), Ok(()));
        }
        // One every 2 s after the burst.
        assert_eq!(
            l.check(ip(1), 1000),
            Err(Refused::TooFast {
                retry_after_secs: 2
            })
        );
        assert_eq!(
            l.check(ip(1), 1001),
            Err(Refused::TooFast {
                retry_after_secs: 1
            })
        );
        assert_eq!(l.check(ip(1), 1002), Ok(()));
        assert!(l.check(ip(1), 1002).is_err());
        // A refused request takes nothing: 2 s later, one more.
        assert_eq!(l.check(ip(1), 1004), Ok(()));
        // After a quiet spell the whole burst again, and no more.
        for _ in 0..3 {
            assert_eq!(l.check(ip(1), 1100), Ok(()));
        }
        assert!(l.check(ip(1), 1100).is_err());
    }

    #[test]
    fn one_source_at_its_limit_does_not_slow_another() {
        let l = PerSource::new(
            Rate {
                burst_max: 2,
                per_minute: 1,
            },
            16,
        );
        assert!(l.check(ip(1), 0).is_ok());
        assert!(l.check(ip(1), 0).is_ok());
        for _ in 0..10_000 {
            assert!(l.check(ip(1), 0).is_err());
        }
        assert!(l.check(ip(2), 0).is_ok());
        assert!(l.check(ip(2), 0).is_ok());
        assert!(l.check(ip(2), 0).is_err());
    }

    #[test]
    fn sources_with_a_whole_allowance_are_forgotten() {
        let l = PerSource::new(
            Rate {
                burst_max: 5,
                per_minute: 60,
            },
            16,
        );
        l.check(ip(1), 0).unwrap();
        l.check(ip(2), 0).unwrap();
        l.check(ip(2), 0).unwrap();
        assert_eq!(l.tracked(), 2);
        // ip(1) is whole at 1 s, ip(2) at 2 s.
        l.check(ip(3), 1).unwrap();
        assert_eq!(l.tracked(), 2, "ip(1) forgotten, ip(3) new");
        l.check(ip(3), 10).unwrap();
        assert_eq!(l.tracked(), 1);
    }

    #[test]
    fn a_full_table_forgets_the_source_nearest_a_whole_allowance_never_the_flooder() {
        let l = PerSource::new(
            Rate {
                burst_max: 2,
                per_minute: 1,
            },
            3,
        );
        // The flooder spends its allowance first.
        l.check(ip(0), 0).unwrap();
        l.check(ip(0), 0).unwrap();
        assert!(l.check(ip(0), 0).is_err());
        // Then a crowd of new sources, one request each, far more than the
        // table holds: every one is served.
        for i in 1..1000 {
            assert_eq!(l.check(ip(i), 0), Ok(()), "source {i}");
            assert!(l.tracked() <= 3);
        }
        // The flooder, furthest from a whole allowance, was never the one
        // forgotten: it is still refused.
        assert!(l.check(ip(0), 0).is_err());
    }
}
