//! The policy holes of issue 10, one table per hole. Each table failed on
//! the code before the fix.

use crate::common;

use common::*;
use policy::*;

// ----- specific recipient vs a parent category -------------------------------

struct ParentRow {
    name: &'static str,
    setup: fn(&mut World),
    request: Request,
    at: i64,
    outcome: Outcome,
    released: &'static [&'static str],
    withheld: &'static [(&'static str, Reason)],
    consents: &'static [&'static str],
    /// A consent names the requester, so a restricted code may go.
    named: bool,
}

/// `health` to any housing agency, for housing placement.
fn health_to_housing_class(w: &mut World) {
    w.grant(
        Grant::new("c1", "p1")
            .recipients(Parties::classes(&["housing"]))
            .categories(&["health"]),
    );
}

fn health_req(categories: &[&str]) -> Request {
    request(
        "riverside-housing",
        "harbor-clinic",
        "p1",
        categories,
        "housing-placement",
    )
}

#[test]
fn a_parent_category_never_releases_a_restricted_child_through_a_class() {
    use Outcome::{Allow, Deny};
    let t = t0() + DAY;
    let rows = vec![
        ParentRow {
            name: "class consent for health, health requested: only the unrestricted part",
            setup: health_to_housing_class,
            request: health_req(&["health"]),
            at: t,
            outcome: Allow,
            released: &["health.sud"],
            withheld: &[("health.mental", Reason::SpecificRecipientRequired)],
            consents: &["c1"],
            named: false,
        },
        ParentRow {
            name: "class consent for health, health.mental requested alone",
            setup: health_to_housing_class,
            request: health_req(&["health.mental"]),
            at: t,
            outcome: Deny,
            released: &[],
            withheld: &[("health.mental", Reason::SpecificRecipientRequired)],
            consents: &[],
            named: false,
        },
        ParentRow {
            name: "class consent for health, a clean child requested",
            setup: health_to_housing_class,
            request: health_req(&["health.sud.treatment"]),
            at: t,
            outcome: Allow,
            released: &["health.sud.treatment"],
            withheld: &[],
            consents: &["c1"],
            named: false,
        },
        ParentRow {
            name: "a consent naming the requester releases the parent whole",
            setup: |w| {
                w.grant(Grant::new("c1", "p1").categories(&["health"]));
            },
            request: health_req(&["health"]),
            at: t,
            outcome: Allow,
            released: &["health"],
            withheld: &[],
            consents: &["c1"],
            named: true,
        },
        ParentRow {
            name: "class consent for health plus a named consent for health.mental",
            setup: |w| {
                health_to_housing_class(w);
                w.grant(Grant::new("c2", "p1").categories(&["health.mental"]));
            },
            request: health_req(&["health"]),
            at: t,
            outcome: Allow,
            released: &["health.mental", "health.sud"],
            withheld: &[],
            consents: &["c1", "c2"],
            named: true,
        },
        ParentRow {
            name: "class consent for everything under the root of a restricted tree",
            setup: |w| {
                w.grant(
                    Grant::new("c1", "p1")
                        .recipients(Parties::classes(&["housing"]))
                        .categories(&["health", "social"]),
                );
            },
            request: health_req(&["health", "social"]),
            at: t,
            outcome: Allow,
            released: &["health.sud", "social"],
            withheld: &[("health.mental", Reason::SpecificRecipientRequired)],
            consents: &["c1"],
            named: false,
        },
        ParentRow {
            name: "class consent for justice (itself restricted) releases nothing",
            setup: |w| {
                w.grant(
                    Grant::new("c1", "p1")
                        .recipients(Parties::classes(&["housing"]))
                        .categories(&["justice"]),
                );
            },
            request: health_req(&["justice"]),
            at: t,
            outcome: Deny,
            released: &[],
            withheld: &[("justice", Reason::SpecificRecipientRequired)],
            consents: &[],
            named: false,
        },
        ParentRow {
            name: "an expired class consent for health: the parent is withheld whole",
            setup: health_to_housing_class,
            request: health_req(&["health"]),
            at: t0() + 200 * DAY,
            outcome: Deny,
            released: &[],
            withheld: &[("health", Reason::ConsentExpired)],
            consents: &[],
            named: false,
        },
    ];
    let mut failures = Vec::new();
    for row in rows {
        let mut w = World::new();
        (row.setup)(&mut w);
        let d = w.decide(&row.request, row.at);
        let withheld: Vec<(String, Reason)> = d
            .withheld()
            .iter()
            .map(|x| (x.category.clone(), x.reason))
            .collect();
        let got = (
            d.outcome(),
            d.released().to_vec(),
            withheld,
            d.consents().to_vec(),
        );
        let want = (
            row.outcome,
            strings(row.released),
            row.withheld
                .iter()
                .map(|(c, r)| ((*c).to_owned(), *r))
                .collect::<Vec<_>>(),
            strings(row.consents),
        );
        if got != want {
            failures.push(format!("{}:\n  got  {got:?}\n  want {want:?}", row.name));
        }
        // Whatever is released must never reach a restricted code through a
        // consent that does not name the requester.
        let restricted = ["health.mental", "justice"];
        if !row.named {
            for code in d.released() {
                for r in restricted {
                    if vocab::code_covers(code, r) {
                        failures.push(format!("{}: released {code} reaches {r}", row.name));
                    }
                }
            }
        }
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
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ----- assisted revocation ----------------------------------------------------

struct RevokeRow {
    name: &'static str,
    consent: fn() -> Grant,
    assisted_by: Option<&'static str>,
    signer: &'static str,
    accepted: bool,
}

fn named_consent() -> Grant {
    Grant::new("c1", "p1")
}

fn class_consent() -> Grant {
    Grant::new("c1", "p1")
        .holders(Parties::classes(&["treatment"]))
        .recipients(Parties::classes(&["housing"]))
}

#[test]
fn an_assisted_revocation_needs_a_party_to_the_consent() {
    let rows = vec![
        RevokeRow {
            name: "an agency that is no party cannot revoke by naming itself",
            consent: named_consent,
            assisted_by: Some("jobs-centre"),
            signer: "k-jobs-centre",
            accepted: false,
        },
        RevokeRow {
            name: "an agency of another class is no party to a class consent",
            consent: class_consent,
            assisted_by: Some("county-court"),
            signer: "k-county-court",
            accepted: false,
        },
        RevokeRow {
            name: "naming a party while signed by another agency",
            consent: named_consent,
            assisted_by: Some("harbor-clinic"),
            signer: "k-jobs-centre",
            accepted: false,
        },
        RevokeRow {
            name: "a retired member of the recipient class",
            consent: class_consent,
            assisted_by: Some("old-shelter"),
            signer: "k-old-shelter",
            accepted: false,
        },
        RevokeRow {
            name: "a named holder may assist",
            consent: named_consent,
            assisted_by: Some("harbor-clinic"),
            signer: "k-harbor-clinic",
            accepted: true,
        },
        RevokeRow {
            name: "a named recipient may assist",
            consent: named_consent,
            assisted_by: Some("riverside-housing"),
            signer: "k-riverside-housing",
            accepted: true,
        },
        RevokeRow {
            name: "a member of the recipient class may assist",
            consent: class_consent,
            assisted_by: Some("eastside-housing"),
            signer: "k-eastside-housing",
            accepted: true,
        },
        RevokeRow {
            name: "a member of the holder class may assist",
            consent: class_consent,
            assisted_by: Some("hope-treatment"),
            signer: "k-hope-treatment",
            accepted: true,
        },
        RevokeRow {
            name: "the participant's own signature suffices, whoever helped",
            consent: named_consent,
            assisted_by: Some("jobs-centre"),
            signer: "k-p1",
            accepted: true,
        },
    ];
    let mut failures = Vec::new();
    for row in rows {
        let mut w = World::new();
        w.grant((row.consent)());
        // What the same signer gets for a consent that does not exist: a
        // refusal must look exactly like it.
        let unknown = w
            .state
            .check(&revoke_event("c404", "p1", row.assisted_by), &[row.signer])
            .expect_err("an unknown consent cannot be revoked");
        let event = revoke_event("c1", "p1", row.assisted_by);
        let checked = w.state.check(&event, &[row.signer]);
        let applied = w.apply_signed(event, &[row.signer]);
        assert_eq!(checked, applied, "{}: check and apply disagree", row.name);
        let revoked = w
            .state
            .consent("c1")
            .is_some_and(|c| c.revocation.is_some());
        match (row.accepted, applied) {
            (true, Ok(())) if revoked => {}
            (false, Err(e)) if e == unknown && !revoked => {}
            (want, got) => failures.push(format!(
                "{}: want accepted={want}, got {got:?} (revoked: {revoked}; unknown consent gives {unknown:?})",
                row.name
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ----- errors must not reveal enrolment --------------------------------------

type Attempt = (&'static str, fn() -> (Event, &'static [&'static str]));

fn refusals_are_identical(cases: Vec<Attempt>) -> Vec<String> {
    let mut seen: Vec<(&str, ApplyError)> = Vec::new();
    let mut failures = Vec::new();
    for (name, make) in cases {
        let mut w = World::new();
        w.grant(Grant::new("c1", "p1"));
        w.grant(Grant::new("c2", "p2"));
        let (event, signers) = make();
        let checked = w.state.check(&event, signers);
        let applied = w.apply_signed(event, signers);
        if checked != applied {
            failures.push(format!("{name}: check {checked:?} but apply {applied:?}"));
        }
        match applied {
            Ok(()) => failures.push(format!("{name}: accepted")),
            Err(e) => seen.push((name, e)),
        }
    }
    if let Some((first_name, first)) = seen.first() {
        for (name, e) in &seen[1..] {
            if e != first || e.to_string() != first.to_string() {
                failures.push(format!(
                    "{name}: {e:?} ({e}) differs from {first_name}: {first:?} ({first})"
                ));
            }
        }
    }
    failures
}

#[test]
fn errors_do_not_reveal_whether_a_person_is_enrolled() {
    // Anyone who is not the participant gets one and the same refusal,
    // whether the person, the consent, or neither exists.
    let not_the_participant: Vec<Attempt> = vec![
        ("grant for an unknown person, signed by an agency", || {
            (Grant::new("c9", "p9").event(), &["k-riverside-housing"])
        }),
        ("grant for an enrolled person, signed by an agency", || {
            (Grant::new("c9", "p1").event(), &["k-riverside-housing"])
        }),
        (
            "grant for an enrolled person, signed by another person",
            || (Grant::new("c9", "p1").event(), &["k-p2"]),
        ),
        (
            "grant for an unknown person, signed by another person",
            || (Grant::new("c9", "p9").event(), &["k-p2"]),
        ),
        ("revoke for an unknown person, by an agency", || {
            (revoke_event("c1", "p9", None), &["k-jobs-centre"])
        }),
        (
            "revoke of an unknown consent of an enrolled person, by an agency",
            || (revoke_event("c404", "p1", None), &["k-jobs-centre"]),
        ),
        (
            "revoke of an existing consent, by an agency not named",
            || (revoke_event("c1", "p1", None), &["k-jobs-centre"]),
        ),
        (
            "revoke naming the wrong person for an existing consent",
            || (revoke_event("c1", "p2", None), &["k-jobs-centre"]),
        ),
        ("assisted revoke for an unknown person", || {
            (
                revoke_event("c1", "p9", Some("jobs-centre")),
                &["k-jobs-centre"],
            )
        }),
        ("assisted revoke of an unknown consent", || {
            (
                revoke_event("c404", "p1", Some("jobs-centre")),
                &["k-jobs-centre"],
            )
        }),
        ("assisted revoke naming an unknown agency", || {
            (
                revoke_event("c1", "p1", Some("ghost-agency")),
                &["k-jobs-centre"],
            )
        }),
        ("assisted revoke naming a retired agency", || {
            (
                revoke_event("c1", "p1", Some("old-shelter")),
                &["k-old-shelter"],
            )
        }),
        (
            "revoke of another person's consent by a party of it",
            || {
                (
                    revoke_event("c2", "p1", Some("harbor-clinic")),
                    &["k-harbor-clinic"],
                )
            },
        ),
    ];
    let mut failures = refusals_are_identical(not_the_participant);

    // Enrolment is signed by the new key; a collision with an existing
    // participant id or key id must not say which, nor name it.
    let enrolments: Vec<Attempt> = vec![
        ("an existing participant id with a fresh key", || {
            let mut e = participant_event("p1");
            if let Event::ParticipantEnrolled(p) = &mut e {
                p.key_id = "k-fresh".into();
            }
            (e, &["k-fresh"])
        }),
        (
            "a fresh participant id with an enrolled person's key id",
            || {
                let mut e = participant_event("p-fresh");
                if let Event::ParticipantEnrolled(p) = &mut e {
                    p.key_id = "k-p1".into();
                }
                (e, &["k-p1"])
            },
        ),
        ("a fresh participant id with an agency's key id", || {
            let mut e = participant_event("p-fresh");
            if let Event::ParticipantEnrolled(p) = &mut e {
                p.key_id = "k-riverside-housing".into();
            }
            (e, &["k-riverside-housing"])
        }),
    ];
    failures.extend(refusals_are_identical(enrolments));
    for (event, signers) in [
        (participant_event("p1"), &["k-p1"][..]),
        (Grant::new("c9", "p9").event(), &["k-riverside-housing"][..]),
    ] {
        let mut w = World::new();
        if let Err(e) = w.apply_signed(event, signers) {
            for id in ["p1", "p9", "k-p1"] {
                if e.to_string().contains(id) {
                    failures.push(format!("refusal names {id:?}: {e}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ----- maximum consent duration -----------------------------------------------

enum Expect {
    Check(Result<(), ApplyError>),
    Status(i64, ConsentStatus),
    Decide(i64, Outcome, &'static [Reason]),
}

struct DurationRow {
    name: &'static str,
    /// (allow_until_revoked, days_max)
    rules: (bool, u32),
    grant: fn() -> Grant,
    expect: Expect,
}

fn until_revoked() -> Grant {
    Grant::new("c1", "p1").between(t0(), None)
}

#[test]
fn the_maximum_duration_bounds_every_consent() {
    use Expect::{Check, Decide, Status};
    let rows = vec![
        DurationRow {
            name: "check: until-revoked where the rules offer it",
            rules: (true, 365),
            grant: until_revoked,
            expect: Check(Ok(())),
        },
        DurationRow {
            name: "check: until-revoked where the rules do not offer it",
            rules: (false, 365),
            grant: until_revoked,
            expect: Check(Err(ApplyError::ExpiryRequired)),
        },
        DurationRow {
            name: "check: an expiry past the maximum",
            rules: (true, 30),
            grant: || Grant::new("c1", "p1").between(t0(), Some(t0() + 31 * DAY)),
            expect: Check(Err(ApplyError::DurationTooLong {
                days: 31,
                days_max: 30,
            })),
        },
        DurationRow {
            name: "state: an until-revoked consent is active one second before the bound",
            rules: (true, 365),
            grant: until_revoked,
            expect: Status(t0() + 365 * DAY - 1, ConsentStatus::Active),
        },
        DurationRow {
            name: "state: an until-revoked consent has expired at effective + maximum",
            rules: (true, 365),
            grant: until_revoked,
            expect: Status(t0() + 365 * DAY, ConsentStatus::Expired),
        },
        DurationRow {
            name: "decide: until-revoked, one second before the bound",
            rules: (true, 365),
            grant: until_revoked,
            expect: Decide(t0() + 365 * DAY - 1, Outcome::Allow, &[]),
        },
        DurationRow {
            name: "decide: until-revoked, at effective + maximum",
            rules: (true, 365),
            grant: until_revoked,
            expect: Decide(t0() + 365 * DAY, Outcome::Deny, &[Reason::ConsentExpired]),
        },
        DurationRow {
            name: "decide: until-revoked under a 30-day maximum, years later",
            rules: (true, 30),
            grant: until_revoked,
            expect: Decide(t0() + 5000 * DAY, Outcome::Deny, &[Reason::ConsentExpired]),
        },
        DurationRow {
            name: "decide: until-revoked starting later is bounded from its own start",
            rules: (true, 30),
            grant: || Grant::new("c1", "p1").between(t0() + 10 * DAY, None),
            expect: Decide(t0() + 39 * DAY, Outcome::Allow, &[]),
        },
    ];
    let mut failures = Vec::new();
    for row in rows {
        let mut w = World::new();
        let (allow, days) = row.rules;
        w.rules(1, rules_with(&[], allow, days));
        let event = (row.grant)().event();
        let checked = w.state.check(&event, &["k-p1"]);
        let got = match &row.expect {
            Check(want) => {
                (checked != *want).then(|| format!("check gave {checked:?}, want {want:?}"))
            }
            Status(at, want) => {
                w.ok(event);
                let got = w.state.consents_of("p1", *at)[0].1;
                (got != *want).then(|| format!("status {got:?}, want {want:?}"))
            }
            Decide(at, outcome, reasons) => {
                w.ok(event);
                let d = w.decide(
                    &request(
                        "riverside-housing",
                        "harbor-clinic",
                        "p1",
                        &["social.housing"],
                        "housing-placement",
                    ),
                    *at,
                );
                let got = (d.outcome(), d.reasons().to_vec());
                let want = (*outcome, reasons.to_vec());
                (got != want).then(|| format!("decided {got:?}, want {want:?}"))
            }
        };
        if let Some(problem) = got {
            failures.push(format!("{}: {problem}", row.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
