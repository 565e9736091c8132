//! # policy: Consentry's consent model and decision function
//!
//! **One job:** decide, deterministically, whether one agency may receive
//! which of a participant's records from another agency, for a stated
//! purpose, under the participant's consents and the deployment's
//! governance rules; and say why, in words a person can read.
//!
//! ## Layout
//! In dependency order: each module imports only modules listed before it
//! (a unit test below reads the sources and holds this).
//! - [`limits`]: size bounds on every field read from the ledger, and the
//!   JSON budgets that keep a governance entry within one ledger entry.
//! - [`words`]: the shared words: [`Language`], [`Outcome`], [`Reason`]
//!   codes and their sentences.
//! - [`vocab`]: hierarchical codes (categories, purposes, agency classes)
//!   with English and Spanish labels; TOML configuration, shipped defaults.
//! - [`rules`]: governance rules above any consent: forbidden purposes,
//!   break-glass, maximum duration, categories needing a named recipient.
//! - [`event`]: the ledger entry formats, `parse_event`, and the fields
//!   the log indexes ([`INDEXED_FIELDS`]).
//! - [`state`]: `ConsentState`, built by applying entries in ledger order;
//!   also the key registry the gateway and auditor verify signatures with.
//!   A folder, one room in this order: views, records, validation,
//!   mutation, queries (see its docs).
//!   Its views embed the entries they came from ([`ConsentView::granted`],
//!   [`AgencyInfo::enrolled`]).
//! - [`decision`]: `decide`, the agency's view, the `access.decided` entry
//!   and `replay_check` for the auditor.
//! - [`explain`]: plain-language summaries, the participant's timeline
//!   sentences, and dates.
//!
//! ## Invariants
//! - `decide` is a pure function of (state, request, time): same inputs,
//!   same decision, on every machine; it never panics.
//! - Only the requested categories that an active consent covers are
//!   released (or, flagged, those break-glass permits); nothing else. A
//!   released code covers the codes under it, so a category with a
//!   category needing a named recipient under it is released whole only
//!   under a consent naming the requester; a consent naming only its class
//!   releases the sub-categories without one (see [`decide`]).
//! - An [`Allow`] exists only if `decide` made it: it is the gateway's proof
//!   that it may forward data.
//! - What the agency is told ([`Decision::agency_view`]) is identical for an
//!   unknown participant and for one who gave this agency no consent.
//! - Authority before look-up: `check`/`apply` read who signed before
//!   looking up the participant or consent an entry names, and anyone who
//!   is not the participant (nor an agency party to the consent, for an
//!   assisted revocation) gets one [`ApplyError::NotAuthorised`], whether
//!   or not the person or consent exists; a taken id at enrolment gets one
//!   [`ApplyError::EnrolmentRefused`].
//! - Every consent ends: at its expiry, or, for "until revoked" (offered
//!   only where the rules say so), at its effective date plus the maximum
//!   duration of the rules it was granted under.
//! - Revocation takes effect from the ledger position of its entry.
//! - One entry size limit, the ledger's (`ledger::entry::ENTRY_BYTES_MAX`,
//!   16 KiB): `parse_event` reads entries the ledger has bounded; policy's
//!   field limits bound the state, and every vocabulary and rule set policy
//!   accepts fits in one entry.
//!
//! ## Never
//! No I/O, no clock (callers pass `at`), no HTTP, no storage, no crypto
//! (callers verify signatures and pass the signing key ids), no dependency
//! on the ledger crate.
#![forbid(unsafe_code)]

pub mod decision;
pub mod event;
pub mod explain;
pub mod limits;
pub mod rules;
pub mod state;
pub mod vocab;
pub mod words;

pub use decision::{
    access_decided, decide, replay_check, AgencyView, Allow, Decision, Deny, Mismatch, Request,
    Withheld,
};
pub use event::{
    is_valid_id, parse_event, AccessDecided, AccessRefused, AccessReleased, AgencyEnrolled,
    AgencyKeyRotated, AgencyRetired, BoardChanged, CategoryCount, ClaimedKey, ConsentGranted,
    ConsentRevoked, Event, Evidence, EvidenceMethod, Forwarded, ForwardedParam, GovernanceRules,
    GrievanceFiled, GrievanceResolved, NoticeKind, ParseError, ParticipantEnrolled,
    ParticipantKeyActivated, ParticipantKeyRotated, ParticipantNotice,
    ParticipantRotationCancelled, Parties, Role, V1or2, INDEXED_FIELDS, V1,
};
pub use explain::{
    civil_date, consent_summary, decision_summary, format_date, notice_sentence, timeline_sentence,
};
pub use rules::{BreakGlass, Rules, RulesError};
pub use state::{
    AgencyInfo, ApplyError, BoardMember, CancelledRotation, ConsentState, ConsentStatus,
    ConsentView, GrievanceView, KeyInfo, KeyOwner, Revocation, RotationView, Trust,
    GRIEVANCES_PER_PARTICIPANT_MAX,
};
pub use vocab::{Kind, Term, Vocabulary, VocabularyError};
pub use words::{Basis, GrievanceOutcome, GrievanceReason, Language, Outcome, Reason};

/// The modules in dependency order, each a room of one or more source
/// files: a file may import only earlier rooms (its own room's files it
/// reaches through `super::`).
#[cfg(test)]
type Room = (&'static str, &'static [(&'static str, &'static str)]);

#[cfg(test)]
const MODULE_ORDER: [Room; 8] = [
    ("limits", &[("limits.rs", include_str!("limits.rs"))]),
    ("words", &[("words.rs", include_str!("words.rs"))]),
    ("vocab", &[("vocab.rs", include_str!("vocab.rs"))]),
    ("rules", &[("rules.rs", include_str!("rules.rs"))]),
    ("event", &[("event.rs", include_str!("event.rs"))]),
    (
        "state",
        &[
            ("state/mod.rs", include_str!("state/mod.rs")),
            ("state/mutation.rs", include_str!("state/mutation.rs")),
            ("state/queries.rs", include_str!("state/queries.rs")),
            ("state/records.rs", include_str!("state/records.rs")),
            ("state/validation.rs", include_str!("state/validation.rs")),
            ("state/views.rs", include_str!("state/views.rs")),
        ],
    ),
    ("decision", &[("decision.rs", include_str!("decision.rs"))]),
    ("explain", &[("explain.rs", include_str!("explain.rs"))]),
];

#[cfg(test)]
mod tests {
    use super::MODULE_ORDER;

    /// The module names a source file reaches through `crate::` or
    /// `super::`, wherever the path appears (imports or inline paths).
    fn reached(source: &str) -> Vec<String> {
        let mut out = Vec::new();
        for prefix in ["crate::", "super::"] {
            for (at, _) in source.match_indices(prefix) {
                let rest = &source[at + prefix.len()..];
                // A grouped import would hide its members from this scan.
                assert!(
                    !rest.starts_with('{'),
                    "write `{prefix}module::...`, not `{prefix}{{...}}`"
                );
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                out.push(name);
            }
        }
        out
    }

    #[test]
    fn modules_import_only_earlier_modules() {
        let names: Vec<&str> = MODULE_ORDER.iter().map(|(n, _)| *n).collect();
        for (position, (name, files)) in MODULE_ORDER.iter().enumerate() {
            for (file, source) in files.iter() {
                for target in reached(source) {
                    if let Some(target_position) = names.iter().position(|n| *n == target) {
                        assert!(
                            target_position < position,
                            "`{file}` (module `{name}`) imports `{target}`, which comes after it (or is itself) in the order {names:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_module_is_in_the_order() {
        let lib = include_str!("lib.rs");
        let declared: Vec<&str> = lib
            .lines()
            .filter_map(|l| l.strip_prefix("pub mod "))
            .map(|l| l.trim_end_matches(';'))
            .collect();
        let mut ordered: Vec<&str> = MODULE_ORDER.iter().map(|(n, _)| *n).collect();
        ordered.sort_unstable();
        let mut declared_sorted = declared.clone();
        declared_sorted.sort_unstable();
        assert_eq!(declared_sorted, ordered);
    }

    /// A file of a module folder left out of its room would escape the
    /// order test: every `mod` its `mod.rs` declares must be listed.
    #[test]
    fn every_file_of_a_folder_is_in_its_room() {
        for (name, files) in MODULE_ORDER.iter() {
            let Some((_, root)) = files.iter().find(|(f, _)| f.ends_with("/mod.rs")) else {
                continue;
            };
            let mut declared: Vec<String> = root
                .lines()
                .map(|l| {
                    l.trim_start_matches("pub(crate) ")
                        .trim_start_matches("pub ")
                })
                .filter_map(|l| l.strip_prefix("mod "))
                .map(|l| format!("{name}/{}.rs", l.trim_end_matches(';')))
                .collect();
            declared.push(format!("{name}/mod.rs"));
            declared.sort_unstable();
            let mut listed: Vec<String> = files.iter().map(|(f, _)| (*f).to_owned()).collect();
            listed.sort_unstable();
            assert_eq!(listed, declared, "room `{name}`");
        }
    }

    #[test]
    fn the_order_test_catches_a_backward_import() {
        assert_eq!(
            reached("use crate::explain::Language;\nfn f() { super::decision::x() }"),
            vec!["explain".to_owned(), "decision".to_owned()]
        );
        // A file inside a folder names its siblings through `super::`:
        // those are not rooms, but `crate::` paths still are.
        assert_eq!(
            reached("use super::records::Codes;\nuse crate::decision::decide;"),
            vec!["decision".to_owned(), "records".to_owned()]
        );
    }
}
