//! `ConsentState`: everything decided so far, built by applying ledger
//! events in order. The gateway applies them live; the auditor replays them
//! from index 0 through the same code.
//!
//! Memory matters (a deployment holds millions of consents), so a consent is
//! a fixed-size record whose lists live in one shared pool of interned u32
//! ids, and its id lives in one string arena.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::ops::Range;

use crate::event::{
    AgencyEnrolled, AgencyKeyRotated, AgencyRetired, ConsentGranted, ConsentRevoked, Event,
    GovernanceRules, GrievanceFiled, GrievanceResolved, ParseError, ParticipantEnrolled,
    ParticipantKeyActivated, ParticipantKeyRotated, ParticipantRotationCancelled, Parties, Role,
    V1,
};
use crate::rules::{Rules, RulesError};
use crate::vocab::{parent_code, Kind, Vocabulary};
use crate::words::Language;

/// Grievances one participant may have on file: bounds what one key can
/// make the state hold.
pub const GRIEVANCES_PER_PARTICIPANT_MAX: usize = 256;

/// "No such item" in the u32 links below.
const NONE: u32 = u32::MAX;
/// Tags a (participant, class) key apart from a (participant, agency) key.
const CLASS_KEY_BIT: u64 = 1 << 31;

/// The keys the deployment trusts from the start (base64 public keys).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trust {
    pub governance_key_id: String,
    pub governance_public_key: String,
    pub gateway_key_id: String,
    pub gateway_public_key: String,
}

/// Whose key it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyOwner {
    Governance,
    Gateway,
    Agency(String),
    Participant(String),
}

/// A key in the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub key_id: String,
    pub public_key: String,
    pub owner: KeyOwner,
    /// False once rotated away or once its agency is retired. Signatures
    /// made before that stay verifiable with it.
    pub current: bool,
}

/// An enrolled agency, as the gateway and portal read it: its enrolment
/// entry, and what later entries changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgencyInfo {
    /// The `agency.enrolled` entry as applied (classes and roles without
    /// repeats, classes in the state's order); its key is the first key.
    pub enrolled: AgencyEnrolled,
    /// The key it signs with now, after any rotations.
    pub current_key_id: String,
    pub retired: bool,
}

impl AgencyInfo {
    pub fn id(&self) -> &str {
        &self.enrolled.agency
    }
}

/// Where a consent stands at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConsentStatus {
    Active,
    NotYetEffective,
    Expired,
    Revoked,
}

impl ConsentStatus {
    pub fn code(self) -> &'static str {
        match self {
            ConsentStatus::Active => "active",
            ConsentStatus::NotYetEffective => "not-yet-effective",
            ConsentStatus::Expired => "expired",
            ConsentStatus::Revoked => "revoked",
        }
    }
}

/// How and where a consent was revoked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// Ledger index of the revoke entry: it takes effect from there.
    pub index: u64,
    pub at: i64,
    pub assisted_by: Option<String>,
}

/// A consent, as the portal, the explanations and the auditor read it: the
/// grant, and where it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentView {
    /// The `consent.granted` entry as applied (lists without repeats, in
    /// the participant's order; `expires_at: None` for "until revoked").
    pub granted: ConsentGranted,
    /// Ledger index of the grant entry.
    pub granted_index: u64,
    /// The first instant the consent is no longer active (unless revoked
    /// before): its expiry, or for an until-revoked consent its effective
    /// date plus the maximum duration of the rules it was granted under.
    pub ends_at: i64,
    pub revocation: Option<Revocation>,
}

impl ConsentView {
    pub fn status(&self, at: i64) -> ConsentStatus {
        status_of(
            self.revocation.is_some(),
            self.granted.effective_at,
            self.ends_at,
            at,
        )
    }
}

fn status_of(revoked: bool, effective_at: i64, ends_at: i64, at: i64) -> ConsentStatus {
    if revoked {
        ConsentStatus::Revoked
    } else if at < effective_at {
        ConsentStatus::NotYetEffective
    } else if at >= ends_at {
        ConsentStatus::Expired
    } else {
        ConsentStatus::Active
    }
}

/// Why an event cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("entry index {index} is not after the last applied index {last}")]
    OutOfOrder { index: u64, last: u64 },
    #[error("invalid entry: {0}")]
    Invalid(#[from] ParseError),
    #[error("entry must be signed by {0}")]
    NotSignedBy(String),
    #[error("invalid rules: {0}")]
    Rules(#[from] RulesError),
    #[error("rules version {version} is not above the current version {current}")]
    RulesVersionNotIncreasing { version: u32, current: u32 },
    #[error("key id {0:?} is already in use")]
    KeyIdInUse(String),
    #[error("agency {0:?} is already enrolled")]
    AgencyExists(String),
    #[error("unknown agency {0:?}")]
    UnknownAgency(String),
    #[error("agency {0:?} is retired")]
    AgencyRetired(String),
    /// A consent entry whose signatures give no authority over the
    /// participant it names. One error, carrying nothing, for every such
    /// case (unknown person, unknown consent, someone else's key, an agency
    /// that is no party), so that a refusal never tells a signer who is
    /// not the participant whether that person is enrolled.
    #[error("the signatures do not authorise this entry for the participant it names")]
    NotAuthorised,
    /// A participant id or key id already taken: one error for both, naming
    /// neither.
    #[error("enrolment refused: choose another participant id and key")]
    EnrolmentRefused,
    #[error("{kind} code {code:?} is not in the vocabulary in force")]
    UnknownCode { kind: &'static str, code: String },
    #[error(
        "purpose {purpose:?} is forbidden by the governance rules: no consent can authorise it"
    )]
    ForbiddenPurpose {
        purpose: String,
        /// The grant's language, for telling the participant why.
        language: Language,
    },
    #[error("consent lasts {days} days, more than the {days_max} days the rules allow")]
    DurationTooLong { days: i64, days_max: u32 },
    #[error("the rules do not allow a consent without an expiry date")]
    ExpiryRequired,
    #[error("consent id {0:?} is already used")]
    ConsentExists(String),
    #[error("unknown consent {0:?}")]
    UnknownConsent(String),
    #[error("consent {0:?} is already revoked")]
    AlreadyRevoked(String),
    #[error("too many items for one deployment or one participant")]
    Capacity,
    #[error("grievance id {0:?} is already used")]
    GrievanceExists(String),
    #[error("unknown grievance {0:?}")]
    UnknownGrievance(String),
    #[error("grievance {0:?} is already resolved")]
    GrievanceResolved(String),
    /// Told only to the participant's own keys and the enrolling agency.
    #[error("a move to a new key is pending: no consent can be granted until it is activated or cancelled")]
    RotationPending,
    #[error("no move to that key is pending")]
    NoPendingRotation,
    #[error("the waiting period of this key rotation ends at {ready_at}, after {at}")]
    RotationNotDue { at: i64, ready_at: i64 },
}

/// Interns codes to u32 ids, keeping each code's parent so that "covers" is
/// a walk up a short chain of integers.
#[derive(Clone, Debug, Default)]
struct Codes {
    ids: HashMap<Box<str>, u32>,
    entries: Vec<(Box<str>, u32)>,
}

impl Codes {
    fn get(&self, code: &str) -> Option<u32> {
        self.ids.get(code).copied()
    }

    fn intern(&mut self, code: &str) -> Result<u32, ApplyError> {
        if let Some(id) = self.get(code) {
            return Ok(id);
        }
        let parent = match parent_code(code) {
            Some(p) => self.intern(p)?,
            None => NONE,
        };
        let id = u32::try_from(self.entries.len()).map_err(|_| ApplyError::Capacity)?;
        self.entries.push((code.into(), parent));
        self.ids.insert(code.into(), id);
        Ok(id)
    }

    fn name(&self, id: u32) -> &str {
        self.entries.get(id as usize).map(|e| &*e.0).unwrap_or("")
    }

    /// True if `granted` is `requested` or one of its ancestors.
    fn covers(&self, granted: u32, requested: u32) -> bool {
        let mut at = requested;
        // Depth is bounded by the code length; the guard keeps a corrupt
        // chain from looping.
        for _ in 0..64 {
            if at == granted {
                return true;
            }
            match self.entries.get(at as usize) {
                Some(&(_, parent)) if parent != NONE => at = parent,
                _ => return false,
            }
        }
        false
    }
}

#[derive(Clone, Debug)]
pub(crate) struct AgencyRec {
    id: Box<str>,
    name: Box<str>,
    /// The key it enrolled with; `key_id` is the current one.
    enrolled_key_id: Box<str>,
    key_id: Box<str>,
    upstream: Box<str>,
    pub(crate) classes: Vec<u32>,
    roles: Vec<Role>,
    enrolled_at: i64,
    pub(crate) retired: bool,
}

impl AgencyRec {
    pub(crate) fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

#[derive(Clone, Debug)]
struct ParticipantRec {
    id: Box<str>,
    key_id: Box<str>,
    consents: Vec<u32>,
    /// The agency whose intake enrolled them.
    enrolled_by: u32,
    /// Indexes into `ConsentState::grievances`.
    grievances: Vec<u32>,
    pending: Option<PendingRec>,
}

/// A requested move to a new key, waiting for its activation.
#[derive(Clone, Debug)]
struct PendingRec {
    key_id: Box<str>,
    /// Ledger index of the `participant.key_rotated` entry.
    index: u64,
    requested_at: i64,
    /// The first instant the gateway may activate it: `requested_at` plus
    /// the wait of the rules in force at the request.
    ready_at: i64,
    assisted_by: Box<str>,
}

/// A key rotation that is pending, as the participant, the gateway's
/// activation task and the board read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotationView {
    pub participant: String,
    pub key_id: String,
    pub index: u64,
    pub requested_at: i64,
    pub ready_at: i64,
    /// The organisation that co-signed the request.
    pub assisted_by: String,
}

/// A rotation the person's current key cancelled: flagged to the board,
/// since either someone tried to take the key or the person changed their
/// mind, and both deserve a look.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CancelledRotation {
    pub rotation: RotationView,
    /// Ledger index of the `participant.rotation_cancelled` entry.
    pub cancelled_index: u64,
    pub cancelled_at: i64,
}

/// A grievance as the participant and the auditor read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrievanceView {
    pub filed: GrievanceFiled,
    /// Ledger index of the `grievance.filed` entry.
    pub filed_index: u64,
    /// The answer, with the ledger index of its entry.
    pub resolution: Option<(GrievanceResolved, u64)>,
}

#[derive(Clone, Copy, Debug)]
enum OwnerRec {
    Governance,
    Gateway,
    Agency(u32),
    Participant(u32),
}

#[derive(Clone, Debug)]
struct KeyRec {
    public_key: Box<str>,
    owner: OwnerRec,
    current: bool,
}

/// The slots of a consent's lists in the shared pool, in order.
const HOLDER_AGENCIES: usize = 0;
const HOLDER_CLASSES: usize = 1;
const RECIPIENT_AGENCIES: usize = 2;
const RECIPIENT_CLASSES: usize = 3;
const CATEGORIES: usize = 4;
const PURPOSES: usize = 5;

/// One consent, fixed size; its lists are ranges of `ConsentState::pool`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConsentRec {
    pub(crate) participant: u32,
    id_start: u32,
    pool_start: u32,
    id_len: u16,
    lens: [u8; 6],
    language: Language,
    pub(crate) revoked: bool,
    /// Signed without an expiry; `ends_at` is then the rules' bound.
    until_revoked: bool,
    pub(crate) effective_at: i64,
    /// The first instant it is no longer active: see `ConsentView::ends_at`.
    pub(crate) ends_at: i64,
    signed_at: i64,
    granted_index: u64,
}

impl ConsentRec {
    fn range(&self, slot: usize) -> Range<usize> {
        let start = self.pool_start as usize
            + self
                .lens
                .get(..slot)
                .map(|l| l.iter().map(|&n| n as usize).sum::<usize>())
                .unwrap_or(0);
        let len = self.lens.get(slot).map(|&n| n as usize).unwrap_or(0);
        start..start + len
    }
}

#[derive(Clone, Copy, Debug)]
struct Posting {
    consent: u32,
    next: u32,
}

/// The consent ledger's meaning: registry of keys and agencies, participants,
/// consents, and the vocabulary and rules in force.
#[derive(Clone, Debug)]
pub struct ConsentState {
    trust: Trust,
    rules_version: u32,
    vocabulary: Vocabulary,
    rules: Rules,
    keys: HashMap<Box<str>, KeyRec>,
    agencies: Vec<AgencyRec>,
    agency_index: HashMap<Box<str>, u32>,
    participants: Vec<ParticipantRec>,
    participant_index: HashMap<Box<str>, u32>,
    codes: Codes,
    consents: Vec<ConsentRec>,
    consent_id_arena: String,
    /// Consent id hash -> first consent with that hash; a different id with
    /// the same hash goes to `consent_id_overflow` (so collisions, even
    /// crafted ones, cost a look-up, never correctness).
    consent_by_hash: HashMap<u64, u32>,
    consent_id_overflow: HashMap<Box<str>, u32>,
    pool: Vec<u32>,
    /// (participant, recipient agency or class) -> head of a posting chain.
    by_recipient: HashMap<u64, u32>,
    postings: Vec<Posting>,
    revocations: HashMap<u32, (u64, i64, Option<u32>)>,
    grievances: Vec<GrievanceView>,
    grievance_index: HashMap<Box<str>, u32>,
    /// Pending rotations by (ready_at, participant): the activation task
    /// finds the due ones in O(log n + due).
    rotations_due: std::collections::BTreeSet<(i64, u32)>,
    cancelled_rotations: Vec<CancelledRotation>,
    last_index: Option<u64>,
}

fn rotation_view(participant: &str, r: &PendingRec) -> RotationView {
    RotationView {
        participant: participant.to_owned(),
        key_id: r.key_id.to_string(),
        index: r.index,
        requested_at: r.requested_at,
        ready_at: r.ready_at,
        assisted_by: r.assisted_by.to_string(),
    }
}

fn id_hash(id: &str) -> u64 {
    // A fixed-key hasher: the map stays the same across processes, which
    // keeps the state's behaviour reproducible.
    let mut h = DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

fn agency_key(participant: u32, agency: u32) -> u64 {
    (u64::from(participant) << 32) | u64::from(agency)
}

fn class_key(participant: u32, class: u32) -> u64 {
    (u64::from(participant) << 32) | CLASS_KEY_BIT | u64::from(class)
}

fn signed_by(signers: &[&str], key_id: &str) -> bool {
    signers.contains(&key_id)
}

impl ConsentState {
    /// An empty state: default vocabulary and rules (version 0), and the two
    /// deployment keys.
    pub fn new(trust: Trust) -> Self {
        let mut keys = HashMap::new();
        keys.insert(
            trust.governance_key_id.as_str().into(),
            KeyRec {
                public_key: trust.governance_public_key.as_str().into(),
                owner: OwnerRec::Governance,
                current: true,
            },
        );
        keys.insert(
            trust.gateway_key_id.as_str().into(),
            KeyRec {
                public_key: trust.gateway_public_key.as_str().into(),
                owner: OwnerRec::Gateway,
                current: true,
            },
        );
        ConsentState {
            trust,
            rules_version: 0,
            vocabulary: Vocabulary::default_recovery(),
            rules: Rules::default_recovery(),
            keys,
            agencies: Vec::new(),
            agency_index: HashMap::new(),
            participants: Vec::new(),
            participant_index: HashMap::new(),
            codes: Codes::default(),
            consents: Vec::new(),
            consent_id_arena: String::new(),
            consent_by_hash: HashMap::new(),
            consent_id_overflow: HashMap::new(),
            pool: Vec::new(),
            by_recipient: HashMap::new(),
            postings: Vec::new(),
            revocations: HashMap::new(),
            grievances: Vec::new(),
            grievance_index: HashMap::new(),
            rotations_due: std::collections::BTreeSet::new(),
            cancelled_rotations: Vec::new(),
            last_index: None,
        }
    }

    /// Validates `event` against the current state (authorship and meaning)
    /// without applying it: the gateway checks before appending.
    pub fn check(&self, event: &Event, signer_key_ids: &[&str]) -> Result<(), ApplyError> {
        self.validate(event, signer_key_ids)
    }

    /// Validates and applies the event found at ledger `index`. Indices must
    /// increase (gaps are allowed: not every entry need be applied).
    pub fn apply(
        &mut self,
        index: u64,
        event: &Event,
        signer_key_ids: &[&str],
    ) -> Result<(), ApplyError> {
        if let Some(last) = self.last_index {
            if index <= last {
                return Err(ApplyError::OutOfOrder { index, last });
            }
        }
        self.validate(event, signer_key_ids)?;
        self.mutate(index, event)?;
        self.last_index = Some(index);
        Ok(())
    }

    // ----- validation -------------------------------------------------------

    fn validate(&self, event: &Event, signers: &[&str]) -> Result<(), ApplyError> {
        event.validate()?;
        let governance = || {
            if signed_by(signers, &self.trust.governance_key_id) {
                Ok(())
            } else {
                Err(ApplyError::NotSignedBy("the governance key".into()))
            }
        };
        let gateway = || {
            if signed_by(signers, &self.trust.gateway_key_id) {
                Ok(())
            } else {
                Err(ApplyError::NotSignedBy("the gateway key".into()))
            }
        };
        match event {
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
    fn live_agency(&self, id: &str) -> Result<u32, ApplyError> {
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
            Some(a) if a.retired => {
                signed_by(signers, &self.trust.governance_key_id) && *a.id == *e.assisted_by
            }
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
    fn validate_activation(&self, e: &ParticipantKeyActivated) -> Result<u32, ApplyError> {
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

    fn participant_rec(&self, id: &str) -> Option<&ParticipantRec> {
        self.participant_index
            .get(id)
            .and_then(|&i| self.participants.get(i as usize))
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

    // ----- mutation (only after validation) ---------------------------------

    fn mutate(&mut self, index: u64, event: &Event) -> Result<(), ApplyError> {
        match event {
            Event::GovernanceRules(e) => {
                self.rules_version = e.version;
                self.vocabulary = e.vocabulary.clone();
                self.rules = e.rules.clone();
            }
            Event::AgencyEnrolled(e) => {
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
            }
            Event::AgencyKeyRotated(e) => {
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
            }
            Event::AgencyRetired(AgencyRetired { agency, .. }) => {
                let id = self.live_agency(agency)?;
                if let Some(rec) = self.agencies.get_mut(id as usize) {
                    rec.retired = true;
                    if let Some(key) = self.keys.get_mut(&rec.key_id) {
                        key.current = false;
                    }
                }
            }
            Event::ParticipantEnrolled(e) => {
                let id =
                    u32::try_from(self.participants.len()).map_err(|_| ApplyError::Capacity)?;
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
            }
            Event::ConsentGranted(e) => self.insert_consent(index, e)?,
            Event::ConsentRevoked(e) => {
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
            }
            Event::ParticipantKeyRotated(e) => {
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
            }
            Event::ParticipantKeyActivated(e) => {
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
            }
            Event::ParticipantRotationCancelled(e) => {
                let participant = e.participant.clone();
                let id = self
                    .participant_index
                    .get(participant.as_str())
                    .copied()
                    .ok_or(ApplyError::NoPendingRotation)?;
                let pending = self
                    .participants
                    .get_mut(id as usize)
                    .and_then(|r| r.pending.take())
                    .ok_or(ApplyError::NoPendingRotation)?;
                self.rotations_due.remove(&(pending.ready_at, id));
                self.cancelled_rotations.push(CancelledRotation {
                    rotation: rotation_view(&participant, &pending),
                    cancelled_index: index,
                    cancelled_at: e.at,
                });
            }
            Event::GrievanceFiled(e) => {
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
            }
            Event::GrievanceResolved(e) => {
                let g = self
                    .grievance_index
                    .get(e.grievance_id.as_str())
                    .copied()
                    .ok_or_else(|| ApplyError::UnknownGrievance(e.grievance_id.clone()))?;
                if let Some(view) = self.grievances.get_mut(g as usize) {
                    view.resolution = Some((e.clone(), index));
                }
            }
            Event::AccessDecided(_)
            | Event::AccessRefused(_)
            | Event::AccessReleased(_)
            | Event::ParticipantNotice(_) => {}
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
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(consent);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
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

    // ----- crate-internal look-ups for `decide` -----------------------------

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
