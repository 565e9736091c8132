//! Applying an event that validation accepted: one step per event type.
//! A step may still refuse (capacity, or a state that validation did not
//! foresee); `apply` then leaves `last_index` where it was.

use std::collections::hash_map::Entry;

use crate::event::{
    AgencyEnrolled, AgencyKeyRotated, AgencyRetired, ConsentGranted, ConsentRevoked, Event,
    GovernanceRules, GrievanceFiled, GrievanceResolved, ParticipantEnrolled,
    ParticipantKeyActivated, ParticipantKeyRotated, ParticipantRotationCancelled,
};

use super::records::{agency_key, class_key, id_hash, CLASS_KEY_BIT, NONE};
use super::records::{AgencyRec, ConsentRec, KeyRec, OwnerRec, ParticipantRec, PendingRec};
use super::records::{Posting, RECIPIENT_AGENCIES, RECIPIENT_CLASSES};
use super::records::{CATEGORIES, HOLDER_AGENCIES, HOLDER_CLASSES, PURPOSES};
use super::views::{rotation_view, CancelledRotation, GrievanceView};
use super::ApplyError;
use super::ConsentState;

impl ConsentState {
    /// Applies `event`, found at ledger `index`, which `validate` accepted.
    pub(super) fn mutate(&mut self, index: u64, event: &Event) -> Result<(), ApplyError> {
        match event {
            Event::GovernanceRules(e) => {
                self.set_rules(e);
                Ok(())
            }
            Event::AgencyEnrolled(e) => self.enrol_agency(e),
            Event::AgencyKeyRotated(e) => self.rotate_agency_key(e),
            Event::AgencyRetired(e) => self.retire_agency(e),
            Event::BoardChanged(e) => {
                self.change_board(e);
                Ok(())
            }
            Event::ParticipantEnrolled(e) => self.enrol_participant(e),
            Event::ConsentGranted(e) => self.insert_consent(index, e),
            Event::ConsentRevoked(e) => self.revoke_consent(index, e),
            Event::ParticipantKeyRotated(e) => self.request_rotation(index, e),
            Event::ParticipantKeyActivated(e) => self.activate_rotation(e),
            Event::ParticipantRotationCancelled(e) => self.cancel_rotation(index, e),
            Event::GrievanceFiled(e) => self.file_grievance(index, e),
            Event::GrievanceResolved(e) => self.resolve_grievance(index, e),
            // The access entries and notices are the log's record of what
            // the gateway did; they change nothing the state decides on.
            Event::AccessDecided(_)
            | Event::AccessRefused(_)
            | Event::AccessReleased(_)
            | Event::ParticipantNotice(_) => Ok(()),
        }
    }

    fn set_rules(&mut self, e: &GovernanceRules) {
        self.rules_version = e.version;
        self.vocabulary = e.vocabulary.clone();
        self.rules = e.rules.clone();
    }

    fn enrol_agency(&mut self, e: &AgencyEnrolled) -> Result<(), ApplyError> {
        // An agency's index shares a u64 with the class tag bit in the
        // recipient index, so it must stay below that bit.
        let id = u32::try_from(self.agencies.len())
            .ok()
            .filter(|&i| u64::from(i) < CLASS_KEY_BIT)
            .ok_or(ApplyError::Capacity)?;
        let mut classes = Vec::with_capacity(e.classes.len());
        for c in &e.classes {
            classes.push(self.codes.intern(c)?);
        }
        classes.sort_unstable();
        classes.dedup();
        let mut roles = e.roles.clone();
        roles.sort_unstable();
        roles.dedup();
        self.agencies.push(AgencyRec {
            id: e.agency.as_str().into(),
            name: e.name.as_str().into(),
            enrolled_key_id: e.key_id.as_str().into(),
            key_id: e.key_id.as_str().into(),
            upstream: e.upstream.as_str().into(),
            upstream_client_certificate: e.upstream_client_certificate,
            classes,
            roles,
            enrolled_at: e.at,
            retired: false,
        });
        self.agency_index.insert(e.agency.as_str().into(), id);
        self.keys.insert(
            e.key_id.as_str().into(),
            KeyRec {
                public_key: e.public_key.as_str().into(),
                owner: OwnerRec::Agency(id),
                current: true,
            },
        );
        Ok(())
    }

    fn rotate_agency_key(&mut self, e: &AgencyKeyRotated) -> Result<(), ApplyError> {
        let id = self.live_agency(&e.agency)?;
        if let Some(rec) = self.agencies.get_mut(id as usize) {
            if let Some(old) = self.keys.get_mut(&rec.key_id) {
                old.current = false;
            }
            rec.key_id = e.key_id.as_str().into();
        }
        self.keys.insert(
            e.key_id.as_str().into(),
            KeyRec {
                public_key: e.public_key.as_str().into(),
                owner: OwnerRec::Agency(id),
                current: true,
            },
        );
        Ok(())
    }

    /// Removed members' keys stop counting from the next entry on; they
    /// stay known, so that the entries they signed still verify.
    fn change_board(&mut self, e: &crate::event::BoardChanged) {
        for id in &e.remove {
            if let Some(k) = self.keys.get_mut(id.as_str()) {
                k.current = false;
            }
            self.board.retain(|m| **m != **id);
        }
        for m in &e.add {
            self.keys.insert(
                m.key_id.as_str().into(),
                KeyRec {
                    public_key: m.public_key.as_str().into(),
                    owner: OwnerRec::Governance,
                    current: true,
                },
            );
            self.board.push(m.key_id.as_str().into());
        }
        self.quorum = e.quorum;
    }

    fn retire_agency(&mut self, e: &AgencyRetired) -> Result<(), ApplyError> {
        let id = self.live_agency(&e.agency)?;
        if let Some(rec) = self.agencies.get_mut(id as usize) {
            rec.retired = true;
            if let Some(key) = self.keys.get_mut(&rec.key_id) {
                key.current = false;
            }
        }
        Ok(())
    }

    fn enrol_participant(&mut self, e: &ParticipantEnrolled) -> Result<(), ApplyError> {
        let id = u32::try_from(self.participants.len()).map_err(|_| ApplyError::Capacity)?;
        let enrolled_by = self.live_agency(&e.enrolled_by)?;
        self.participants.push(ParticipantRec {
            id: e.participant.as_str().into(),
            key_id: e.key_id.as_str().into(),
            consents: Vec::new(),
            enrolled_by,
            grievances: Vec::new(),
            pending: None,
        });
        self.participant_index
            .insert(e.participant.as_str().into(), id);
        self.keys.insert(
            e.key_id.as_str().into(),
            KeyRec {
                public_key: e.public_key.as_str().into(),
                owner: OwnerRec::Participant(id),
                current: true,
            },
        );
        Ok(())
    }

    fn revoke_consent(&mut self, index: u64, e: &ConsentRevoked) -> Result<(), ApplyError> {
        let consent = self
            .find_consent(&e.consent_id)
            .ok_or_else(|| ApplyError::UnknownConsent(e.consent_id.clone()))?;
        let assisted = match &e.assisted_by {
            Some(a) => self.agency_index.get(a.as_str()).copied(),
            None => None,
        };
        if let Some(rec) = self.consents.get_mut(consent as usize) {
            rec.revoked = true;
        }
        self.revocations.insert(consent, (index, e.at, assisted));
        Ok(())
    }

    fn request_rotation(
        &mut self,
        index: u64,
        e: &ParticipantKeyRotated,
    ) -> Result<(), ApplyError> {
        let id = self
            .participant_index
            .get(e.participant.as_str())
            .copied()
            .ok_or(ApplyError::NotAuthorised)?;
        let ready_at =
            e.at.saturating_add(self.rules.participant_key_rotation_wait_seconds());
        let rec = self
            .participants
            .get_mut(id as usize)
            .ok_or(ApplyError::NotAuthorised)?;
        rec.pending = Some(PendingRec {
            key_id: e.key_id.as_str().into(),
            index,
            requested_at: e.at,
            ready_at,
            assisted_by: e.assisted_by.as_str().into(),
        });
        self.rotations_due.insert((ready_at, id));
        // Registered now so that the key id is never reused and
        // the pending key's revocations verify; not current.
        self.keys.insert(
            e.key_id.as_str().into(),
            KeyRec {
                public_key: e.public_key.as_str().into(),
                owner: OwnerRec::Participant(id),
                current: false,
            },
        );
        Ok(())
    }

    fn activate_rotation(&mut self, e: &ParticipantKeyActivated) -> Result<(), ApplyError> {
        let id = self.validate_activation(e)?;
        let rec = self
            .participants
            .get_mut(id as usize)
            .ok_or(ApplyError::NoPendingRotation)?;
        let pending = rec.pending.take().ok_or(ApplyError::NoPendingRotation)?;
        if let Some(old) = self.keys.get_mut(&rec.key_id) {
            old.current = false;
        }
        rec.key_id = pending.key_id.clone();
        if let Some(new) = self.keys.get_mut(&pending.key_id) {
            new.current = true;
        }
        self.rotations_due.remove(&(pending.ready_at, id));
        Ok(())
    }

    fn cancel_rotation(
        &mut self,
        index: u64,
        e: &ParticipantRotationCancelled,
    ) -> Result<(), ApplyError> {
        let id = self
            .participant_index
            .get(e.participant.as_str())
            .copied()
            .ok_or(ApplyError::NoPendingRotation)?;
        let pending = self
            .participants
            .get_mut(id as usize)
            .and_then(|r| r.pending.take())
            .ok_or(ApplyError::NoPendingRotation)?;
        self.rotations_due.remove(&(pending.ready_at, id));
        self.cancelled_rotations.push(CancelledRotation {
            rotation: rotation_view(&e.participant, &pending),
            cancelled_index: index,
            cancelled_at: e.at,
        });
        Ok(())
    }

    fn file_grievance(&mut self, index: u64, e: &GrievanceFiled) -> Result<(), ApplyError> {
        let p = self
            .participant_index
            .get(e.participant.as_str())
            .copied()
            .ok_or(ApplyError::NotAuthorised)?;
        let g = u32::try_from(self.grievances.len()).map_err(|_| ApplyError::Capacity)?;
        self.grievances.push(GrievanceView {
            filed: e.clone(),
            filed_index: index,
            resolution: None,
        });
        self.grievance_index
            .insert(e.grievance_id.as_str().into(), g);
        if let Some(rec) = self.participants.get_mut(p as usize) {
            rec.grievances.push(g);
        }
        Ok(())
    }

    fn resolve_grievance(&mut self, index: u64, e: &GrievanceResolved) -> Result<(), ApplyError> {
        let g = self
            .grievance_index
            .get(e.grievance_id.as_str())
            .copied()
            .ok_or_else(|| ApplyError::UnknownGrievance(e.grievance_id.clone()))?;
        if let Some(view) = self.grievances.get_mut(g as usize) {
            view.resolution = Some((e.clone(), index));
        }
        Ok(())
    }

    fn insert_consent(&mut self, index: u64, e: &ConsentGranted) -> Result<(), ApplyError> {
        let participant = self
            .participant_index
            .get(e.participant.as_str())
            .copied()
            .ok_or(ApplyError::NotAuthorised)?;
        let consent = u32::try_from(self.consents.len()).map_err(|_| ApplyError::Capacity)?;
        let id_start =
            u32::try_from(self.consent_id_arena.len()).map_err(|_| ApplyError::Capacity)?;
        let id_len = u16::try_from(e.consent_id.len()).map_err(|_| ApplyError::Capacity)?;
        let pool_start = u32::try_from(self.pool.len()).map_err(|_| ApplyError::Capacity)?;

        let mut lists: [Vec<u32>; 6] = Default::default();
        for (slot, agencies) in [
            (HOLDER_AGENCIES, &e.holders.agencies),
            (RECIPIENT_AGENCIES, &e.recipients.agencies),
        ] {
            for a in agencies {
                let id = self.live_agency(a)?;
                if let Some(list) = lists.get_mut(slot) {
                    list.push(id);
                }
            }
        }
        for (slot, codes) in [
            (HOLDER_CLASSES, &e.holders.classes),
            (RECIPIENT_CLASSES, &e.recipients.classes),
            (CATEGORIES, &e.categories),
            (PURPOSES, &e.purposes),
        ] {
            for c in codes {
                let id = self.codes.intern(c)?;
                if let Some(list) = lists.get_mut(slot) {
                    list.push(id);
                }
            }
        }
        let mut lens = [0u8; 6];
        for (len, list) in lens.iter_mut().zip(lists.iter_mut()) {
            // Keep the participant's order (the summary reads in it); drop
            // repeats. Lists are at most 64 long, so quadratic is fine.
            let mut seen = Vec::with_capacity(list.len());
            list.retain(|x| {
                let fresh = !seen.contains(x);
                seen.push(*x);
                fresh
            });
            *len = u8::try_from(list.len()).map_err(|_| ApplyError::Capacity)?;
        }
        for list in &lists {
            self.pool.extend_from_slice(list);
        }
        self.consent_id_arena.push_str(&e.consent_id);
        match self.consent_by_hash.entry(id_hash(&e.consent_id)) {
            Entry::Vacant(v) => {
                v.insert(consent);
            }
            Entry::Occupied(_) => {
                self.consent_id_overflow
                    .insert(e.consent_id.as_str().into(), consent);
            }
        }
        self.consents.push(ConsentRec {
            participant,
            id_start,
            pool_start,
            id_len,
            lens,
            language: e.language,
            revoked: false,
            effective_at: e.effective_at,
            until_revoked: e.expires_at.is_none(),
            // The maximum duration bounds every consent: "until revoked"
            // runs at most that long from its effective date, fixed by the
            // rules in force at the grant, as an explicit expiry is.
            ends_at: e.expires_at.unwrap_or_else(|| {
                e.effective_at
                    .saturating_add(self.rules.consent_duration_seconds_max())
            }),
            signed_at: e.signed_at,
            granted_index: index,
        });
        if let Some(p) = self.participants.get_mut(participant as usize) {
            p.consents.push(consent);
        }
        let keys: Vec<u64> = lists
            .get(RECIPIENT_AGENCIES)
            .into_iter()
            .flatten()
            .map(|&a| agency_key(participant, a))
            .chain(
                lists
                    .get(RECIPIENT_CLASSES)
                    .into_iter()
                    .flatten()
                    .map(|&c| class_key(participant, c)),
            )
            .collect();
        for key in keys {
            let posting = u32::try_from(self.postings.len()).map_err(|_| ApplyError::Capacity)?;
            let head = self.by_recipient.insert(key, posting).unwrap_or(NONE);
            self.postings.push(Posting {
                consent,
                next: head,
            });
        }
        Ok(())
    }
}
