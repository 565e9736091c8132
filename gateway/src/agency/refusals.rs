//! Unauthenticated refusals, counted and logged in aggregate.
//!
//! A request whose signature is not accepted trusts nothing it says, and
//! anyone can send millions: logging each would let a stranger grow the
//! permanent log (and fill the disk) at the rate they can send. So each is
//! only counted here, by reason and by the key id it *claimed*; every
//! interval the gateway appends one `access.refused` summary per reason
//! (format 2): the interval, the count, and the claimed key ids with
//! theirs. The log grows by at most one entry per reason per interval,
//! whatever the traffic.
//!
//! Everything here is bounded: reasons (the codes are a closed set;
//! [`REASONS_MAX`] bounds what a bug could add) and claimed key ids per
//! reason ([`CLAIMS_PER_REASON_MAX`]; the rest count under `*`).

use std::collections::BTreeMap;
use std::sync::Mutex;

use policy::{AccessRefused, ClaimedKey, V1or2};

/// Most distinct reasons held between two summaries.
pub const REASONS_MAX: usize = 64;
/// Most distinct claimed key ids listed per reason and interval.
pub const CLAIMS_PER_REASON_MAX: usize = 32;
/// The claimed-key bucket for the claims past the list's bound.
pub const OTHER_CLAIMS: &str = "*";
/// Longest claimed key id kept (longer claims count under `*`).
const CLAIM_BYTES_MAX: usize = 128;

#[derive(Debug, Default)]
struct Tally {
    from: i64,
    to: i64,
    count: u64,
    claimed: BTreeMap<String, u64>,
    others: u64,
}

/// The counts since the last summary.
#[derive(Debug, Default)]
pub struct Refusals {
    open: Mutex<BTreeMap<String, Tally>>,
}

impl Refusals {
    /// Counts one refused request at `now`.
    pub fn count(&self, reason: &str, claimed: Option<&str>, now: i64) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let reason = if open.contains_key(reason) || open.len() < REASONS_MAX {
            reason
        } else {
            "other"
        };
        let t = open.entry(reason.to_string()).or_insert_with(|| Tally {
            from: now,
            to: now,
            ..Tally::default()
        });
        t.count = t.count.saturating_add(1);
        t.from = t.from.min(now);
        t.to = t.to.max(now);
        match claimed.filter(|c| c.len() <= CLAIM_BYTES_MAX) {
            Some(c) if t.claimed.contains_key(c) || t.claimed.len() < CLAIMS_PER_REASON_MAX => {
                *t.claimed.entry(c.to_string()).or_insert(0) += 1;
            }
            Some(_) => t.others = t.others.saturating_add(1),
            None if claimed.is_some() => t.others = t.others.saturating_add(1),
            None => {}
        }
    }

    /// Takes what was counted since the last call, as summary entries
    /// (ids from `new_id`), one per reason; the counts start again.
    pub fn take(&self, mut new_id: impl FnMut() -> String) -> Vec<AccessRefused> {
        let open = std::mem::take(&mut *self.open.lock().unwrap_or_else(|p| p.into_inner()));
        open.into_iter()
            .map(|(reason, t)| {
                let mut claimed: Vec<ClaimedKey> = t
                    .claimed
                    .into_iter()
                    .map(|(key_id, count)| ClaimedKey { key_id, count })
                    .collect();
                if t.others > 0 {
                    claimed.push(ClaimedKey {
                        key_id: OTHER_CLAIMS.into(),
                        count: t.others,
                    });
                }
                AccessRefused {
                    v: V1or2::V2,
                    decision_id: new_id(),
                    at: t.to,
                    reason,
                    request_digest: None,
                    claimed_key_id: None,
                    from: Some(t.from),
                    count: Some(t.count),
                    claimed,
                    verified_key_id: None,
                }
            })
            .collect()
    }

    /// Puts back summaries that could not be logged, so that no count is
    /// lost when the log refused a write.
    pub fn restore(&self, summaries: Vec<AccessRefused>) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        for s in summaries {
            let t = open.entry(s.reason).or_insert_with(|| Tally {
                from: s.from.unwrap_or(s.at),
                to: s.at,
                ..Tally::default()
            });
            t.count = t.count.saturating_add(s.count.unwrap_or(0));
            t.from = t.from.min(s.from.unwrap_or(s.at));
            t.to = t.to.max(s.at);
            for c in s.claimed {
                if c.key_id == OTHER_CLAIMS {
                    t.others = t.others.saturating_add(c.count);
                } else {
                    *t.claimed.entry(c.key_id).or_insert(0) += c.count;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_become_one_summary_per_reason_with_bounded_claims() {
        let r = Refusals::default();
        for i in 0..1000 {
            r.count("bad-signature", Some(&format!("k-{}", i % 40)), 100 + i);
        }
        r.count("missing-signature", None, 50);
        let mut n = 0;
        let out = r.take(|| {
            n += 1;
            format!("r-{n}")
        });
        assert_eq!(out.len(), 2);
        let bad = &out[0];
        assert_eq!(bad.reason, "bad-signature");
        assert_eq!(bad.count, Some(1000));
        assert_eq!((bad.from, bad.at), (Some(100), 1099));
        assert_eq!(bad.claimed.len(), CLAIMS_PER_REASON_MAX + 1);
        let total: u64 = bad.claimed.iter().map(|c| c.count).sum();
        assert_eq!(total, 1000, "every claim is counted, listed or under *");
        assert_eq!(bad.claimed.last().unwrap().key_id, OTHER_CLAIMS);
        for e in &out {
            policy::Event::AccessRefused(e.clone()).validate().unwrap();
        }
        // The counts start again.
        assert!(r.take(String::new).is_empty());
        // What could not be logged comes back whole.
        r.restore(out);
        let again = r.take(|| "r-x".into());
        assert_eq!(again[0].count, Some(1000));
        assert_eq!(again[0].claimed.iter().map(|c| c.count).sum::<u64>(), 1000);
    }

    #[test]
    fn reasons_are_bounded() {
        let r = Refusals::default();
        for i in 0..(REASONS_MAX + 10) {
            r.count(&format!("reason-{i}"), None, 1);
        }
        let out = r.take(|| "r".into());
        assert_eq!(out.len(), REASONS_MAX + 1);
        assert_eq!(
            out.iter().map(|e| e.count.unwrap()).sum::<u64>(),
            (REASONS_MAX + 10) as u64
        );
    }
}
