//! Releases against their decisions: every release follows an allow,
//! once, and releases nothing outside it.

use std::collections::{BTreeMap, HashMap};

use policy::{AccessDecided, AccessReleased, Outcome};

use super::outcome::Findings;
use super::state::OpenAllow;
use crate::finding::FindingKind;

/// A decision seen, by id, until its release.
struct Seen {
    allow: bool,
    index: u64,
    released: Vec<String>,
    released_yet: bool,
}

/// The decisions seen so far, by id.
#[derive(Default)]
pub(super) struct Releases(HashMap<String, Seen>);

impl Releases {
    /// Goes on from the allows a trusted run left without their release.
    pub fn resume(open: &BTreeMap<String, OpenAllow>) -> Self {
        let seen = open.iter().map(|(id, o)| {
            let seen = Seen {
                allow: true,
                index: o.index,
                released: o.released.clone(),
                released_yet: false,
            };
            (id.clone(), seen)
        });
        Self(seen.collect())
    }

    /// A decision logged at `at`: its id must be new.
    pub fn decided(&mut self, at: u64, d: &AccessDecided, findings: &mut Findings) {
        if self.0.contains_key(&d.decision_id) {
            let decision_id = d.decision_id.clone();
            findings.find(at, FindingKind::DecisionIdReused { decision_id });
        }
        let seen = Seen {
            allow: d.outcome == Outcome::Allow,
            index: at,
            released: d.released.clone(),
            released_yet: false,
        };
        self.0.insert(d.decision_id.clone(), seen);
    }

    /// A release logged at `at`: after its allow, once, within it.
    pub fn released(&mut self, at: u64, r: &AccessReleased, findings: &mut Findings) {
        let decision_id = r.decision_id.clone();
        match self.0.get_mut(&r.decision_id) {
            None => findings.find(at, FindingKind::ReleaseWithoutDecision { decision_id }),
            Some(seen) if !seen.allow => findings.find(
                at,
                FindingKind::ReleaseAfterDeny {
                    decision_id,
                    decided_index: seen.index,
                },
            ),
            Some(seen) if seen.released_yet => {
                findings.find(at, FindingKind::SecondRelease { decision_id })
            }
            Some(seen) => {
                seen.released_yet = true;
                for k in r
                    .kept
                    .iter()
                    .filter(|k| !seen.released.contains(&k.category))
                {
                    let kind = FindingKind::ReleaseWider {
                        decision_id: decision_id.clone(),
                        decided_index: seen.index,
                        category: k.category.clone(),
                        count: k.count,
                        allowed: seen.released.clone(),
                    };
                    findings.find(at, kind);
                }
            }
        }
    }

    /// The allows still waiting for their release, for the state file.
    pub fn still_open(self) -> BTreeMap<String, OpenAllow> {
        self.0
            .into_iter()
            .filter(|(_, v)| v.allow && !v.released_yet)
            .map(|(k, v)| {
                let open = OpenAllow {
                    index: v.index,
                    released: v.released,
                };
                (k, open)
            })
            .collect()
    }
}
