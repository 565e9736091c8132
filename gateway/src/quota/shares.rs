//! A store of short-lived items under random tokens (sign-in challenges,
//! sessions, intakes), each held for an owner (a source address, a
//! participant): at most `all_max` items in all and `per_owner_max` for
//! any one owner.
//!
//! Expiry is O(log n): the items are also ordered by expiry, and every
//! change first takes the expired ones off the front; each item is taken
//! off once, so no request sweeps the store.
//!
//! A full share either refuses its owner ([`WhenShareFull::Refuse`]: the
//! owner is not known to be who it says, as a source address asking for
//! challenges) or makes room among that owner's own items
//! ([`WhenShareFull::EndOldest`]: the owner signed for it, as a
//! participant opening one more session). A full store refuses everyone:
//! no owner's item ever makes room for another owner's.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hash;

use super::{secs_until, Refused};

/// What a new item does when its owner already holds `per_owner_max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenShareFull {
    Refuse,
    /// End the owner's item that would expire first.
    EndOldest,
}

/// The limits of one store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShareLimits {
    pub all_max: usize,
    pub per_owner_max: usize,
    pub when_share_full: WhenShareFull,
}

struct Item<O, V> {
    owner: O,
    value: V,
    expires_at: i64,
    seq: u64,
}

/// Where an item sits in the expiry order: its expiry, then a sequence
/// number, so that items expiring in the same second stay apart.
type Slot = (i64, u64);

pub struct Shares<O, V> {
    limits: ShareLimits,
    items: HashMap<String, Item<O, V>>,
    by_expiry: BTreeMap<Slot, String>,
    /// Each owner's items in expiry order; an owner with none is absent,
    /// so this map is never larger than `items`.
    owners: HashMap<O, BTreeSet<Slot>>,
    seq: u64,
}

impl<O: Clone + Eq + Hash, V> Shares<O, V> {
    pub fn new(limits: ShareLimits) -> Self {
        Self {
            limits: ShareLimits {
                all_max: limits.all_max.max(1),
                per_owner_max: limits.per_owner_max.max(1),
                ..limits
            },
            items: HashMap::new(),
            by_expiry: BTreeMap::new(),
            owners: HashMap::new(),
            seq: 0,
        }
    }

    /// Takes off every item expired at `now` (expiry at or before it).
    fn expire(&mut self, now: i64) {
        while let Some(entry) = self.by_expiry.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let token = entry.remove();
            self.take(&token);
        }
    }

    /// Removes `token`'s item from all three maps.
    fn take(&mut self, token: &str) -> Option<Item<O, V>> {
        let item = self.items.remove(token)?;
        let slot = (item.expires_at, item.seq);
        self.by_expiry.remove(&slot);
        if let Some(mine) = self.owners.get_mut(&item.owner) {
            mine.remove(&slot);
            if mine.is_empty() {
                self.owners.remove(&item.owner);
            }
        }
        Some(item)
    }

    /// Holds `value` under `token` for `owner` until `expires_at`, within
    /// the limits. A token already held is replaced (tokens are random:
    /// it does not happen).
    pub fn insert(
        &mut self,
        token: String,
        owner: O,
        value: V,
        expires_at: i64,
        now: i64,
    ) -> Result<(), Refused> {
        self.expire(now);
        self.take(&token);
        let mine = self.owners.get(&owner).map_or(0, BTreeSet::len);
        if mine >= self.limits.per_owner_max {
            let oldest = self.owners.get(&owner).and_then(|s| s.first().copied());
            match (self.limits.when_share_full, oldest) {
                (WhenShareFull::EndOldest, Some(slot)) => {
                    if let Some(t) = self.by_expiry.get(&slot).cloned() {
                        self.take(&t);
                    }
                }
                (_, oldest) => {
                    return Err(Refused::ShareFull {
                        retry_after_secs: secs_until(now, oldest.map_or(now, |s| s.0)),
                    })
                }
            }
        }
        if self.items.len() >= self.limits.all_max {
            let first = self.by_expiry.keys().next().map_or(now, |s| s.0);
            return Err(Refused::StoreFull {
                retry_after_secs: secs_until(now, first),
            });
        }
        self.seq += 1;
        let slot = (expires_at, self.seq);
        self.by_expiry.insert(slot, token.clone());
        self.owners.entry(owner.clone()).or_default().insert(slot);
        self.items.insert(
            token,
            Item {
                owner,
                value,
                expires_at,
                seq: self.seq,
            },
        );
        Ok(())
    }

    /// The live item under `token`.
    pub fn get(&self, token: &str, now: i64) -> Option<&V> {
        self.items
            .get(token)
            .filter(|i| i.expires_at > now)
            .map(|i| &i.value)
    }

    pub fn get_mut(&mut self, token: &str, now: i64) -> Option<&mut V> {
        self.items
            .get_mut(token)
            .filter(|i| i.expires_at > now)
            .map(|i| &mut i.value)
    }

    /// The live item under `token`, with its owner.
    pub fn get_with_owner(&self, token: &str, now: i64) -> Option<(&O, &V)> {
        self.items
            .get(token)
            .filter(|i| i.expires_at > now)
            .map(|i| (&i.owner, &i.value))
    }

    /// Takes the item under `token` out, live or not: the value and when
    /// it expires(d). (Expired items are taken off by the next insert,
    /// before it counts anything.)
    pub fn remove(&mut self, token: &str) -> Option<(V, i64)> {
        self.take(token).map(|i| (i.value, i.expires_at))
    }

    /// Items held, counting expired ones not yet taken off.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Items held for `owner`.
    pub fn held_by(&self, owner: &O) -> usize {
        self.owners.get(owner).map_or(0, BTreeSet::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(
        all_max: usize,
        per_owner_max: usize,
        when: WhenShareFull,
    ) -> Shares<&'static str, u32> {
        Shares::new(ShareLimits {
            all_max,
            per_owner_max,
            when_share_full: when,
        })
    }

    /// The maps agree with each other: every item in the order and under
    /// its owner, nothing else.
    fn consistent<O: Clone + Eq + Hash, V>(s: &Shares<O, V>) {
        assert_eq!(s.items.len(), s.by_expiry.len());
        assert_eq!(
            s.owners.values().map(BTreeSet::len).sum::<usize>(),
            s.items.len()
        );
        for (t, i) in &s.items {
            assert_eq!(s.by_expiry.get(&(i.expires_at, i.seq)), Some(t));
            assert!(s.owners[&i.owner].contains(&(i.expires_at, i.seq)));
        }
        assert!(s.owners.values().all(|o| !o.is_empty()));
    }

    #[test]
    fn items_expire_in_expiry_order_whatever_order_they_came_in() {
        let mut s = store(10, 10, WhenShareFull::Refuse);
        for (t, exp) in [("c", 30), ("a", 10), ("b", 20), ("d", 40)] {
            s.insert(t.into(), "o", 0, exp, 0).unwrap();
        }
        assert_eq!(s.get("a", 9), Some(&0));
        assert_eq!(s.get("a", 10), None, "expired at its second");
        // The next change takes off exactly what expired, from the front.
        s.insert("e".into(), "o", 0, 100, 25).unwrap();
        let mut left: Vec<&String> = s.items.keys().collect();
        left.sort();
        assert_eq!(left, ["c", "d", "e"]);
        assert_eq!(s.held_by(&"o"), 3);
        consistent(&s);
        s.insert("f".into(), "p", 0, 2000, 1000).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s.held_by(&"o"), 0);
        assert_eq!(s.owners.len(), 1, "an owner with nothing is forgotten");
        consistent(&s);
    }

    #[test]
    fn a_full_share_refuses_its_owner_only() {
        let mut s = store(100, 3, WhenShareFull::Refuse);
        for i in 0..3 {
            s.insert(format!("x{i}"), "flooder", i, 100 + i64::from(i), 0)
                .unwrap();
        }
        for i in 3..1000 {
            assert_eq!(
                s.insert(format!("x{i}"), "flooder", i, 200, 0),
                Err(Refused::ShareFull {
                    retry_after_secs: 100
                }),
                "the share is full until its first item expires"
            );
        }
        assert_eq!(s.len(), 3, "a refusal keeps nothing");
        s.insert("n".into(), "neighbour", 0, 200, 0).unwrap();
        assert_eq!(s.get("x0", 0), Some(&0), "nothing of the flooder's went");
        // Once the first expired, one more.
        s.insert("x9".into(), "flooder", 9, 300, 100).unwrap();
        assert_eq!(s.held_by(&"flooder"), 3);
        consistent(&s);
    }

    #[test]
    fn a_full_store_refuses_everyone_and_evicts_no_one() {
        let mut s = store(4, 2, WhenShareFull::EndOldest);
        s.insert("a1".into(), "a", 0, 50, 0).unwrap();
        s.insert("a2".into(), "a", 0, 60, 0).unwrap();
        s.insert("b1".into(), "b", 0, 70, 0).unwrap();
        s.insert("b2".into(), "b", 0, 80, 0).unwrap();
        assert_eq!(
            s.insert("c1".into(), "c", 0, 90, 10),
            Err(Refused::StoreFull {
                retry_after_secs: 40
            })
        );
        for t in ["a1", "a2", "b1", "b2"] {
            assert!(s.get(t, 10).is_some(), "{t} kept");
        }
        // An owner at its share makes room among its own, even when the
        // store is full.
        s.insert("a3".into(), "a", 0, 90, 10).unwrap();
        assert_eq!(s.get("a1", 10), None, "a's oldest ended");
        assert!(s.get("a2", 10).is_some() && s.get("b1", 10).is_some());
        consistent(&s);
    }

    #[test]
    fn ending_the_oldest_never_crosses_owners() {
        let mut s = store(1000, 3, WhenShareFull::EndOldest);
        s.insert("other".into(), "p-b", 0, 5, 0).unwrap();
        for i in 0..500 {
            s.insert(format!("t{i}"), "p-a", i, 1000 + i64::from(i), 0)
                .unwrap();
            assert!(s.held_by(&"p-a") <= 3);
        }
        assert_eq!(s.get("other", 0), Some(&0));
        // p-a keeps its three newest.
        for i in 497..500 {
            assert!(s.get(&format!("t{i}"), 0).is_some());
        }
        assert_eq!(s.len(), 4);
        consistent(&s);
    }

    #[test]
    fn removing_and_getting() {
        let mut s = store(10, 10, WhenShareFull::Refuse);
        s.insert("a".into(), "o", 7, 100, 0).unwrap();
        *s.get_mut("a", 0).unwrap() = 8;
        assert_eq!(s.get_mut("a", 100), None, "expired");
        assert_eq!(s.get_with_owner("a", 99), Some((&"o", &8)));
        assert_eq!(s.remove("a"), Some((8, 100)));
        assert_eq!(s.remove("a"), None);
        assert!(s.owners.is_empty());
        consistent(&s);
    }
}
