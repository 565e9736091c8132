//! One row per rule and reason code, each a real scenario.

use crate::common;

use common::*;
use policy::*;

struct Row {
    name: &'static str,
    setup: fn(&mut World),
    request: Request,
    at: i64,
    outcome: Outcome,
    released: &'static [&'static str],
    consents: &'static [&'static str],
    reasons: &'static [Reason],
}

fn housing_req(participant: &str) -> Request {
    request(
        "riverside-housing",
        "harbor-clinic",
        participant,
        &["social.housing"],
        "housing-placement",
    )
}

fn nothing(_: &mut World) {}

fn one_housing_consent(w: &mut World) {
    w.grant(Grant::new("c1", "p1"));
}

fn rows() -> Vec<Row> {
    use Outcome::{Allow, Deny};
    let t = t0();
    vec![
        Row {
            name: "a consent naming the recipient releases the category",
            setup: one_housing_consent,
            request: housing_req("p1"),
            at: t + DAY,
            outcome: Allow,
            released: &["social.housing"],
            consents: &["c1"],
            reasons: &[],
        },
        Row {
            name: "revoked then requested",
            setup: |w| {
                one_housing_consent(w);
                w.revoke("c1", "p1");
            },
            request: housing_req("p1"),
            at: t + 2 * DAY,
            outcome: Deny,
            released: &[],
            consents: &[],
            reasons: &[Reason::ConsentRevoked],
        },
        Row {
            name: "expired at the exact boundary instant",
            setup: one_housing_consent,
            request: housing_req("p1"),
            at: t + 90 * DAY,
            outcome: Deny,
            released: &[],
            consents: &[],
            reasons: &[Reason::ConsentExpired],
        },
        Row {
            name: "one second before expiry is still active",
            setup: one_housing_consent,
            request: housing_req("p1"),
            at: t + 90 * DAY - 1,
            outcome: Allow,
            released: &["social.housing"],
            consents: &["c1"],
            reasons: &[],
        },
        Row {
            name: "one second before it takes effect",
            setup: one_housing_consent,
            request: housing_req("p1"),
            at: t - 1,
            outcome: Deny,
            released: &[],
            consents: &[],
            reasons: &[Reason::ConsentNotYetEffective],
        },
        Row {
            name: "active from the exact effective instant",
            setup: one_housing_consent,
            request: housing_req("p1"),
            at: t,
            outcome: Allow,
            released: &["social.housing"],
            consents: &["c1"],
            reasons: &[],
        },
        Row {
            name: "until-revoked consent is active up to the maximum duration",
            setup: |w| w.grant(Grant::new("c1", "p1").between(t0(), None)),
            request: housing_req("p1"),
            at: t + 365 * DAY - 1,
            outcome: Allow,
            released: &["social.housing"],
            consents: &["c1"],
            reasons: &[],
        },
        Row {
            name: "parent category covers its child",
            setup: |w| {
                w.grant(
                    Grant::new("c1", "p1")
                        .categories(&["health.sud"])
                        .purposes(&["treatment"])
                        .recipients(Parties::agencies(&["hope-treatment"])),
                )
            },
            request: request("hope-treatment", "harbor-clinic", "p1", &["health.sud.treatment"], "treatment"),
            at: t + DAY,
            outcome: Allow,
            released: &["health.sud.treatment"],
            consents: &["c1"],
            reasons: &[],
        },
        Row {
            name: "child category does not cover its parent",
            setup: |w| {
                w.grant(
                    Grant::new("c1", "p1")
                        .categories(&["health.sud.treatment"])
                        .purposes(&["treatment"])
                        .recipients(Parties::agencies(&["hope-treatment"])),
                )
            },
            request: request("hope-treatment", "harbor-clinic", "p1", &["health.sud"], "treatment"),
            at: t + DAY,
            outcome: Deny,
            released: &[],
            consents: &[],
            reasons: &[Reason::CategoryNotCovered],
        },
        Row {
            name: "class recipient covers every agency of the class",
            setup: |w| w.grant(Grant::new("c1", "p1").recipients(Parties::classes(&["housing"]))),
            request: request("eastside-housing", "harbor-clinic", "p1", &["social.housing"], "housing-placement"),
            at: t + DAY,
            outcome: Allow,
            released: &["social.housing"],
            consents: &["c1"],
            reasons: &[],
        },
        Row {
            name: "specific recipient does not cover another agency of its class",
            setup: one_housing_consent,
            request: request("eastside-housing", "harbor-clinic", "p1", &["social.housing"], "housing-placement"),
            at: t + DAY,
            outcome: Deny,
            released: &[],
            consents: &[],
            reasons: &[Reason::RecipientNotCovered],
        },
        Row {
            name: "justice records need a consent naming the court itself, not its class",
            setup: |w| {
                w.grant(
                    Grant::new("c1", "p1")
                        .recipients(Parties::classes(&["court"]))
                        .categories(&["justice"])
                        .purposes(&["care-coordination"]),
                )
            },
            request: request("county-court", "harbor-clinic", "p1", &["justice.court-compliance"], "care-coordination"),
            at: t + DAY,
            outcome: Deny,
            released: &[],
            consents: &[],
            reasons: &[Reason::SpecificRecipientRequired],
        },
        Row {
            name: "justice records with a consent naming the court",
            setup: |w| {
                w.grant(
                    Grant::new("c1", "p1")
                        .recipients(Parties::agencies(&["county-court"]))
                        .categories(&["justice"])
                        .purposes(&["care-coordination"]),
                )
            },
            request: request("county-court", "harbor-clinic", "p1", &["justice.court-compliance"], "care-coordination"),
            at: t + DAY,
            outcome: Allow,
            released: &["justice.court-compliance"],
            consents: &["c1"],
            reasons: &[],
        },
        Row {
            name: "holder by class",
            setup: |w| w.grant(Grant::new("c1", "p1").holders(Parties::classes(&["treatment"]))),
            request: request("riverside-housing", "hope-treatment", "p1", &["social.housing"], "housing-placement"),
            at: t + DAY,
            outcome: Allow,
            released: &["social.housing"],
            consents: &["c1"],
            reasons: &[],
        },
        Row {
            name: "holder not covered",
            setup: one_housing_consent,
            request: request("riverside-housing", "jobs-centre", "p1", &["social.housing"], "housing-placement"),
            at: t + DAY,
            outcome: Deny,
            released: &[],
            consents: &[],
            reasons: &[Reason::HolderNotCovered],
        },
        Row {
            name: "purpose not covered",
            setup: one_housing_consent,
            request: request("riverside-housing", "harbor-clinic", "p1", &["social.housing"], "research"),
            at: t + DAY,
            outcome: Deny,
            released: &[],
            consents: &[],
            reasons: &[Reason::PurposeNotCovered],
        },
        Row {
            name: "forbidden purpose is denied even with a consent naming it (granted under older rules)",
            setup: |w| {
                w.rules(1, rules_with(&[], true, 365));
                w.grant(Grant::new("c1", "p1").purposes(&["housing-placement", "criminal-investigation"]));
                w.rules(2, rules_with(&["criminal-investigation", "prosecution"], true, 365));
            },
            request: request("riverside-housing", "harbor-clinic", "p1", &["social.housing"], "criminal-investigation"),
            at: t + DAY,
            outcome: Deny,
            released: &[],
            consents: &[],
            reasons: &[Reason::PurposeForbidden],
        },
        Row {
            name: "break-glass: an ER gets medication records without consent, flagged",
            setup: nothing,
            request: request("er-general", "harbor-clinic", "p1", &["health.sud.medication"], "medical-emergency"),
            at: t + DAY,
            outcome: Allow,
            released: &["health.sud.medication"],
            consents: &[],
            reasons: &[Reason::BreakGlass],
        },
        Row {
            name: "break-glass does not reach categories outside its list",
            setup: nothing,
            request: request("er-general", "harbor-clinic", "p1", &["health.sud.medication", "social.housing"], "medical-emergency"),
            at: t + DAY,
            outcome: Allow,
            released: &["health.sud.medication"],
            consents: &[],
            reasons: &[Reason::NoConsent, Reason::BreakGlass],
        },
        Row {
            name: "break-glass is not for agencies outside its classes",
            setup: nothing,
            request: request("riverside-housing", "harbor-clinic", "p1", &["health.sud.medication"], "medical-emergency"),
            at: t + DAY,
            outcome: Deny,
            released: &[],
            consents: &[],
            reasons: &[Reason::NoConsent],
        },
        Row {
            name: "partial grant releases only the covered subset",
            setup: one_housing_consent,
            request: request("riverside-housing", "harbor-clinic", "p1", &["social.housing", "health.sud.treatment"], "housing-placement"),
            at: t + DAY,
            outcome: Allow,
            released: &["social.housing"],
            consents: &["c1"],
            reasons: &[Reason::CategoryNotCovered],
        },
        Row {
            name: "the smallest covering consent id is the one relied on, per category",
            setup: |w| {
                w.grant(Grant::new("c2", "p1").categories(&["social"]));
                w.grant(Grant::new("c1", "p1"));
                w.grant(Grant::new("c3", "p1").categories(&["social.employment"]));
            },
            request: request("riverside-housing", "harbor-clinic", "p1", &["social.housing", "social.employment"], "housing-placement"),
            at: t + DAY,
            outcome: Allow,
            released: &["social.employment", "social.housing"],
            consents: &["c1", "c2"],
            reasons: &[],
        },
        Row {
            name: "no consent at all",
            setup: nothing,
            request: housing_req("p1"),
            at: t + DAY,
            outcome: Deny,
            released: &[],
            consents: &[],
            reasons: &[Reason::NoConsent],
        },
        Row {
            name: "consents exist, but none names this recipient",
            setup: one_housing_consent,
            request: request("jobs-centre", "harbor-clinic", "p1", &["social.housing"], "housing-placement"),
            at: t + DAY,
            outcome: Deny,
            released: &[],
            consents: &[],
            reasons: &[Reason::RecipientNotCovered],
        },
        Row {
            name: "unknown participant (internal reason)",
            setup: nothing,
            request: housing_req("nobody"),
            at: t + DAY,
            outcome: Deny,
            released: &[],
            consents: &[],
            reasons: &[Reason::UnknownParticipant],
        },
        Row {
            name: "unknown requester",
            setup: one_housing_consent,
            request: request("ghost-agency", "harbor-clinic", "p1", &["social.housing"], "housing-placement"),
            at: t + DAY,
            outcome: Deny,
            released: &[],
            consents: &[],
            reasons: &[Reason::UnknownAgency],
        },
        Row {
            name: "unknown holder",
            setup: one_housing_consent,
            request: request("riverside-housing", "ghost-agency", "p1", &["social.housing"], "housing-placement"),
            at: t + DAY,
            outcome: Deny,
            released: &[],
            consents: &[],
            reasons: &[Reason::UnknownAgency],
        },
        Row {
            name: "retired requester",
            setup: nothing,
            request: request("old-shelter", "harbor-clinic", "p1", &["social.housing"], "housing-placement"),
            at: t + DAY,
            outcome: Deny,
            released: &[],
            consents: &[],
            reasons: &[Reason::AgencyRetired],
        },
        Row {
            name: "an auditor may not receive records",
            setup: nothing,
            request: request("audit-co", "harbor-clinic", "p1", &["social.housing"], "program-audit"),
            at: t + DAY,
            outcome: Deny,
            released: &[],
            consents: &[],
            reasons: &[Reason::RequesterNotPermitted],
        },
        Row {
            name: "an auditor holds no records",
            setup: nothing,
            request: request("riverside-housing", "audit-co", "p1", &["social.housing"], "housing-placement"),
            at: t + DAY,
            outcome: Deny,
            released: &[],
            consents: &[],
            reasons: &[Reason::HolderNotPermitted],
        },
        Row {
            name: "unknown purpose",
            setup: one_housing_consent,
            request: request("riverside-housing", "harbor-clinic", "p1", &["social.housing"], "marketing"),
            at: t + DAY,
            outcome: Deny,
            released: &[],
            consents: &[],
            reasons: &[Reason::UnknownPurpose],
        },
        Row {
            name: "unknown category alone",
            setup: one_housing_consent,
            request: request("riverside-housing", "harbor-clinic", "p1", &["social.housing.secret"], "housing-placement"),
            at: t + DAY,
            outcome: Deny,
            released: &[],
            consents: &[],
            reasons: &[Reason::UnknownCategory],
        },
        Row {
            name: "unknown category beside a covered one",
            setup: one_housing_consent,
            request: request("riverside-housing", "harbor-clinic", "p1", &["social.housing", "shoe-size"], "housing-placement"),
            at: t + DAY,
            outcome: Allow,
            released: &["social.housing"],
            consents: &["c1"],
            reasons: &[Reason::UnknownCategory],
        },
        Row {
            name: "a request with no categories is invalid",
            setup: one_housing_consent,
            request: request("riverside-housing", "harbor-clinic", "p1", &[], "housing-placement"),
            at: t + DAY,
            outcome: Deny,
            released: &[],
            consents: &[],
            reasons: &[Reason::InvalidRequest],
        },
        Row {
            name: "a revoke leaves the participant's other consents working",
            setup: |w| {
                w.grant(Grant::new("c1", "p1"));
                w.grant(Grant::new("c2", "p1").categories(&["social"]));
                w.revoke("c1", "p1");
            },
            request: housing_req("p1"),
            at: t + 2 * DAY,
            outcome: Allow,
            released: &["social.housing"],
            consents: &["c2"],
            reasons: &[],
        },
        Row {
            name: "another participant's consent does not count",
            setup: |w| w.grant(Grant::new("c1", "p2")),
            request: housing_req("p1"),
            at: t + DAY,
            outcome: Deny,
            released: &[],
            consents: &[],
            reasons: &[Reason::NoConsent],
        },
    ]
}

#[test]
fn decision_table() {
    let mut failures = Vec::new();
    for row in rows() {
        let mut w = World::new();
        (row.setup)(&mut w);
        let d = w.decide(&row.request, row.at);
        let got = (
            d.outcome(),
            d.released().to_vec(),
            d.consents().to_vec(),
            d.reasons().to_vec(),
        );
        let want = (
            row.outcome,
            strings(row.released),
            strings(row.consents),
            row.reasons.to_vec(),
        );
        if got != want {
            failures.push(format!("{}:\n  got  {got:?}\n  want {want:?}", row.name));
        }
        // Every decision must be recordable and replay to itself.
        let logged = access_decided(
            &d,
            &row.request,
            row.at,
            "d-1",
            rfc9421("sha-256=:x:"),
            None,
        )
        .unwrap();
        assert_eq!(replay_check(&w.state, &logged), Ok(()), "{}", row.name);
        assert_eq!(d.break_glass(), d.reasons().contains(&Reason::BreakGlass));
        assert_eq!(d.notify_participant(), d.break_glass());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_reason_code_has_a_row_or_is_request_level() {
    let mut seen: Vec<Reason> = rows().iter().flat_map(|r| r.reasons.to_vec()).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen,
        Reason::ALL.to_vec(),
        "a reason code lacks a table row"
    );
}

#[test]
fn unknown_participant_and_no_consent_look_the_same_to_the_agency() {
    let mut w = World::new();
    w.grant(Grant::new("c-other", "p2").recipients(Parties::agencies(&["jobs-centre"])));
    let requests = [
        (
            &["social.housing"][..],
            "housing-placement",
            "riverside-housing",
        ),
        (
            &["social.housing", "health.sud"][..],
            "treatment",
            "harbor-clinic",
        ),
        (
            &["health.sud.medication"][..],
            "medical-emergency",
            "er-general",
        ),
        (
            &["justice", "nonsense"][..],
            "care-coordination",
            "county-court",
        ),
    ];
    for (categories, purpose, requester) in requests {
        let known = w.decide(
            &request(requester, "harbor-clinic", "p1", categories, purpose),
            t0(),
        );
        let unknown = w.decide(
            &request(
                requester,
                "harbor-clinic",
                "zz-unknown",
                categories,
                purpose,
            ),
            t0(),
        );
        let other = w.decide(
            &request(requester, "harbor-clinic", "p2", categories, purpose),
            t0(),
        );
        assert_eq!(known.agency_view(), unknown.agency_view());
        assert_eq!(known.agency_reasons(), unknown.agency_reasons());
        assert_eq!(known.agency_view(), other.agency_view(), "{requester}");
    }
    let unknown = w.decide(&housing_req("zz-unknown"), t0());
    assert_eq!(unknown.reasons(), &[Reason::UnknownParticipant]);
    assert_eq!(unknown.agency_reasons(), vec![Reason::NoConsent]);
}

#[test]
fn revocation_is_not_revealed_to_the_agency() {
    let mut w = World::new();
    w.grant(Grant::new("c1", "p1"));
    w.revoke("c1", "p1");
    let d = w.decide(&housing_req("p1"), t0() + 2 * DAY);
    assert_eq!(d.reasons(), &[Reason::ConsentRevoked]);
    assert_eq!(d.agency_reasons(), vec![Reason::NoConsent]);
}

#[test]
fn only_decide_makes_an_allow() {
    // The witness is reachable only through a decision.
    let mut w = World::new();
    w.grant(Grant::new("c1", "p1"));
    let d = w.decide(&housing_req("p1"), t0() + DAY);
    let allow: &Allow = d.allow().expect("allowed");
    assert_eq!(allow.released(), &["social.housing".to_owned()]);
    assert_eq!(allow.consents(), &["c1".to_owned()]);
}

#[test]
fn reason_codes_round_trip_and_have_sentences() {
    for r in Reason::ALL {
        assert_eq!(Reason::from_code(r.code()), Some(r));
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, format!("\"{}\"", r.code()));
        assert!(r.sentence(Language::En).ends_with('.'));
        assert!(r.sentence(Language::Es).ends_with('.'));
        assert_ne!(r.sentence(Language::En), r.sentence(Language::Es));
    }
}

#[test]
fn replay_check_names_the_field_that_disagrees() {
    let mut w = World::new();
    w.grant(Grant::new("c1", "p1"));
    let req = request(
        "riverside-housing",
        "harbor-clinic",
        "p1",
        &["social.housing", "health"],
        "housing-placement",
    );
    let d = w.decide(&req, t0() + DAY);
    let logged = access_decided(&d, &req, t0() + DAY, "d-7", rfc9421("digest"), None).unwrap();
    assert_eq!(replay_check(&w.state, &logged), Ok(()));

    let mut forged = logged.clone();
    forged.released.push("health".into());
    assert_eq!(
        replay_check(&w.state, &forged).unwrap_err().field,
        "released"
    );

    let mut forged = logged.clone();
    forged.consents = vec!["c9".into()];
    assert_eq!(
        replay_check(&w.state, &forged).unwrap_err().field,
        "consents"
    );

    let mut forged = logged.clone();
    forged.rules_version = 3;
    assert_eq!(
        replay_check(&w.state, &forged).unwrap_err().field,
        "rules_version"
    );

    let mut forged = logged.clone();
    forged.reasons = vec![];
    assert_eq!(
        replay_check(&w.state, &forged).unwrap_err().field,
        "reasons"
    );

    let mut forged = logged;
    forged.at = t0() + 400 * DAY;
    assert_eq!(
        replay_check(&w.state, &forged).unwrap_err().field,
        "outcome"
    );
}
