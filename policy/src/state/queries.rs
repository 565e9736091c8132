//! Reading the state: the crate-internal look-ups `decide` runs on the
//! records, and the public accessors that return views.

use crate::event::{AgencyEnrolled, ConsentGranted, Parties, V1};
use crate::rules::Rules;
use crate::vocab::Vocabulary;

use super::records::{agency_key, class_key, id_hash, NONE};
use super::records::{AgencyRec, ConsentRec, OwnerRec, ParticipantRec};
use super::records::{CATEGORIES, HOLDER_AGENCIES, HOLDER_CLASSES, PURPOSES};
use super::records::{RECIPIENT_AGENCIES, RECIPIENT_CLASSES};
use super::views::{rotation_view, status_of};
use super::views::{AgencyInfo, CancelledRotation, ConsentStatus, ConsentView, GrievanceView};
use super::views::{KeyInfo, KeyOwner, Revocation, RotationView};
use super::ConsentState;
use super::Trust;

impl ConsentState {
    pub(super) fn participant_rec(&self, id: &str) -> Option<&ParticipantRec> {
        self.participant_index
            .get(id)
            .and_then(|&i| self.participants.get(i as usize))
    }

    fn consent_id_of(&self, rec: &ConsentRec) -> &str {
        let start = rec.id_start as usize;
        self.consent_id_arena
            .get(start..start + rec.id_len as usize)
            .unwrap_or("")
    }

    pub(crate) fn find_consent(&self, id: &str) -> Option<u32> {
        let first = self.consent_by_hash.get(&id_hash(id)).copied()?;
        let rec = self.consents.get(first as usize)?;
        if self.consent_id_of(rec) == id {
            Some(first)
        } else {
            self.consent_id_overflow.get(id).copied()
        }
    }

    pub(crate) fn consent_rec(&self, index: u32) -> Option<&ConsentRec> {
        self.consents.get(index as usize)
    }

    pub(crate) fn consent_id_str(&self, index: u32) -> &str {
        self.consent_rec(index)
            .map(|rec| self.consent_id_of(rec))
            .unwrap_or("")
    }

    pub(crate) fn consent_list(&self, rec: &ConsentRec, slot: usize) -> &[u32] {
        self.pool.get(rec.range(slot)).unwrap_or(&[])
    }

    pub(crate) fn holder_agencies(&self, rec: &ConsentRec) -> &[u32] {
        self.consent_list(rec, HOLDER_AGENCIES)
    }
    pub(crate) fn holder_classes(&self, rec: &ConsentRec) -> &[u32] {
        self.consent_list(rec, HOLDER_CLASSES)
    }
    pub(crate) fn recipient_agencies(&self, rec: &ConsentRec) -> &[u32] {
        self.consent_list(rec, RECIPIENT_AGENCIES)
    }
    pub(crate) fn recipient_classes(&self, rec: &ConsentRec) -> &[u32] {
        self.consent_list(rec, RECIPIENT_CLASSES)
    }
    pub(crate) fn categories_of(&self, rec: &ConsentRec) -> &[u32] {
        self.consent_list(rec, CATEGORIES)
    }
    pub(crate) fn purposes_of(&self, rec: &ConsentRec) -> &[u32] {
        self.consent_list(rec, PURPOSES)
    }

    pub(crate) fn agency_by_id(&self, id: &str) -> Option<(u32, &AgencyRec)> {
        let index = self.agency_index.get(id).copied()?;
        self.agencies.get(index as usize).map(|a| (index, a))
    }

    pub(crate) fn participant_index_of(&self, id: &str) -> Option<u32> {
        self.participant_index.get(id).copied()
    }

    pub(crate) fn participant_has_consents(&self, participant: u32) -> bool {
        self.participants
            .get(participant as usize)
            .is_some_and(|p| !p.consents.is_empty())
    }

    pub(crate) fn code_id(&self, code: &str) -> Option<u32> {
        self.codes.get(code)
    }

    pub(crate) fn code_covers(&self, granted: u32, requested: u32) -> bool {
        self.codes.covers(granted, requested)
    }

    /// Consents that name `agency` (by id, or by one of `classes`) as a
    /// recipient for `participant`: sorted, without duplicates. Indexed, so
    /// the cost is the number of such consents, not the participant's total.
    pub(crate) fn candidates(
        &self,
        participant: u32,
        agency: u32,
        classes: &[u32],
        out: &mut Vec<u32>,
    ) {
        out.clear();
        let keys = std::iter::once(agency_key(participant, agency))
            .chain(classes.iter().map(|&c| class_key(participant, c)));
        for key in keys {
            let mut at = self.by_recipient.get(&key).copied().unwrap_or(NONE);
            // The chain is acyclic (each posting links to an older one); the
            // bound only guards against a corrupt state.
            let mut budget = self.postings.len();
            while at != NONE && budget > 0 {
                budget -= 1;
                match self.postings.get(at as usize) {
                    Some(p) => {
                        out.push(p.consent);
                        at = p.next;
                    }
                    None => break,
                }
            }
        }
        out.sort_unstable();
        out.dedup();
    }

    // ----- public read accessors --------------------------------------------

    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// 0 until the first `governance.rules` entry.
    pub fn rules_version(&self) -> u32 {
        self.rules_version
    }

    pub fn vocabulary(&self) -> &Vocabulary {
        &self.vocabulary
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The ledger index of the last applied entry.
    pub fn last_index(&self) -> Option<u64> {
        self.last_index
    }

    pub fn consent_count(&self) -> usize {
        self.consents.len()
    }

    pub fn participant_count(&self) -> usize {
        self.participants.len()
    }

    /// A key by id, whoever owns it, current or not.
    pub fn key(&self, key_id: &str) -> Option<KeyInfo> {
        let rec = self.keys.get(key_id)?;
        let owner = match rec.owner {
            OwnerRec::Governance => KeyOwner::Governance,
            OwnerRec::Gateway => KeyOwner::Gateway,
            OwnerRec::Agency(i) => KeyOwner::Agency(self.agencies.get(i as usize)?.id.to_string()),
            OwnerRec::Participant(i) => {
                KeyOwner::Participant(self.participants.get(i as usize)?.id.to_string())
            }
        };
        Some(KeyInfo {
            key_id: key_id.to_owned(),
            public_key: rec.public_key.to_string(),
            owner,
            current: rec.current,
        })
    }

    fn agency_info(&self, rec: &AgencyRec) -> AgencyInfo {
        AgencyInfo {
            enrolled: AgencyEnrolled {
                v: V1,
                agency: rec.id.to_string(),
                name: rec.name.to_string(),
                key_id: rec.enrolled_key_id.to_string(),
                public_key: self
                    .keys
                    .get(&rec.enrolled_key_id)
                    .map(|k| k.public_key.to_string())
                    .unwrap_or_default(),
                upstream: rec.upstream.to_string(),
                upstream_client_certificate: rec.upstream_client_certificate,
                classes: rec
                    .classes
                    .iter()
                    .map(|&c| self.codes.name(c).to_owned())
                    .collect(),
                roles: rec.roles.clone(),
                at: rec.enrolled_at,
            },
            current_key_id: rec.key_id.to_string(),
            retired: rec.retired,
        }
    }

    pub fn agency(&self, id: &str) -> Option<AgencyInfo> {
        self.agency_by_id(id).map(|(_, rec)| self.agency_info(rec))
    }

    /// Every agency ever enrolled, in enrolment order.
    pub fn agencies(&self) -> Vec<AgencyInfo> {
        self.agencies.iter().map(|a| self.agency_info(a)).collect()
    }

    pub fn participant_exists(&self, id: &str) -> bool {
        self.participant_index.contains_key(id)
    }

    /// The participant's current key id.
    pub fn participant_key_id(&self, id: &str) -> Option<&str> {
        self.participant_rec(id).map(|p| &*p.key_id)
    }

    /// The agency whose intake enrolled `id`.
    pub fn participant_enrolled_by(&self, id: &str) -> Option<&str> {
        let p = self.participant_rec(id)?;
        self.agencies.get(p.enrolled_by as usize).map(|a| &*a.id)
    }

    /// The participant's pending key rotation, if any.
    pub fn pending_rotation(&self, participant: &str) -> Option<RotationView> {
        let p = self.participant_rec(participant)?;
        p.pending.as_ref().map(|r| rotation_view(&p.id, r))
    }

    /// Pending rotations whose wait has passed at `at`, soonest first, at
    /// most `max` of them.
    pub fn due_rotations(&self, at: i64, max: usize) -> Vec<RotationView> {
        self.rotations_due
            .range(..=(at, u32::MAX))
            .take(max)
            .filter_map(|&(_, i)| {
                let p = self.participants.get(i as usize)?;
                p.pending.as_ref().map(|r| rotation_view(&p.id, r))
            })
            .collect()
    }

    /// Every cancelled rotation, oldest first: flagged to the board.
    pub fn cancelled_rotations(&self) -> &[CancelledRotation] {
        &self.cancelled_rotations
    }

    /// Every grievance `participant` filed, oldest first.
    pub fn grievances_of(&self, participant: &str) -> Vec<GrievanceView> {
        self.participant_rec(participant)
            .map(|p| {
                p.grievances
                    .iter()
                    .filter_map(|&g| self.grievances.get(g as usize).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every grievance, oldest first (for the auditor's report).
    pub fn grievances(&self) -> &[GrievanceView] {
        &self.grievances
    }

    fn view(&self, index: u32) -> Option<ConsentView> {
        let rec = self.consents.get(index as usize)?;
        let names = |slot: usize| -> Vec<String> {
            self.consent_list(rec, slot)
                .iter()
                .map(|&c| self.codes.name(c).to_owned())
                .collect()
        };
        let agencies = |slot: usize| -> Vec<String> {
            self.consent_list(rec, slot)
                .iter()
                .filter_map(|&a| self.agencies.get(a as usize).map(|a| a.id.to_string()))
                .collect()
        };
        let revocation = self
            .revocations
            .get(&index)
            .map(|&(index, at, assisted)| Revocation {
                index,
                at,
                assisted_by: assisted
                    .and_then(|a| self.agencies.get(a as usize))
                    .map(|a| a.id.to_string()),
            });
        Some(ConsentView {
            granted: ConsentGranted {
                v: V1,
                consent_id: self.consent_id_of(rec).to_owned(),
                participant: self
                    .participants
                    .get(rec.participant as usize)
                    .map(|p| p.id.to_string())
                    .unwrap_or_default(),
                holders: Parties {
                    agencies: agencies(HOLDER_AGENCIES),
                    classes: names(HOLDER_CLASSES),
                },
                recipients: Parties {
                    agencies: agencies(RECIPIENT_AGENCIES),
                    classes: names(RECIPIENT_CLASSES),
                },
                categories: names(CATEGORIES),
                purposes: names(PURPOSES),
                effective_at: rec.effective_at,
                expires_at: (!rec.until_revoked).then_some(rec.ends_at),
                signed_at: rec.signed_at,
                language: rec.language,
            },
            granted_index: rec.granted_index,
            ends_at: rec.ends_at,
            revocation,
        })
    }

    /// A consent by id.
    pub fn consent(&self, consent_id: &str) -> Option<ConsentView> {
        self.view(self.find_consent(consent_id)?)
    }

    /// A participant's consents in the order they were granted, each with
    /// its status at `at`.
    pub fn consents_of(&self, participant: &str, at: i64) -> Vec<(ConsentView, ConsentStatus)> {
        let Some(rec) = self.participant_rec(participant) else {
            return Vec::new();
        };
        rec.consents
            .iter()
            .filter_map(|&i| self.view(i))
            .map(|v| {
                let status = v.status(at);
                (v, status)
            })
            .collect()
    }

    pub(crate) fn consent_status(&self, rec: &ConsentRec, at: i64) -> ConsentStatus {
        status_of(rec.revoked, rec.effective_at, rec.ends_at, at)
    }
}
