//! The decision: `decide(state, request, at)`, its reasons, the agency's
//! view of it, and the `access.decided` entry that records it.

use serde::{Deserialize, Serialize};

use crate::event::{AccessDecided, Evidence, Forwarded, ParseError, Role, V1or2};
use crate::limits::{LIST_ITEMS_MAX, STRING_BYTES_MAX};
use crate::state::{ConsentRec, ConsentState, ConsentStatus};
use crate::vocab::{code_covers, parent_code, Kind};
use crate::words::{Basis, Outcome, Reason};

/// A request from one agency for a participant's records held by another.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub requester: String,
    pub holder: String,
    pub participant: String,
    pub categories: Vec<String>,
    pub purpose: String,
}

/// A requested category (or a part of one, when a split released the rest)
/// that was not released, and why.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Withheld {
    pub category: String,
    pub reason: Reason,
}

/// Proof that `decide` allowed a release. It has no public constructor and
/// cannot be deserialised: the gateway must hold one to forward data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allow {
    released: Vec<String>,
    consents: Vec<String>,
    withheld: Vec<Withheld>,
    reasons: Vec<Reason>,
    break_glass: bool,
    rules_version: u32,
}

impl Allow {
    /// The categories that may be released, sorted; nothing else may be.
    /// Each covers the codes under it, never its ancestors: a record
    /// labelled `health` is not covered by a released `health.sud`. A code
    /// here may be a part of a requested category (see [`decide`]).
    pub fn released(&self) -> &[String] {
        &self.released
    }
    /// The consent ids relied on, sorted.
    pub fn consents(&self) -> &[String] {
        &self.consents
    }
    pub fn withheld(&self) -> &[Withheld] {
        &self.withheld
    }
    /// True if anything was released under medical-emergency access.
    pub fn break_glass(&self) -> bool {
        self.break_glass
    }
}

/// A denial, with the precise reasons (for the log) and what the agency
/// may be told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deny {
    reasons: Vec<Reason>,
    withheld: Vec<Withheld>,
    rules_version: u32,
}

impl Deny {
    pub fn reasons(&self) -> &[Reason] {
        &self.reasons
    }
    pub fn withheld(&self) -> &[Withheld] {
        &self.withheld
    }
}

/// The outcome of `decide`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow(Allow),
    Deny(Deny),
}

/// What the requesting agency is told: never anything that would reveal
/// whether the person is enrolled or what they consented to elsewhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgencyView {
    pub outcome: Outcome,
    pub released: Vec<String>,
    pub withheld: Vec<Withheld>,
    pub reasons: Vec<Reason>,
    pub break_glass: bool,
}

fn agency_reason(reason: Reason, allowed: bool) -> Reason {
    if !reason.is_about_participant() {
        reason
    } else if allowed {
        // The agency knows a consent exists (it got something); it still
        // learns nothing about why the rest is held back.
        Reason::CategoryNotCovered
    } else {
        Reason::NoConsent
    }
}

impl Decision {
    pub fn outcome(&self) -> Outcome {
        match self {
            Decision::Allow(_) => Outcome::Allow,
            Decision::Deny(_) => Outcome::Deny,
        }
    }

    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }

    /// The witness, if allowed.
    pub fn allow(&self) -> Option<&Allow> {
        match self {
            Decision::Allow(a) => Some(a),
            Decision::Deny(_) => None,
        }
    }

    pub fn released(&self) -> &[String] {
        match self {
            Decision::Allow(a) => &a.released,
            Decision::Deny(_) => &[],
        }
    }

    pub fn consents(&self) -> &[String] {
        match self {
            Decision::Allow(a) => &a.consents,
            Decision::Deny(_) => &[],
        }
    }

    /// The precise reasons, for the log, the participant and the auditor.
    pub fn reasons(&self) -> &[Reason] {
        match self {
            Decision::Allow(a) => &a.reasons,
            Decision::Deny(d) => &d.reasons,
        }
    }

    pub fn withheld(&self) -> &[Withheld] {
        match self {
            Decision::Allow(a) => &a.withheld,
            Decision::Deny(d) => &d.withheld,
        }
    }

    pub fn break_glass(&self) -> bool {
        matches!(self, Decision::Allow(a) if a.break_glass)
    }

    /// Break-glass access must always be told to the participant.
    /// The lawful basis of an allow: an emergency for break-glass, else
    /// the consents it names. `None` for a deny.
    pub fn basis(&self) -> Option<Basis> {
        match self {
            Decision::Allow(a) if a.break_glass => Some(Basis::Emergency),
            Decision::Allow(_) => Some(Basis::Consent),
            Decision::Deny(_) => None,
        }
    }

    pub fn notify_participant(&self) -> bool {
        self.break_glass()
    }

    pub fn rules_version(&self) -> u32 {
        match self {
            Decision::Allow(a) => a.rules_version,
            Decision::Deny(d) => d.rules_version,
        }
    }

    /// The reasons the requesting agency is told. Identical for an unknown
    /// participant and for one who gave this agency no consent.
    pub fn agency_reasons(&self) -> Vec<Reason> {
        let allowed = self.is_allow();
        let mut out: Vec<Reason> = self
            .reasons()
            .iter()
            .map(|&r| agency_reason(r, allowed))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Everything the requesting agency is told.
    pub fn agency_view(&self) -> AgencyView {
        let allowed = self.is_allow();
        AgencyView {
            outcome: self.outcome(),
            released: self.released().to_vec(),
            withheld: self
                .withheld()
                .iter()
                .map(|w| Withheld {
                    category: w.category.clone(),
                    reason: agency_reason(w.reason, allowed),
                })
                .collect(),
            reasons: self.agency_reasons(),
            break_glass: self.break_glass(),
        }
    }
}

fn deny(mut reasons: Vec<Reason>, withheld: Vec<Withheld>, rules_version: u32) -> Decision {
    reasons.sort_unstable();
    reasons.dedup();
    Decision::Deny(Deny {
        reasons,
        withheld,
        rules_version,
    })
}

/// How far a consent got towards covering one category: the failure of the
/// consent that got furthest is the most useful reason to log.
fn rank(reason: Reason) -> u8 {
    match reason {
        Reason::SpecificRecipientRequired => 1,
        Reason::HolderNotCovered => 2,
        Reason::CategoryNotCovered => 3,
        Reason::PurposeNotCovered => 4,
        Reason::ConsentNotYetEffective => 5,
        Reason::ConsentExpired => 6,
        Reason::ConsentRevoked => 7,
        _ => 0,
    }
}

fn request_is_bounded(req: &Request) -> bool {
    let ok = |s: &str| !s.is_empty() && s.len() <= STRING_BYTES_MAX;
    ok(&req.requester)
        && ok(&req.holder)
        && ok(&req.participant)
        && ok(&req.purpose)
        && !req.categories.is_empty()
        && req.categories.len() <= LIST_ITEMS_MAX
        && req.categories.iter().all(|c| ok(c))
}

/// The interned id of `code` or of its nearest interned ancestor. Interned
/// codes are closed under "parent of", so a granted code covers `code` iff
/// it covers that ancestor.
fn resolve(state: &ConsentState, code: &str) -> Option<u32> {
    let mut at = code;
    loop {
        if let Some(id) = state.code_id(at) {
            return Some(id);
        }
        at = parent_code(at)?;
    }
}

struct Party<'a> {
    index: u32,
    classes: &'a [u32],
}

/// Checks one agency's standing; `Err` carries the reason it cannot take part.
fn party<'a>(
    state: &'a ConsentState,
    id: &str,
    not_permitted: Reason,
) -> Result<Party<'a>, Reason> {
    match state.agency_by_id(id) {
        None => Err(Reason::UnknownAgency),
        Some((_, a)) if a.retired => Err(Reason::AgencyRetired),
        Some((_, a)) if !a.has_role(Role::Agency) => Err(not_permitted),
        Some((index, a)) => Ok(Party {
            index,
            classes: &a.classes,
        }),
    }
}

fn intersects(a: &[u32], b: &[u32]) -> bool {
    a.iter().any(|x| b.contains(x))
}

/// Decides a request at time `at`. Deterministic and total: anything
/// inconsistent denies; nothing panics.
///
/// Releasing a category releases every record labelled with it or with a
/// code under it. So a category with a category needing a named recipient
/// under it (`health`, over `health.mental`) is released whole only under
/// a consent naming the requester itself. A consent naming the requester
/// only through its class releases the rest (minimum necessary): the
/// category is split into the sub-categories the vocabulary lists, the
/// parts without a restricted code are released, and the restricted parts
/// are withheld with `specific-recipient-required` unless another consent
/// names the requester. The [`Allow`] then lists those parts, never the
/// parent code, so the gateway's label filter keeps exactly them.
pub fn decide(state: &ConsentState, req: &Request, at: i64) -> Decision {
    let version = state.rules_version();
    if !request_is_bounded(req) {
        return deny(vec![Reason::InvalidRequest], Vec::new(), version);
    }
    let (requester, holder) = match request_parties(state, req) {
        Ok(parties) => parties,
        Err(fatal) => return deny(fatal, Vec::new(), version),
    };
    let mut tally = Tally::default();
    let known = known_categories(state, req, &mut tally.withheld);
    let break_glass = break_glass_categories(state, req, &requester);

    let participant = state.participant_index_of(&req.participant);
    let mut candidates = Vec::new();
    if let Some(p) = participant {
        state.candidates(p, requester.index, requester.classes, &mut candidates);
    }
    let candidates: Vec<(&str, &ConsentRec)> = candidates
        .iter()
        .filter_map(|&i| Some((state.consent_id_str(i), state.consent_rec(i)?)))
        .collect();
    let judge = Judge {
        state,
        requester: &requester,
        holder: &holder,
        candidates: &candidates,
        purpose: resolve(state, &req.purpose),
        at,
    };
    for category in known {
        judge.category(category, break_glass, participant, &mut tally);
    }
    tally.into_decision(version)
}

/// The request-level checks: the requester, the holder and the purpose.
/// They never look at the participant, so their answers cannot depend on
/// whether the person is enrolled. `Err` carries every reason found.
fn request_parties<'s>(
    state: &'s ConsentState,
    req: &Request,
) -> Result<(Party<'s>, Party<'s>), Vec<Reason>> {
    let mut fatal = Vec::new();
    let requester = party(state, &req.requester, Reason::RequesterNotPermitted)
        .map_err(|r| fatal.push(r))
        .ok();
    let holder = party(state, &req.holder, Reason::HolderNotPermitted)
        .map_err(|r| fatal.push(r))
        .ok();
    if !state.vocabulary().contains(Kind::Purpose, &req.purpose) {
        fatal.push(Reason::UnknownPurpose);
    } else if state.rules().is_forbidden(&req.purpose) {
        fatal.push(Reason::PurposeForbidden);
    }
    match (requester, holder, fatal.is_empty()) {
        (Some(requester), Some(holder), true) => Ok((requester, holder)),
        _ => Err(fatal),
    }
}

/// The requested categories the vocabulary knows, sorted and without
/// repeats; the others go to `withheld` as unknown.
fn known_categories<'r>(
    state: &ConsentState,
    req: &'r Request,
    withheld: &mut Vec<Withheld>,
) -> Vec<&'r str> {
    let mut requested: Vec<&str> = req.categories.iter().map(String::as_str).collect();
    requested.sort_unstable();
    requested.dedup();
    let mut known = Vec::with_capacity(requested.len());
    for category in requested {
        if state.vocabulary().contains(Kind::Category, category) {
            known.push(category);
        } else {
            withheld.push(Withheld {
                category: category.to_owned(),
                reason: Reason::UnknownCategory,
            });
        }
    }
    known
}

/// The categories the rules' break-glass releases to this requester for
/// this purpose without consent: none unless both match.
fn break_glass_categories<'s>(
    state: &'s ConsentState,
    req: &Request,
    requester: &Party<'_>,
) -> &'s [String] {
    match state.rules().break_glass() {
        Some(bg)
            if code_covers(&bg.purpose, &req.purpose)
                && (bg.agencies.contains(&req.requester)
                    || bg.classes.iter().any(|c| {
                        state
                            .code_id(c)
                            .is_some_and(|id| requester.classes.contains(&id))
                    })) =>
        {
            &bg.categories
        }
        _ => &[],
    }
}

/// What the categories judged so far came to.
#[derive(Default)]
struct Tally<'s> {
    released: Vec<String>,
    relied_on: Vec<&'s str>,
    withheld: Vec<Withheld>,
    break_glass: bool,
}

impl Tally<'_> {
    /// Sorted, without repeats: an allow if anything was released.
    fn into_decision(self, version: u32) -> Decision {
        let Tally {
            mut released,
            mut relied_on,
            mut withheld,
            break_glass,
        } = self;
        released.sort_unstable();
        released.dedup();
        // A code both released and withheld can only come from a split piece
        // that a requested category's own grant (break-glass) released whole.
        withheld.retain(|w| !released.contains(&w.category));
        withheld.sort_unstable_by(|a, b| a.category.cmp(&b.category));
        withheld.dedup();
        let mut reasons: Vec<Reason> = withheld.iter().map(|w| w.reason).collect();
        if released.is_empty() {
            return deny(reasons, withheld, version);
        }
        if break_glass {
            reasons.push(Reason::BreakGlass);
        }
        reasons.sort_unstable();
        reasons.dedup();
        relied_on.sort_unstable();
        relied_on.dedup();
        Decision::Allow(Allow {
            released,
            consents: relied_on.into_iter().map(str::to_owned).collect(),
            withheld,
            reasons,
            break_glass,
            rules_version: version,
        })
    }
}

/// Everything about one request that judging one category needs.
struct Judge<'s, 'p> {
    state: &'s ConsentState,
    requester: &'p Party<'s>,
    holder: &'p Party<'s>,
    candidates: &'p [(&'s str, &'s ConsentRec)],
    purpose: Option<u32>,
    at: i64,
}

/// What the candidate consents say about one category.
struct Cover<'s> {
    /// The smallest consent id that releases the category whole. The
    /// smallest, not the first granted: the choice must not depend on the
    /// order unrelated consents arrived in.
    whole: Option<&'s str>,
    /// Some consent would release the category but names the requester
    /// only through a class, while a category needing a named recipient
    /// lies under it: only the part without one may go.
    partial: bool,
    /// Why nothing covers it, from the consent that got furthest.
    failure: Reason,
}

/// The result of splitting a category: released sub-categories with the
/// consent relied on, and withheld ones.
#[derive(Default)]
struct Pieces<'s> {
    released: Vec<(&'s str, &'s str)>,
    withheld: Vec<Withheld>,
}

impl<'s> Judge<'s, '_> {
    /// Judges one known category: released whole under a consent, or by
    /// break-glass, or in parts (a class consent over a category with a
    /// restricted code under it), or withheld with the most useful reason.
    fn category(
        &self,
        category: &str,
        break_glass: &[String],
        participant: Option<u32>,
        tally: &mut Tally<'s>,
    ) {
        let cover = self.cover(category);
        if let Some(id) = cover.whole {
            tally.released.push(category.to_owned());
            tally.relied_on.push(id);
            return;
        }
        if break_glass.iter().any(|c| code_covers(c, category)) {
            tally.released.push(category.to_owned());
            tally.break_glass = true;
            return;
        }
        if cover.partial {
            let mut pieces = Pieces::default();
            self.split(category, &mut pieces);
            // The split must still fit one `access.decided` entry; if not,
            // the category is withheld whole, which is always safe.
            let fits = tally.released.len() + pieces.released.len() <= LIST_ITEMS_MAX;
            if !pieces.released.is_empty() && fits {
                for (code, id) in pieces.released {
                    tally.released.push(code.to_owned());
                    tally.relied_on.push(id);
                }
                tally.withheld.extend(pieces.withheld);
            } else {
                tally.withheld.push(Withheld {
                    category: category.to_owned(),
                    reason: Reason::SpecificRecipientRequired,
                });
            }
            return;
        }
        let reason = match participant {
            None => Reason::UnknownParticipant,
            Some(_) if !self.candidates.is_empty() => cover.failure,
            Some(p) if self.state.participant_has_consents(p) => Reason::RecipientNotCovered,
            Some(_) => Reason::NoConsent,
        };
        tally.withheld.push(Withheld {
            category: category.to_owned(),
            reason,
        });
    }

    fn cover(&self, category: &str) -> Cover<'s> {
        let rules = self.state.rules();
        let restricted = rules.needs_specific_recipient(category);
        let mixed = !restricted && rules.has_specific_recipient_below(category);
        let category_id = resolve(self.state, category);
        let mut cover = Cover {
            whole: None,
            partial: false,
            failure: Reason::NoConsent,
        };
        for &(id, rec) in self.candidates {
            let outcome = evaluate(
                self.state,
                rec,
                self.requester,
                self.holder,
                restricted,
                category_id,
                self.purpose,
                self.at,
            );
            match outcome {
                Ok(false) if mixed => cover.partial = true,
                Ok(_) => {
                    if cover.whole.is_none_or(|b| id < b) {
                        cover.whole = Some(id);
                    }
                }
                Err(reason) => {
                    if rank(reason) > rank(cover.failure) {
                        cover.failure = reason;
                    }
                }
            }
        }
        cover
    }

    /// Splits a category that a class consent covers into the
    /// sub-categories the vocabulary lists, as deep as a category needing a
    /// named recipient lies. The category's own code is never released by a
    /// split: a record labelled only `health` may hold anything under it.
    /// Break-glass is not consulted here: it applies to requested
    /// categories whole, as it always has.
    fn split(&self, category: &str, out: &mut Pieces<'s>) {
        let vocabulary = self.state.vocabulary();
        for child in vocabulary.children(Kind::Category, category) {
            let cover = self.cover(child);
            if let Some(id) = cover.whole {
                out.released.push((child, id));
            } else if cover.partial {
                // Children are strictly longer codes, so this ends.
                self.split(child, out);
            } else {
                out.withheld.push(Withheld {
                    category: child.to_owned(),
                    reason: cover.failure,
                });
            }
        }
    }
}

/// Whether one consent covers one category of the request; if not, the
/// first element that fails, in the order of `rank`. `Ok(named)` says
/// whether the consent names the requester itself rather than its class.
#[allow(clippy::too_many_arguments)]
fn evaluate(
    state: &ConsentState,
    rec: &ConsentRec,
    requester: &Party<'_>,
    holder: &Party<'_>,
    specific_only: bool,
    category: Option<u32>,
    purpose: Option<u32>,
    at: i64,
) -> Result<bool, Reason> {
    let named = state.recipient_agencies(rec).contains(&requester.index);
    if specific_only && !named {
        return Err(Reason::SpecificRecipientRequired);
    }
    let holder_ok = state.holder_agencies(rec).contains(&holder.index)
        || intersects(state.holder_classes(rec), holder.classes);
    if !holder_ok {
        return Err(Reason::HolderNotCovered);
    }
    let covers = |granted: &[u32], wanted: Option<u32>| {
        wanted.is_some_and(|w| granted.iter().any(|&g| state.code_covers(g, w)))
    };
    if !covers(state.categories_of(rec), category) {
        return Err(Reason::CategoryNotCovered);
    }
    if !covers(state.purposes_of(rec), purpose) {
        return Err(Reason::PurposeNotCovered);
    }
    match state.consent_status(rec, at) {
        ConsentStatus::Active => Ok(named),
        ConsentStatus::Revoked => Err(Reason::ConsentRevoked),
        ConsentStatus::NotYetEffective => Err(Reason::ConsentNotYetEffective),
        ConsentStatus::Expired => Err(Reason::ConsentExpired),
    }
}

/// Builds the `access.decided` entry (format 2) that records `decision`,
/// the `evidence` that authenticated the request and what it asks to have
/// `forwarded`. Fails if the request is too large to log, in which case
/// the gateway must refuse it rather than decide it.
pub fn access_decided(
    decision: &Decision,
    request: &Request,
    at: i64,
    decision_id: &str,
    evidence: Evidence,
    forwarded: Option<Forwarded>,
) -> Result<AccessDecided, ParseError> {
    let event = AccessDecided {
        v: V1or2::V2,
        decision_id: decision_id.to_owned(),
        at,
        requester: request.requester.clone(),
        holder: request.holder.clone(),
        participant: request.participant.clone(),
        categories: request.categories.clone(),
        purpose: request.purpose.clone(),
        outcome: decision.outcome(),
        released: decision.released().to_vec(),
        consents: decision.consents().to_vec(),
        reasons: decision.reasons().to_vec(),
        break_glass: decision.break_glass(),
        rules_version: decision.rules_version(),
        request_digest: None,
        basis: decision.basis(),
        evidence: Some(evidence),
        forwarded,
    };
    crate::event::Event::AccessDecided(event.clone()).validate()?;
    Ok(event)
}

impl AccessDecided {
    /// The request this entry recorded.
    pub fn request(&self) -> Request {
        Request {
            requester: self.requester.clone(),
            holder: self.holder.clone(),
            participant: self.participant.clone(),
            categories: self.categories.clone(),
            purpose: self.purpose.clone(),
        }
    }
}

/// Which field of a logged decision a replay disagrees with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("replayed decision differs in {field}: logged {logged}, replayed {replayed}")]
pub struct Mismatch {
    pub field: &'static str,
    pub logged: String,
    pub replayed: String,
}

fn codes(reasons: &[Reason]) -> Vec<&'static str> {
    reasons.iter().map(|r| r.code()).collect()
}

/// Re-runs `decide` for a logged `access.decided` against the state as it
/// was at that entry's position, and names the first field that disagrees.
pub fn replay_check(state: &ConsentState, logged: &AccessDecided) -> Result<(), Mismatch> {
    let replayed = decide(state, &logged.request(), logged.at);
    let check = |field: &'static str, a: String, b: String| {
        if a == b {
            Ok(())
        } else {
            Err(Mismatch {
                field,
                logged: a,
                replayed: b,
            })
        }
    };
    check(
        "rules_version",
        logged.rules_version.to_string(),
        replayed.rules_version().to_string(),
    )?;
    check(
        "outcome",
        format!("{:?}", logged.outcome),
        format!("{:?}", replayed.outcome()),
    )?;
    check(
        "released",
        format!("{:?}", logged.released),
        format!("{:?}", replayed.released()),
    )?;
    check(
        "consents",
        format!("{:?}", logged.consents),
        format!("{:?}", replayed.consents()),
    )?;
    check(
        "reasons",
        format!("{:?}", codes(&logged.reasons)),
        format!("{:?}", codes(replayed.reasons())),
    )?;
    check(
        "break_glass",
        logged.break_glass.to_string(),
        replayed.break_glass().to_string(),
    )?;
    // Version 1 entries name no basis; version 2's must be the replay's.
    if logged.v == V1or2::V2 {
        check(
            "basis",
            format!("{:?}", logged.basis),
            format!("{:?}", replayed.basis()),
        )?;
    }
    Ok(())
}
