//! Whether an event may be applied to the state: who signed it first, then
//! what it says. Authority is read from the signers' keys before anything
//! the entry names is looked up, so that a refusal tells a stranger nothing.

use crate::event::{
    AgencyEnrolled, AgencyKeyRotated, ConsentGranted, ConsentRevoked, Event, GovernanceRules,
    GrievanceFiled, ParticipantEnrolled, ParticipantKeyActivated, ParticipantKeyRotated,
    ParticipantRotationCancelled, Role,
};
use crate::vocab::Kind;

use super::records::{ConsentRec, OwnerRec};
use super::ApplyError;
use super::ConsentState;
use super::GRIEVANCES_PER_PARTICIPANT_MAX;

fn signed_by(signers: &[&str], key_id: &str) -> bool {
    signers.contains(&key_id)
}

impl ConsentState {
    /// A board change: it removes current members only, adds keys no one
    /// holds under any id (a key registered twice would count twice), and
    /// leaves a board its quorum can be met by.
    fn validate_board_change(&self, e: &crate::event::BoardChanged) -> Result<(), ApplyError> {
        let refuse = |why: String| Err(ApplyError::Board(why));
        for (i, id) in e.remove.iter().enumerate() {
            if !self.board.iter().any(|m| **m == **id) || e.remove[..i].contains(id) {
                return refuse(format!(
                    "{id:?} is not a current member (or is named twice)"
                ));
            }
        }
        for (i, m) in e.add.iter().enumerate() {
            if self.keys.contains_key(m.key_id.as_str()) {
                return refuse(format!("key id {:?} is taken", m.key_id));
            }
            let twice = e.add[..i]
                .iter()
                .any(|o| o.key_id == m.key_id || o.public_key == m.public_key);
            if twice || self.keys.values().any(|k| *k.public_key == *m.public_key) {
                return refuse(format!("the key of {:?} is already registered", m.key_id));
            }
        }
        let size = self.board.len().saturating_sub(e.remove.len()) + e.add.len();
        if e.quorum as usize > size {
            return refuse(format!("a quorum of {} for a board of {size}", e.quorum));
        }
        Ok(())
    }

    /// Whether `signers` are a quorum of the board in force: distinct
    /// current members, counted by public key (an entry's signatures do
    /// not cover the key id, so one key under two ids is one member); a
    /// key that is not a member's counts for nothing.
    pub(super) fn board_quorum(&self, signers: &[&str]) -> Result<(), ApplyError> {
        self.board_quorum_without(signers, &[])
    }

    /// As [`Self::board_quorum`], not counting the members `about`: a
    /// key that signs an entry about itself never counts toward it.
    fn board_quorum_without(&self, signers: &[&str], about: &[String]) -> Result<(), ApplyError> {
        let members: std::collections::HashSet<&str> = signers
            .iter()
            .filter(|id| !about.iter().any(|a| a == *id))
            .filter_map(|id| self.keys.get(*id))
            .filter(|k| k.current && matches!(k.owner, OwnerRec::Governance))
            .map(|k| &*k.public_key)
            .collect();
        if members.len() >= self.quorum as usize {
            return Ok(());
        }
        Err(ApplyError::BelowQuorum {
            quorum: self.quorum,
            members: members.len(),
            signers: if signers.is_empty() {
                "no signature".into()
            } else {
                signers.join(", ")
            },
        })
    }

    pub(super) fn validate(&self, event: &Event, signers: &[&str]) -> Result<(), ApplyError> {
        event.validate()?;
        let governance = || self.board_quorum(signers);
        let gateway = || {
            if signed_by(signers, &self.trust.gateway_key_id) {
                Ok(())
            } else {
                Err(ApplyError::NotSignedBy("the gateway key".into()))
            }
        };
        match event {
            Event::BoardChanged(e) => {
                self.board_quorum_without(signers, &e.remove)?;
                self.validate_board_change(e)
            }
            Event::GovernanceRules(e) => {
                governance()?;
                self.validate_rules(e)
            }
            Event::AgencyEnrolled(e) => {
                governance()?;
                self.validate_agency(e)
            }
            Event::AgencyKeyRotated(e) => {
                governance()?;
                self.validate_rotation(e)
            }
            Event::AgencyRetired(e) => {
                governance()?;
                self.live_agency(&e.agency).map(|_| ())
            }
            Event::ParticipantEnrolled(e) => self.validate_participant(e, signers),
            Event::ParticipantKeyRotated(e) => self.validate_participant_rotation(e, signers),
            Event::ParticipantKeyActivated(e) => {
                gateway()?;
                self.validate_activation(e).map(|_| ())
            }
            Event::ParticipantRotationCancelled(e) => {
                self.validate_cancellation(e, signers).map(|_| ())
            }
            Event::GrievanceFiled(e) => self.validate_grievance(e, signers),
            Event::GrievanceResolved(e) => {
                governance()?;
                match self.grievance_index.get(e.grievance_id.as_str()) {
                    None => Err(ApplyError::UnknownGrievance(e.grievance_id.clone())),
                    Some(&i) => match self.grievances.get(i as usize) {
                        Some(g) if g.resolution.is_some() => {
                            Err(ApplyError::GrievanceResolved(e.grievance_id.clone()))
                        }
                        _ => Ok(()),
                    },
                }
            }
            Event::ConsentGranted(e) => self.validate_grant(e, signers),
            Event::ConsentRevoked(e) => self.validate_revoke(e, signers).map(|_| ()),
            Event::AccessDecided(_)
            | Event::AccessRefused(_)
            | Event::AccessReleased(_)
            | Event::ParticipantNotice(_) => gateway(),
        }
    }

    fn validate_rules(&self, e: &GovernanceRules) -> Result<(), ApplyError> {
        if e.version <= self.rules_version {
            return Err(ApplyError::RulesVersionNotIncreasing {
                version: e.version,
                current: self.rules_version,
            });
        }
        e.rules.validate(&e.vocabulary)?;
        Ok(())
    }

    fn key_free(&self, key_id: &str) -> Result<(), ApplyError> {
        if self.keys.contains_key(key_id) {
            Err(ApplyError::KeyIdInUse(key_id.to_owned()))
        } else {
            Ok(())
        }
    }

    fn need_code(&self, kind: Kind, code: &str) -> Result<(), ApplyError> {
        if self.vocabulary.contains(kind, code) {
            Ok(())
        } else {
            Err(ApplyError::UnknownCode {
                kind: kind.as_str(),
                code: code.to_owned(),
            })
        }
    }

    fn validate_agency(&self, e: &AgencyEnrolled) -> Result<(), ApplyError> {
        if self.agency_index.contains_key(e.agency.as_str()) {
            return Err(ApplyError::AgencyExists(e.agency.clone()));
        }
        self.key_free(&e.key_id)?;
        for class in &e.classes {
            self.need_code(Kind::Class, class)?;
        }
        Ok(())
    }

    /// The index of an enrolled, not retired agency.
    pub(super) fn live_agency(&self, id: &str) -> Result<u32, ApplyError> {
        let index = self
            .agency_index
            .get(id)
            .copied()
            .ok_or_else(|| ApplyError::UnknownAgency(id.to_owned()))?;
        match self.agencies.get(index as usize) {
            Some(a) if !a.retired => Ok(index),
            Some(_) => Err(ApplyError::AgencyRetired(id.to_owned())),
            None => Err(ApplyError::UnknownAgency(id.to_owned())),
        }
    }

    fn validate_rotation(&self, e: &AgencyKeyRotated) -> Result<(), ApplyError> {
        self.live_agency(&e.agency)?;
        self.key_free(&e.key_id)
    }

    fn validate_participant(
        &self,
        e: &ParticipantEnrolled,
        signers: &[&str],
    ) -> Result<(), ApplyError> {
        // Self-enrolment: the signature is checked with the key the entry
        // itself carries (`Event::self_signing_key`).
        if !signed_by(signers, &e.key_id) {
            return Err(ApplyError::NotSignedBy(format!(
                "the enrolled key {:?}",
                e.key_id
            )));
        }
        // Nobody enrols a stranger: the intake agency vouches for the
        // person by co-signing.
        if self.signing_agency(&e.enrolled_by, signers).is_none() {
            return Err(ApplyError::NotSignedBy(format!(
                "the current key of the enrolling organisation {:?}, which has the agency role",
                e.enrolled_by
            )));
        }
        // One refusal for a taken participant id and a taken key id, naming
        // neither: the enrolling agency must not learn that a person is
        // already enrolled (ids are random; a collision is a probe).
        if self.participant_index.contains_key(e.participant.as_str())
            || self.keys.contains_key(e.key_id.as_str())
        {
            return Err(ApplyError::EnrolmentRefused);
        }
        Ok(())
    }

    /// A request to move to a new key, for a lost or leaked one: signed by
    /// the new key, and co-signed by the current key of the organisation
    /// with the `agency` role that enrolled the person (named in
    /// `assisted_by`), or by governance when that agency is retired. Any
    /// other signer, and an unknown participant, get one
    /// [`ApplyError::NotAuthorised`]. One pending request at a time.
    fn validate_participant_rotation(
        &self,
        e: &ParticipantKeyRotated,
        signers: &[&str],
    ) -> Result<(), ApplyError> {
        let rec = self.participant_rec(&e.participant);
        let enrolling = rec.and_then(|p| self.agencies.get(p.enrolled_by as usize));
        let vouched = match enrolling {
            Some(a) if a.retired => self.board_quorum(signers).is_ok() && *a.id == *e.assisted_by,
            Some(a) => {
                *a.id == *e.assisted_by
                    && self
                        .signing_agency(&e.assisted_by, signers)
                        .is_some_and(|i| Some(i) == rec.map(|p| p.enrolled_by))
            }
            None => false,
        };
        if !signed_by(signers, &e.key_id) || !vouched {
            return Err(ApplyError::NotAuthorised);
        }
        if rec.is_some_and(|p| p.pending.is_some()) {
            return Err(ApplyError::RotationPending);
        }
        self.key_free(&e.key_id)
    }

    /// The gateway activates a pending rotation once its wait has passed
    /// at the activation's own time, which the gateway's clock gave.
    pub(super) fn validate_activation(
        &self,
        e: &ParticipantKeyActivated,
    ) -> Result<u32, ApplyError> {
        let index = self
            .participant_index
            .get(e.participant.as_str())
            .copied()
            .ok_or(ApplyError::NoPendingRotation)?;
        let pending = self
            .participants
            .get(index as usize)
            .and_then(|p| p.pending.as_ref())
            .filter(|r| *r.key_id == *e.key_id && r.index == e.rotation_index)
            .ok_or(ApplyError::NoPendingRotation)?;
        if e.at < pending.ready_at {
            return Err(ApplyError::RotationNotDue {
                at: e.at,
                ready_at: pending.ready_at,
            });
        }
        Ok(index)
    }

    /// Only the person's current key cancels a pending rotation: the
    /// pending key cannot, nor can any organisation.
    fn validate_cancellation(
        &self,
        e: &ParticipantRotationCancelled,
        signers: &[&str],
    ) -> Result<u32, ApplyError> {
        let Some(index) = self.signing_participant(&e.participant, signers) else {
            return Err(ApplyError::NotAuthorised);
        };
        let pending = self
            .participants
            .get(index as usize)
            .and_then(|p| p.pending.as_ref());
        match pending {
            Some(r) if *r.key_id == *e.key_id => Ok(index),
            _ => Err(ApplyError::NoPendingRotation),
        }
    }

    fn validate_grievance(&self, e: &GrievanceFiled, signers: &[&str]) -> Result<(), ApplyError> {
        let Some(p) = self.signing_participant_or_pending(&e.participant, signers) else {
            return Err(ApplyError::NotAuthorised);
        };
        if self.grievance_index.contains_key(e.grievance_id.as_str()) {
            return Err(ApplyError::GrievanceExists(e.grievance_id.clone()));
        }
        let filed = self
            .participants
            .get(p as usize)
            .map_or(0, |r| r.grievances.len());
        if filed >= GRIEVANCES_PER_PARTICIPANT_MAX {
            return Err(ApplyError::Capacity);
        }
        Ok(())
    }

    fn validate_grant(&self, e: &ConsentGranted, signers: &[&str]) -> Result<(), ApplyError> {
        // Authority first: nothing below may answer anyone but the participant.
        let Some(p) = self.signing_participant(&e.participant, signers) else {
            return Err(ApplyError::NotAuthorised);
        };
        // Neither a thief holding the old key nor a hostile agency that
        // asked for the new one may grant while the move is pending.
        if self
            .participants
            .get(p as usize)
            .is_some_and(|r| r.pending.is_some())
        {
            return Err(ApplyError::RotationPending);
        }
        if self.find_consent(&e.consent_id).is_some() {
            return Err(ApplyError::ConsentExists(e.consent_id.clone()));
        }
        for parties in [&e.holders, &e.recipients] {
            for agency in &parties.agencies {
                self.live_agency(agency)?;
            }
            for class in &parties.classes {
                self.need_code(Kind::Class, class)?;
            }
        }
        for category in &e.categories {
            self.need_code(Kind::Category, category)?;
        }
        for purpose in &e.purposes {
            self.need_code(Kind::Purpose, purpose)?;
            if self.rules.is_forbidden(purpose) {
                return Err(ApplyError::ForbiddenPurpose {
                    purpose: purpose.clone(),
                    language: e.language,
                });
            }
        }
        // "Until revoked" only where the rules offer it, and even then the
        // maximum duration ends it (see `insert_consent`).
        match e.expires_at {
            None if !self.rules.allow_until_revoked() => return Err(ApplyError::ExpiryRequired),
            None => {}
            Some(expires_at) => {
                let seconds = expires_at.saturating_sub(e.effective_at);
                if seconds > self.rules.consent_duration_seconds_max() {
                    return Err(ApplyError::DurationTooLong {
                        days: seconds.div_euclid(86_400),
                        days_max: self.rules.consent_duration_days_max(),
                    });
                }
            }
        }
        Ok(())
    }

    /// An assisted revocation: accepted when signed by the participant's
    /// own key (whoever helped), or by the current key of the agency named
    /// in `assisted_by` when that agency is a party to this very consent:
    /// named as a holder or recipient, or a member of a holder or recipient
    /// class. Anyone else gets [`ApplyError::NotAuthorised`], the same as for
    /// a consent or a person that does not exist.
    fn validate_revoke(&self, e: &ConsentRevoked, signers: &[&str]) -> Result<u32, ApplyError> {
        let participant = self.participant_index.get(e.participant.as_str()).copied();
        let consent = self.find_consent(&e.consent_id).and_then(|i| {
            let rec = self.consents.get(i as usize)?;
            (Some(rec.participant) == participant).then_some((i, rec))
        });
        if self
            .signing_participant_or_pending(&e.participant, signers)
            .is_some()
        {
            // The participant may learn what is true of their own consents.
            let (index, rec) =
                consent.ok_or_else(|| ApplyError::UnknownConsent(e.consent_id.clone()))?;
            if let Some(agency) = &e.assisted_by {
                self.live_agency(agency)?;
            }
            if rec.revoked {
                return Err(ApplyError::AlreadyRevoked(e.consent_id.clone()));
            }
            return Ok(index);
        }
        let assistant = e
            .assisted_by
            .as_deref()
            .and_then(|a| self.signing_agency(a, signers));
        match (assistant, consent) {
            (Some(agency), Some((index, rec))) if self.is_party(rec, agency) => {
                if rec.revoked {
                    return Err(ApplyError::AlreadyRevoked(e.consent_id.clone()));
                }
                Ok(index)
            }
            _ => Err(ApplyError::NotAuthorised),
        }
    }

    /// The participant `id`, if one of `signers` is its current key. The
    /// answer starts from the keys, so it is `None` alike for an unknown
    /// person and for an enrolled one who did not sign.
    fn signing_participant(&self, id: &str, signers: &[&str]) -> Option<u32> {
        signers.iter().find_map(|&key_id| {
            let key = self.keys.get(key_id).filter(|k| k.current)?;
            let OwnerRec::Participant(index) = key.owner else {
                return None;
            };
            let p = self.participants.get(index as usize)?;
            (&*p.id == id && &*p.key_id == key_id).then_some(index)
        })
    }

    /// The participant `id`, if one of `signers` is its current key or the
    /// key of its pending rotation: either may revoke (and file a
    /// grievance), so that a person who lost their key, or whose key was
    /// stolen, can always stop sharing.
    fn signing_participant_or_pending(&self, id: &str, signers: &[&str]) -> Option<u32> {
        self.signing_participant(id, signers).or_else(|| {
            let index = self.participant_index.get(id).copied()?;
            let pending = self.participants.get(index as usize)?.pending.as_ref()?;
            signed_by(signers, &pending.key_id).then_some(index)
        })
    }

    /// The live organisation `id` with the `agency` role, if one of
    /// `signers` is its current key. Only such an organisation vouches for
    /// a person (enrolment, rotation) or helps them revoke: an auditor's or
    /// a witness's signature gives no authority over anyone's records.
    fn signing_agency(&self, id: &str, signers: &[&str]) -> Option<u32> {
        signers.iter().find_map(|&key_id| {
            let key = self.keys.get(key_id).filter(|k| k.current)?;
            let OwnerRec::Agency(index) = key.owner else {
                return None;
            };
            let a = self.agencies.get(index as usize)?;
            (&*a.id == id && &*a.key_id == key_id && !a.retired && a.has_role(Role::Agency))
                .then_some(index)
        })
    }

    /// True if `agency` may disclose or receive under the consent: named,
    /// or a member of a named class.
    fn is_party(&self, rec: &ConsentRec, agency: u32) -> bool {
        let Some(a) = self.agencies.get(agency as usize) else {
            return false;
        };
        let in_class = |classes: &[u32]| classes.iter().any(|c| a.classes.contains(c));
        self.holder_agencies(rec).contains(&agency)
            || self.recipient_agencies(rec).contains(&agency)
            || in_class(self.holder_classes(rec))
            || in_class(self.recipient_classes(rec))
    }
}
