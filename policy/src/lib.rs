//! # policy: Consentry's consent model and decision function
//!
//! **One job:** decide, deterministically, whether one agency may receive
//! which of a participant's records from another agency, for a stated
//! purpose, under the participant's consents and the deployment's
//! governance rules; and say why, in words a person can read.
//!
//! ## Layout
//! - [`vocab`]: hierarchical codes (categories, purposes, agency classes)
//!   with English and Spanish labels; TOML configuration, shipped defaults.
//! - [`rules`]: governance rules above any consent: forbidden purposes,
//!   break-glass, maximum duration, categories needing a named recipient.
//! - [`event`]: the ledger entry formats and `parse_event`.
//! - [`state`]: `ConsentState`, built by applying entries in ledger order;
//!   also the key registry the gateway and auditor verify signatures with.
//! - [`decision`]: `decide`, reason codes, the agency's view, the
//!   `access.decided` entry and `replay_check` for the auditor.
//! - [`explain`]: plain-language summaries and dates.
//!
//! ## Invariants
//! - `decide` is a pure function of (state, request, time): same inputs,
//!   same decision, on every machine; it never panics.
//! - Only the requested categories that an active consent covers are
//!   released (or, flagged, those break-glass permits); nothing else.
//! - An [`Allow`] exists only if `decide` made it: it is the gateway's proof
//!   that it may forward data.
//! - What the agency is told ([`Decision::agency_view`]) is identical for an
//!   unknown participant and for one who gave this agency no consent.
//! - Revocation takes effect from the ledger position of its entry.
//!
//! ## Never
//! No I/O, no clock (callers pass `at`), no HTTP, no storage, no crypto
//! (callers verify signatures and pass the signing key ids).
#![forbid(unsafe_code)]

pub mod decision;
pub mod event;
pub mod explain;
pub mod limits;
pub mod rules;
pub mod state;
pub mod vocab;

pub use decision::{
    access_decided, decide, replay_check, AgencyView, Allow, Decision, Deny, Mismatch, Outcome,
    Reason, Request, Withheld,
};
pub use event::{
    is_valid_id, parse_event, AccessCompleted, AccessDecided, AccessRefused, AgencyEnrolled,
    AgencyKeyRotated, AgencyRetired, ConsentGranted, ConsentRevoked, Event, GovernanceRules,
    ParseError, ParticipantEnrolled, Parties, Role, V1,
};
pub use explain::{consent_summary, decision_summary, format_date, Language};
pub use rules::{BreakGlass, Rules, RulesError};
pub use state::{
    AgencyInfo, ApplyError, ConsentState, ConsentStatus, ConsentView, KeyInfo, KeyOwner,
    Revocation, Trust,
};
pub use vocab::{Kind, Term, Vocabulary, VocabularyError};
