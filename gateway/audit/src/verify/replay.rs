//! The replay, in log order: the keys each signature names as the
//! registry holds them at its position, each entry under the rules
//! (`policy`), each decision against `decide`, each release against its
//! allow. Sequential by nature: each entry sees the state its
//! predecessors made.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ledger::Envelope;
use policy::{parse_event, replay_check, AccessDecided, ConsentState, Event, Trust};

use super::keys::{EntryKeys, KeyCache};
use super::outcome::{Findings, Summary};
use super::releases::Releases;
use super::state::{Applied, Trusted};
use crate::finding::FindingKind;

pub(super) struct Replay {
    state: ConsentState,
    keys: KeyCache,
    pub releases: Releases,
    /// The entries that changed the state, for a resumed run.
    pub applied: Vec<Applied>,
}

impl Replay {
    pub fn new(trust: Trust) -> Self {
        Self {
            state: ConsentState::new(trust),
            keys: KeyCache::default(),
            releases: Releases::default(),
            applied: Vec::new(),
        }
    }

    /// The replay as a trusted run left it, rebuilt from its state file.
    pub fn resume(trust: Trust, t: &Trusted) -> Self {
        let mut r = Self::new(trust);
        for a in &t.applied {
            let entry = B64.decode(&a.entry).unwrap_or_default();
            let signers: Vec<&str> = a.signers.iter().map(String::as_str).collect();
            if let Ok(e) = parse_event(&entry) {
                // Checked when first seen; re-applied only to rebuild.
                let _ = r.state.apply(a.index, &e, &signers);
            }
        }
        r.applied = t.applied.clone();
        r.releases = Releases::resume(&t.open_allows);
        r
    }

    /// Replays the entry at `at`; returns the keys its signatures name
    /// here, for the signature check.
    pub fn entry(
        &mut self,
        at: u64,
        env: &Envelope,
        findings: &mut Findings,
        summary: &mut Summary,
    ) -> EntryKeys {
        let parsed = parse_event(&env.entry);
        let own = parsed.as_ref().ok().and_then(|e| e.self_signing_key());
        let keys = self.resolve(at, env, own, findings);
        let event = match parsed {
            Ok(e) => e,
            Err(e) => {
                findings.find(at, FindingKind::NotConsentry(e));
                return keys;
            }
        };
        match &event {
            Event::AccessDecided(d) => {
                summary.decisions_replayed += 1;
                self.decision(at, d, findings);
            }
            Event::AccessReleased(r) => {
                summary.releases_checked += 1;
                self.releases.released(at, r, findings);
            }
            _ => {}
        }
        self.apply(at, env, &event, findings);
        keys
    }

    /// The key each signature names, as the registry holds it here.
    fn resolve(
        &mut self,
        at: u64,
        env: &Envelope,
        own: Option<(&str, &str)>,
        findings: &mut Findings,
    ) -> EntryKeys {
        let mut resolved = Vec::with_capacity(env.signatures.len());
        for s in &env.signatures {
            let key_id = s.key_id.clone();
            match self.keys.resolve(&self.state, own, &s.key_id) {
                // A small-order key would let anyone sign for it.
                Some(k) if k.is_weak() => findings.find(at, FindingKind::WeakKey { key_id }),
                Some(k) => resolved.push((key_id, k)),
                None => findings.find(at, FindingKind::UnknownKey { key_id }),
            }
        }
        EntryKeys(resolved)
    }

    /// A logged decision must be the one `decide` gives at its position.
    fn decision(&mut self, at: u64, d: &AccessDecided, findings: &mut Findings) {
        if let Err(mismatch) = replay_check(&self.state, d) {
            let kind = FindingKind::DecisionDisagrees {
                decision_id: d.decision_id.clone(),
                mismatch,
            };
            findings.find(at, kind);
        }
        self.releases.decided(at, d, findings);
    }

    /// Applies the entry under the rules; keeps those that changed the
    /// state (not the access entries and notices) for a resumed run.
    fn apply(&mut self, at: u64, env: &Envelope, event: &Event, findings: &mut Findings) {
        let signers: Vec<&str> = env.signatures.iter().map(|s| s.key_id.as_str()).collect();
        match self.state.apply(at, event, &signers) {
            Ok(()) => {
                let access = matches!(
                    event,
                    Event::AccessDecided(_)
                        | Event::AccessReleased(_)
                        | Event::AccessRefused(_)
                        | Event::ParticipantNotice(_)
                );
                if !access {
                    self.applied.push(Applied {
                        index: at,
                        signers: signers.iter().map(|s| s.to_string()).collect(),
                        entry: B64.encode(&env.entry),
                    });
                }
            }
            Err(e) => findings.find(at, FindingKind::NotApplicable(e)),
        }
    }
}
