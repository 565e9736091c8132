//! `ConsentState`: everything decided so far, built by applying ledger
//! events in order. The gateway applies them live; the auditor replays them
//! from index 0 through the same code.
//!
//! Memory matters (a deployment holds millions of consents), so a consent is
//! a fixed-size record whose lists live in one shared pool of interned u32
//! ids, and its id lives in one string arena.
//!
//! ## Layout
//! - this file: the state, [`ApplyError`], and the two ways in,
//!   [`ConsentState::check`] and [`ConsentState::apply`];
//! - `views`: what readers get ([`ConsentView`], [`AgencyInfo`],
//!   [`KeyInfo`], [`RotationView`], [`GrievanceView`], ...);
//! - `records`: the compact records behind them, and the code interner;
//! - `validation`: whether an event may be applied: who signed first, then
//!   what it says against the state;
//! - `mutation`: applying an event that passed validation, one step per
//!   event type;
//! - `queries`: the look-ups `decide` uses, and the public read accessors.
//!
//! The files are one room in the crate's module order: they reach each
//! other through `super::` and reach only modules before `state`.

mod mutation;
mod queries;
mod records;
mod validation;
mod views;

use std::collections::{BTreeSet, HashMap};

use crate::event::{Event, ParseError};
use crate::rules::{Rules, RulesError};
use crate::vocab::Vocabulary;
use crate::words::Language;

pub(crate) use records::{AgencyRec, ConsentRec};
pub use views::{
    AgencyInfo, CancelledRotation, ConsentStatus, ConsentView, GrievanceView, KeyInfo, KeyOwner,
    Revocation, RotationView,
};

use records::{Codes, KeyRec, OwnerRec, ParticipantRec, Posting};

/// Grievances one participant may have on file: bounds what one key can
/// make the state hold.
pub const GRIEVANCES_PER_PARTICIPANT_MAX: usize = 256;

/// The keys the deployment trusts from the start (base64 public keys).
/// The community board is the governance key and `board`'s members; a
/// governance entry needs `quorum` of them, distinct by public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trust {
    /// The board's first member (a deployment from before boards: the
    /// board of one).
    pub governance_key_id: String,
    pub governance_public_key: String,
    pub gateway_key_id: String,
    pub gateway_public_key: String,
    /// The board's other members; none: a board of one.
    pub board: Vec<BoardMember>,
    /// How many distinct members sign a governance entry: at least 1, at
    /// most the board's size.
    pub quorum: u32,
}

pub use crate::event::BoardMember;

impl Trust {
    /// Trust roots with a board of one, the governance key.
    pub fn single(
        governance_key_id: impl Into<String>,
        governance_public_key: impl Into<String>,
        gateway_key_id: impl Into<String>,
        gateway_public_key: impl Into<String>,
    ) -> Self {
        Self {
            governance_key_id: governance_key_id.into(),
            governance_public_key: governance_public_key.into(),
            gateway_key_id: gateway_key_id.into(),
            gateway_public_key: gateway_public_key.into(),
            board: Vec::new(),
            quorum: 1,
        }
    }

    /// Every member, the governance key first.
    pub fn members(&self) -> impl Iterator<Item = (&str, &str)> {
        std::iter::once((
            self.governance_key_id.as_str(),
            self.governance_public_key.as_str(),
        ))
        .chain(
            self.board
                .iter()
                .map(|m| (m.key_id.as_str(), m.public_key.as_str())),
        )
    }

    /// Why these roots cannot work: a quorum of nobody or of more members
    /// than there are, a key id or a public key listed twice.
    pub fn check(&self) -> Result<(), String> {
        let members: Vec<(&str, &str)> = self.members().collect();
        if self.quorum == 0 || self.quorum as usize > members.len() {
            return Err(format!(
                "a quorum of {} for a board of {}",
                self.quorum,
                members.len()
            ));
        }
        let mut ids = std::collections::HashSet::new();
        let mut keys = std::collections::HashSet::new();
        for (id, key) in members.iter().copied().chain(std::iter::once((
            self.gateway_key_id.as_str(),
            self.gateway_public_key.as_str(),
        ))) {
            if !ids.insert(id) {
                return Err(format!("key id {id:?} listed twice"));
            }
            if !keys.insert(key) {
                return Err(format!("the key of {id:?} listed twice"));
            }
        }
        Ok(())
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
    #[error("board change refused: {0}")]
    Board(String),
    #[error(
        "the board's quorum is {quorum} distinct members; this entry has {members} ({signers})"
    )]
    BelowQuorum {
        quorum: u32,
        members: usize,
        signers: String,
    },
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

/// The consent ledger's meaning: registry of keys and agencies, participants,
/// consents, and the vocabulary and rules in force.
#[derive(Clone, Debug)]
pub struct ConsentState {
    trust: Trust,
    /// Distinct board members a governance entry needs now.
    quorum: u32,
    /// The key ids of the board's current members.
    board: Vec<Box<str>>,
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
    rotations_due: BTreeSet<(i64, u32)>,
    cancelled_rotations: Vec<CancelledRotation>,
    last_index: Option<u64>,
}

impl ConsentState {
    /// An empty state: default vocabulary and rules (version 0), and the two
    /// deployment keys.
    pub fn new(trust: Trust) -> Self {
        let mut keys = HashMap::new();
        for (key_id, public_key) in trust.members() {
            keys.insert(
                key_id.into(),
                KeyRec {
                    public_key: public_key.into(),
                    owner: OwnerRec::Governance,
                    current: true,
                },
            );
        }
        keys.insert(
            trust.gateway_key_id.as_str().into(),
            KeyRec {
                public_key: trust.gateway_public_key.as_str().into(),
                owner: OwnerRec::Gateway,
                current: true,
            },
        );
        ConsentState {
            quorum: trust.quorum.max(1),
            board: trust.members().map(|(id, _)| id.into()).collect(),
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
            rotations_due: BTreeSet::new(),
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
}
