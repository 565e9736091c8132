//! Entry formats, authorship and validity checks, the key registry, and
//! explanations.

use crate::common;

use common::*;
use policy::explain::unix_from_civil;
use policy::*;

/// One example of every entry type, as the ledger stores it.
const EXAMPLES: [&str; 14] = [
    r#"{"type":"governance.rules","v":1,"version":1,"vocabulary":{"categories":[{"code":"health","en":"your health records","es":"sus expedientes de salud"}],"purposes":[{"code":"treatment","en":"to treat you","es":"para darle tratamiento"},{"code":"medical-emergency","en":"in a medical emergency","es":"en una emergencia médica"}],"classes":[{"code":"clinic","en":"any clinic","es":"cualquier clínica"}]},"rules":{"forbidden_purposes":[],"consent_duration_days_max":365,"allow_until_revoked":false,"specific_recipient_categories":[],"break_glass":{"purpose":"medical-emergency","agencies":[],"classes":["clinic"],"categories":["health"]}},"at":1775001600}"#,
    r#"{"type":"agency.enrolled","v":1,"agency":"riverside-housing","name":"Riverside Housing","key_id":"k-riverside-1","public_key":"GwP2yLc9Q3nqXvV0v6zEuHh7I2w8Jx3rDqJ0zmsJq1U=","upstream":"https://records.riverside.example/api","classes":["housing"],"roles":["agency"],"at":1775001600}"#,
    r#"{"type":"agency.key_rotated","v":1,"agency":"riverside-housing","key_id":"k-riverside-2","public_key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","at":1775088000}"#,
    r#"{"type":"agency.retired","v":1,"agency":"riverside-housing","at":1775174400}"#,
    r#"{"type":"participant.enrolled","v":1,"participant":"p-7f3a9c","key_id":"k-p-7f3a9c","public_key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","at":1775001600,"enrolled_by":"harbor-clinic"}"#,
    r#"{"type":"consent.granted","v":1,"consent_id":"c-2026-0001","participant":"p-7f3a9c","holders":{"agencies":["harbor-clinic"],"classes":[]},"recipients":{"agencies":["riverside-housing"],"classes":[]},"categories":["social.housing","health.sud.treatment"],"purposes":["housing-placement"],"effective_at":1775001600,"expires_at":1806451200,"signed_at":1775001600,"language":"en"}"#,
    r#"{"type":"consent.revoked","v":1,"consent_id":"c-2026-0001","participant":"p-7f3a9c","at":1775088000,"assisted_by":null}"#,
    r#"{"type":"access.decided","v":1,"decision_id":"d-01HZX","at":1775005200,"requester":"riverside-housing","holder":"harbor-clinic","participant":"p-7f3a9c","categories":["social.housing","health.mental"],"purpose":"housing-placement","outcome":"allow","released":["social.housing"],"consents":["c-2026-0001"],"reasons":["category-not-covered"],"break_glass":false,"rules_version":0,"request_digest":"sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"}"#,
    r#"{"type":"access.refused","v":1,"decision_id":"d-01HZY","at":1775005300,"reason":"bad-signature","request_digest":"sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:","claimed_key_id":"k-riverside-1"}"#,
    r#"{"type":"access.released","v":1,"decision_id":"d-01HZX","participant":"p-7f3a9c","at":1775005201,"upstream_status":502,"released_sha256":"","released_bytes":0,"kept":[],"dropped":[],"problem":"upstream-error"}"#,
    r#"{"type":"participant.notice","v":1,"participant":"p-0001","at":1775005201,"kind":"break-glass","decision_id":"d-01HZX"}"#,
    r#"{"type":"participant.key_rotated","v":1,"participant":"p-7f3a9c","key_id":"k-p-7f3a9c-2","public_key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","at":1775088000,"assisted_by":"harbor-clinic"}"#,
    r#"{"type":"grievance.filed","v":1,"grievance_id":"g-01","participant":"p-7f3a9c","decision_id":"d-01HZX","reason":"wrong-purpose","at":1775090000}"#,
    r#"{"type":"grievance.resolved","v":1,"grievance_id":"g-01","outcome":"upheld","at":1775190000}"#,
];

#[test]
fn every_example_parses_and_round_trips() {
    for (text, kind) in EXAMPLES.iter().zip([
        "governance.rules",
        "agency.enrolled",
        "agency.key_rotated",
        "agency.retired",
        "participant.enrolled",
        "consent.granted",
        "consent.revoked",
        "access.decided",
        "access.refused",
        "access.released",
        "participant.notice",
        "participant.key_rotated",
        "grievance.filed",
        "grievance.resolved",
    ]) {
        let event = parse_event(text.as_bytes()).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(event.kind(), kind);
        let bytes = event.to_json().unwrap();
        assert_eq!(parse_event(&bytes).unwrap(), event, "{kind}");
    }
}

#[test]
fn parse_rejects_what_it_must() {
    let granted = EXAMPLES[5];
    let cases: Vec<(String, &str)> = vec![
        (granted.replace("\"v\":1", "\"v\":2"), "version"),
        (
            granted.replace("\"language\":\"en\"", "\"language\":\"en\",\"extra\":1"),
            "unknown field",
        ),
        (
            granted.replace("\"language\":\"en\"", "\"language\":\"fr\""),
            "language",
        ),
        (granted.replace("consent.granted", "consent.gifted"), "type"),
        (
            granted.replace("\"purposes\":[\"housing-placement\"]", "\"purposes\":[]"),
            "empty purposes",
        ),
        (
            granted.replace("\"social.housing\"", "\"Social Housing\""),
            "malformed code",
        ),
        (
            granted.replace("\"expires_at\":1806451200", "\"expires_at\":1775001600"),
            "expiry not after effect",
        ),
        (
            granted.replace(
                "\"agencies\":[\"riverside-housing\"],\"classes\":[]",
                "\"agencies\":[],\"classes\":[]",
            ),
            "no recipients",
        ),
        (
            granted.replace(
                "\"social.housing\",",
                &format!("{},", vec!["\"social.housing\""; 65].join(",")),
            ),
            "65 categories",
        ),
        (granted.replace("c-2026-0001", &"c".repeat(300)), "long id"),
        ("{\"type\":\"consent.granted\"}".to_owned(), "no version"),
        (
            granted.replace(
                "\"consent_id\":\"c-2026-0001\",",
                "\"consent_id\":\"a\",\"consent_id\":\"b\",",
            ),
            "duplicate key",
        ),
        ("[1,2]".to_owned(), "not an object"),
    ];
    for (text, why) in cases {
        assert!(parse_event(text.as_bytes()).is_err(), "accepted: {why}");
    }
    assert_eq!(
        parse_event(granted.replace("\"v\":1", "\"v\":2").as_bytes()),
        Err(ParseError::UnsupportedVersion(2))
    );
    assert!(matches!(
        parse_event(granted.replace("consent.granted", "x").as_bytes()),
        Err(ParseError::UnknownType(_))
    ));
}

#[test]
fn the_example_consent_reads_as_plain_language() {
    let mut w = World::new();
    w.grant(
        Grant::new("c1", "p1")
            .categories(&["social.housing", "health.sud.treatment"])
            .between(t0(), Some(unix_from_civil(2027, 3, 31) + 12 * 3600)),
    );
    let c = w.state.consent("c1").unwrap();
    assert_eq!(
        consent_summary(&w.state, &c, Language::En),
        "Riverside Housing may see your housing status and your treatment attendance, to place you in housing, until 31 March 2027."
    );
    assert_eq!(
        consent_summary(&w.state, &c, Language::Es),
        "Riverside Housing puede ver su situación de vivienda y su asistencia al tratamiento, para conseguirle vivienda, hasta el 31 de marzo de 2027."
    );
    w.grant(
        Grant::new("c2", "p1")
            .recipients(Parties::classes(&["clinic"]))
            .categories(&["health.sud.medication"])
            .purposes(&["treatment", "care-coordination"])
            .between(t0(), None),
    );
    let c = w.state.consent("c2").unwrap();
    assert_eq!(
        consent_summary(&w.state, &c, Language::En),
        "Any clinic may see your medication records, to treat you and to coordinate your care, until you revoke it or until 1 April 2027, whichever comes first."
    );
    assert_eq!(
        consent_summary(&w.state, &c, Language::Es),
        "Cualquier clínica puede ver sus registros de medicamentos, para darle tratamiento y para coordinar su atención, hasta que usted la revoque o hasta el 1 de abril de 2027, lo que ocurra primero."
    );
    let d = w.decide(
        &request(
            "riverside-housing",
            "harbor-clinic",
            "p1",
            &["social.housing", "health.mental"],
            "housing-placement",
        ),
        t0(),
    );
    assert_eq!(
        decision_summary(&w.state, &d, Language::En),
        "Shared: your housing status. No consent covers this kind of record."
    );
}

fn apply_err(w: &mut World, event: Event) -> ApplyError {
    w.apply(event).expect_err("should be refused")
}

#[test]
fn validity_table() {
    type Case = (
        &'static str,
        fn(&mut World) -> ApplyError,
        fn(&ApplyError) -> bool,
    );
    let cases: Vec<Case> = vec![
        (
            "a consent naming a forbidden purpose is refused at grant time",
            |w| {
                apply_err(
                    w,
                    Grant::new("c1", "p1")
                        .purposes(&["housing-placement", "prosecution"])
                        .event(),
                )
            },
            |e| matches!(e, ApplyError::ForbiddenPurpose { purpose, .. } if purpose == "prosecution"),
        ),
        (
            "longer than the maximum duration",
            |w| {
                apply_err(
                    w,
                    Grant::new("c1", "p1")
                        .between(t0(), Some(t0() + 366 * DAY))
                        .event(),
                )
            },
            |e| {
                matches!(
                    e,
                    ApplyError::DurationTooLong {
                        days: 366,
                        days_max: 365
                    }
                )
            },
        ),
        (
            "until-revoked where the rules require an expiry",
            |w| {
                w.rules(1, rules_with(&[], false, 30));
                apply_err(w, Grant::new("c1", "p1").between(t0(), None).event())
            },
            |e| *e == ApplyError::ExpiryRequired,
        ),
        (
            "consent ids are unique",
            |w| {
                w.grant(Grant::new("c1", "p1"));
                apply_err(w, Grant::new("c1", "p2").event())
            },
            |e| *e == ApplyError::ConsentExists("c1".into()),
        ),
        (
            "the participant must be enrolled (told as a lack of authority)",
            |w| apply_err(w, Grant::new("c1", "p9").event()),
            |e| *e == ApplyError::NotAuthorised,
        ),
        (
            "codes must be in the vocabulary",
            |w| {
                apply_err(
                    w,
                    Grant::new("c1", "p1").categories(&["social.yacht"]).event(),
                )
            },
            |e| {
                matches!(
                    e,
                    ApplyError::UnknownCode {
                        kind: "category",
                        ..
                    }
                )
            },
        ),
        (
            "recipients must be enrolled",
            |w| {
                apply_err(
                    w,
                    Grant::new("c1", "p1")
                        .recipients(Parties::agencies(&["nope"]))
                        .event(),
                )
            },
            |e| *e == ApplyError::UnknownAgency("nope".into()),
        ),
        (
            "recipients must not be retired",
            |w| {
                apply_err(
                    w,
                    Grant::new("c1", "p1")
                        .recipients(Parties::agencies(&["old-shelter"]))
                        .event(),
                )
            },
            |e| *e == ApplyError::AgencyRetired("old-shelter".into()),
        ),
        (
            "revoking an unknown consent",
            |w| apply_err(w, revoke_event("c404", "p1", None)),
            |e| *e == ApplyError::UnknownConsent("c404".into()),
        ),
        (
            "revoking someone else's consent looks like an unknown consent",
            |w| {
                w.grant(Grant::new("c1", "p2"));
                apply_err(w, revoke_event("c1", "p1", None))
            },
            |e| *e == ApplyError::UnknownConsent("c1".into()),
        ),
        (
            "revoking twice is a distinct error (a no-op for the caller)",
            |w| {
                w.grant(Grant::new("c1", "p1"));
                w.revoke("c1", "p1");
                apply_err(w, revoke_event("c1", "p1", None))
            },
            |e| *e == ApplyError::AlreadyRevoked("c1".into()),
        ),
        (
            "a grant must be signed by the participant",
            |w| {
                w.apply_signed(Grant::new("c1", "p1").event(), &["k-p2"])
                    .unwrap_err()
            },
            |e| *e == ApplyError::NotAuthorised,
        ),
        (
            "an agency cannot revoke without being named as the assistant",
            |w| {
                w.grant(Grant::new("c1", "p1"));
                w.apply_signed(revoke_event("c1", "p1", None), &["k-harbor-clinic"])
                    .unwrap_err()
            },
            |e| *e == ApplyError::NotAuthorised,
        ),
        (
            "a retired agency cannot assist a revocation",
            |w| {
                w.grant(Grant::new("c1", "p1"));
                apply_err(w, revoke_event("c1", "p1", Some("old-shelter")))
            },
            |e| *e == ApplyError::NotAuthorised,
        ),
        (
            "agency enrolment must be signed by governance",
            |w| {
                let e = agency_event("new", "New", &[], &[Role::Agency]);
                w.apply_signed(e, &[GW]).unwrap_err()
            },
            |e| matches!(e, ApplyError::BelowQuorum { members: 0, .. }),
        ),
        (
            "self-enrolment must be signed by the enrolled key",
            |w| {
                w.apply_signed(participant_event("p4"), &["k-p1"])
                    .unwrap_err()
            },
            |e| matches!(e, ApplyError::NotSignedBy(_)),
        ),
        (
            "key ids are unique across owners (an enrolment is told no more)",
            |w| {
                let mut e = participant_event("p4");
                if let Event::ParticipantEnrolled(p) = &mut e {
                    p.key_id = GOV.into();
                }
                w.apply_signed(e, &[GOV, "k-harbor-clinic"]).unwrap_err()
            },
            |e| *e == ApplyError::EnrolmentRefused,
        ),
        (
            "participants enrol once",
            |w| apply_err(w, participant_event("p1")),
            |e| *e == ApplyError::EnrolmentRefused,
        ),
        (
            "rules versions increase",
            |w| {
                w.rules(2, Rules::default_recovery());
                apply_err(
                    w,
                    Event::GovernanceRules(GovernanceRules {
                        v: V1,
                        version: 2,
                        vocabulary: Vocabulary::default_recovery(),
                        rules: Rules::default_recovery(),
                        at: t0(),
                    }),
                )
            },
            |e| {
                matches!(
                    e,
                    ApplyError::RulesVersionNotIncreasing {
                        version: 2,
                        current: 2
                    }
                )
            },
        ),
        (
            "rules must fit their vocabulary",
            |w| {
                let vocabulary = Vocabulary::from_toml(
                    "categories = []\npurposes = [{code = \"treatment\", en = \"t\", es = \"t\"}]\nclasses = []",
                )
                .unwrap();
                apply_err(
                    w,
                    Event::GovernanceRules(GovernanceRules {
                        v: V1,
                        version: 1,
                        vocabulary,
                        rules: Rules::default_recovery(),
                        at: t0(),
                    }),
                )
            },
            |e| matches!(e, ApplyError::Rules(RulesError::UnknownCode { .. })),
        ),
        (
            "access entries are signed by the gateway",
            |w| {
                w.apply_signed(parse_event(EXAMPLES[9].as_bytes()).unwrap(), &[GOV])
                    .unwrap_err()
            },
            |e| matches!(e, ApplyError::NotSignedBy(_)),
        ),
        (
            "indices increase",
            |w| {
                w.index -= 1;
                apply_err(w, participant_event("p5"))
            },
            |e| matches!(e, ApplyError::OutOfOrder { .. }),
        ),
    ];
    for (name, run, expect) in cases {
        let mut w = World::new();
        let err = run(&mut w);
        assert!(expect(&err), "{name}: got {err:?}");
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn check_validates_without_applying() {
    let mut w = World::new();
    let e = Grant::new("c1", "p1").event();
    assert_eq!(w.state.check(&e, &["k-p1"]), Ok(()));
    assert!(w.state.consent("c1").is_none());
    w.ok(e.clone());
    assert_eq!(
        w.state.check(&e, &["k-p1"]),
        Err(ApplyError::ConsentExists("c1".into()))
    );
    let revoke = revoke_event("c1", "p1", None);
    assert_eq!(w.state.check(&revoke, &["k-p1"]), Ok(()));
}

#[test]
fn assisted_revocation_and_statuses() {
    let mut w = World::new();
    w.grant(Grant::new("c1", "p1"));
    w.grant(Grant::new("c2", "p1").between(t0() + 10 * DAY, Some(t0() + 20 * DAY)));
    w.ok(revoke_event("c1", "p1", Some("harbor-clinic")));
    let revoke_index = w.index;
    let list = w.state.consents_of("p1", t0() + 30 * DAY);
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].1, ConsentStatus::Revoked);
    assert_eq!(list[1].1, ConsentStatus::Expired);
    let rev = list[0].0.revocation.clone().unwrap();
    assert_eq!(rev.index, revoke_index);
    assert_eq!(rev.assisted_by.as_deref(), Some("harbor-clinic"));
    assert_eq!(
        w.state.consents_of("p1", t0())[1].1,
        ConsentStatus::NotYetEffective
    );
    assert_eq!(
        w.state.consents_of("p1", t0() + 15 * DAY)[1].1,
        ConsentStatus::Active
    );
    assert!(w.state.consents_of("nobody", t0()).is_empty());
}

#[test]
fn key_registry_follows_enrolment_rotation_and_retirement() {
    let mut w = World::new();
    let k = w.state.key("k-riverside-housing").unwrap();
    assert_eq!(k.owner, KeyOwner::Agency("riverside-housing".into()));
    assert!(k.current);
    w.ok(Event::AgencyKeyRotated(AgencyKeyRotated {
        v: V1,
        agency: "riverside-housing".into(),
        key_id: "k-riverside-2".into(),
        public_key: KEY.into(),
        at: t0(),
    }));
    assert!(!w.state.key("k-riverside-housing").unwrap().current);
    assert!(w.state.key("k-riverside-2").unwrap().current);
    assert_eq!(
        w.state.agency("riverside-housing").unwrap().current_key_id,
        "k-riverside-2"
    );
    assert_eq!(w.state.key(GOV).unwrap().owner, KeyOwner::Governance);
    assert_eq!(w.state.key(GW).unwrap().owner, KeyOwner::Gateway);
    assert_eq!(
        w.state.key("k-p1").unwrap().owner,
        KeyOwner::Participant("p1".into())
    );
    assert!(!w.state.key("k-old-shelter").unwrap().current);
    let old = w.state.agency("old-shelter").unwrap();
    assert!(old.retired);
    assert_eq!(old.enrolled.classes, vec!["housing".to_owned()]);
    assert_eq!(old.id(), "old-shelter");
    // The enrolment entry as applied, with the key it enrolled with.
    let riverside = w.state.agency("riverside-housing").unwrap();
    assert_eq!(riverside.enrolled.key_id, "k-riverside-housing");
    assert_eq!(
        Event::AgencyEnrolled(riverside.enrolled),
        agency_event(
            "riverside-housing",
            "Riverside Housing",
            &["housing"],
            &[Role::Agency]
        )
    );
    let e = participant_event("p9");
    assert_eq!(e.self_signing_key(), Some(("k-p9", KEY)));
    assert_eq!(w.state.rules_version(), 0);
    assert_eq!(w.state.agencies().len(), AGENCIES.len() + 2);
}

#[test]
fn loaders_reject_bad_toml() {
    assert!(matches!(
        Vocabulary::from_toml("categories = 3"),
        Err(VocabularyError::Toml(_))
    ));
    assert!(matches!(
        Rules::from_toml("forbidden_purposes = []"),
        Err(RulesError::Toml(_))
    ));
    assert!(Rules::from_toml(
        "forbidden_purposes = []\nconsent_duration_days_max = 0\nallow_until_revoked = true"
    )
    .is_err());
}

#[test]
fn a_consent_view_embeds_the_grant_as_applied() {
    let mut w = World::new();
    let grant = Grant::new("c1", "p1")
        .recipients(Parties {
            agencies: strings(&["riverside-housing"]),
            classes: strings(&["clinic"]),
        })
        .categories(&["social.housing", "health.sud.treatment"])
        .between(t0(), None);
    w.grant(grant.clone());
    let index = w.index;
    let view = w.state.consent("c1").unwrap();
    assert_eq!(Event::ConsentGranted(view.granted.clone()), grant.event());
    assert_eq!(view.granted_index, index);
    assert_eq!(view.ends_at, t0() + 365 * DAY);
    assert!(view.revocation.is_none());
    // Repeats are dropped, order kept.
    w.grant(Grant::new("c2", "p1").categories(&["social.housing", "social", "social.housing"]));
    assert_eq!(
        w.state.consent("c2").unwrap().granted.categories,
        strings(&["social.housing", "social"])
    );
}

#[test]
fn enrolment_needs_the_intake_agency_and_a_rotation_retires_the_old_key() {
    let mut w = World::new();
    // Self-signed alone: refused; a retired or unknown agency cannot vouch.
    let e = participant_event("p9");
    assert!(matches!(
        w.apply_signed(e.clone(), &["k-p9"]).unwrap_err(),
        ApplyError::NotSignedBy(_)
    ));
    w.apply_signed(e, &["k-p9", "k-harbor-clinic"]).unwrap();
    assert_eq!(w.state.participant_enrolled_by("p9"), Some("harbor-clinic"));

    let rotated = Event::ParticipantKeyRotated(ParticipantKeyRotated {
        v: V1,
        participant: "p9".into(),
        key_id: "k-p9-2".into(),
        public_key: KEY.into(),
        at: t0(),
        assisted_by: "harbor-clinic".into(),
    });
    // Without the agency in person, or for someone not enrolled: one refusal.
    assert_eq!(
        w.apply_signed(rotated.clone(), &["k-p9-2"]).unwrap_err(),
        ApplyError::NotAuthorised
    );
    let mut stranger = rotated.clone();
    if let Event::ParticipantKeyRotated(r) = &mut stranger {
        r.participant = "p-nobody".into();
    }
    assert_eq!(
        w.apply_signed(stranger, &["k-p9-2", "k-harbor-clinic"])
            .unwrap_err(),
        ApplyError::NotAuthorised
    );
    // Another agency, even one that knows the person, cannot vouch: only
    // the one that enrolled them.
    let mut elsewhere = rotated.clone();
    if let Event::ParticipantKeyRotated(r) = &mut elsewhere {
        r.assisted_by = "jobs-centre".into();
    }
    assert_eq!(
        w.apply_signed(elsewhere, &["k-p9-2", "k-jobs-centre"])
            .unwrap_err(),
        ApplyError::NotAuthorised
    );
    w.apply_signed(rotated, &["k-p9-2", "k-harbor-clinic"])
        .unwrap();
    let rotation_index = w.index;
    // Pending: the old key is still the person's key.
    assert_eq!(w.state.participant_key_id("p9"), Some("k-p9"));
    let pending = w.state.pending_rotation("p9").unwrap();
    assert_eq!(pending.ready_at, t0() + 72 * 3600);
    assert!(w.state.due_rotations(t0() + 72 * 3600 - 1, 10).is_empty());
    assert_eq!(w.state.due_rotations(t0() + 72 * 3600, 10), vec![pending]);

    // While it is pending, neither key grants.
    let g = Grant::new("c-p9", "p9")
        .holders(Parties::agencies(&["harbor-clinic"]))
        .recipients(Parties::agencies(&["riverside-housing"]))
        .categories(&["social.housing"])
        .purposes(&["housing-placement"]);
    assert_eq!(
        w.apply_signed(g.event(), &["k-p9"]).unwrap_err(),
        ApplyError::RotationPending
    );
    assert_eq!(
        w.apply_signed(g.event(), &["k-p9-2"]).unwrap_err(),
        ApplyError::NotAuthorised
    );

    // The gateway activates it only once the wait has passed.
    let activation = |at: i64| {
        Event::ParticipantKeyActivated(policy::ParticipantKeyActivated {
            v: V1,
            participant: "p9".into(),
            key_id: "k-p9-2".into(),
            rotation_index,
            at,
        })
    };
    assert_eq!(
        w.apply_signed(activation(t0() + 72 * 3600), &["k-harbor-clinic"])
            .unwrap_err(),
        ApplyError::NotSignedBy("the gateway key".into())
    );
    assert_eq!(
        w.apply_signed(activation(t0() + 72 * 3600 - 1), &[GW])
            .unwrap_err(),
        ApplyError::RotationNotDue {
            at: t0() + 72 * 3600 - 1,
            ready_at: t0() + 72 * 3600
        }
    );
    w.apply_signed(activation(t0() + 72 * 3600), &[GW]).unwrap();
    assert_eq!(w.state.participant_key_id("p9"), Some("k-p9-2"));
    assert!(w.state.pending_rotation("p9").is_none());

    // The old key now signs nothing that is accepted; the new one does.
    assert_eq!(
        w.apply_signed(g.event(), &["k-p9"]).unwrap_err(),
        ApplyError::NotAuthorised
    );
    w.apply_signed(g.event(), &["k-p9-2"]).unwrap();
}

#[test]
fn the_current_key_cancels_a_rotation_and_either_key_revokes_while_it_waits() {
    let mut w = World::new();
    w.grant(
        Grant::new("c1", "p1")
            .holders(Parties::agencies(&["harbor-clinic"]))
            .recipients(Parties::agencies(&["riverside-housing"]))
            .categories(&["social.housing"])
            .purposes(&["housing-placement"]),
    );
    let rotate = |key: &str| {
        Event::ParticipantKeyRotated(ParticipantKeyRotated {
            v: V1,
            participant: "p1".into(),
            key_id: key.into(),
            public_key: KEY.into(),
            at: t0(),
            assisted_by: "harbor-clinic".into(),
        })
    };
    w.apply_signed(rotate("k-p1-new"), &["k-p1-new", "k-harbor-clinic"])
        .unwrap();
    // One pending move at a time.
    assert_eq!(
        w.apply_signed(rotate("k-p1-other"), &["k-p1-other", "k-harbor-clinic"])
            .unwrap_err(),
        ApplyError::RotationPending
    );
    // The pending key may revoke: a person who lost their key can stop
    // sharing at once.
    w.apply_signed(revoke_event("c1", "p1", None), &["k-p1-new"])
        .unwrap();
    let cancel = |key: &str| {
        Event::ParticipantRotationCancelled(policy::ParticipantRotationCancelled {
            v: V1,
            participant: "p1".into(),
            key_id: key.into(),
            at: t0() + 60,
        })
    };
    // Neither the pending key, nor the agency, nor another person cancels.
    for signer in ["k-p1-new", "k-harbor-clinic", "k-p2"] {
        assert_eq!(
            w.apply_signed(cancel("k-p1-new"), &[signer]).unwrap_err(),
            ApplyError::NotAuthorised,
            "{signer}"
        );
    }
    assert_eq!(
        w.apply_signed(cancel("k-p1-other"), &["k-p1"]).unwrap_err(),
        ApplyError::NoPendingRotation
    );
    w.apply_signed(cancel("k-p1-new"), &["k-p1"]).unwrap();
    assert!(w.state.pending_rotation("p1").is_none());
    assert!(w.state.due_rotations(i64::MAX, 10).is_empty());
    let flagged = w.state.cancelled_rotations();
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0].rotation.key_id, "k-p1-new");
    assert_eq!(flagged[0].rotation.assisted_by, "harbor-clinic");
    // The cancelled key never becomes anyone's, and its id is spent.
    assert_eq!(
        w.apply_signed(revoke_event("c1", "p1", None), &["k-p1-new"])
            .unwrap_err(),
        ApplyError::NotAuthorised
    );
    assert!(matches!(
        w.apply_signed(rotate("k-p1-new"), &["k-p1-new", "k-harbor-clinic"])
            .unwrap_err(),
        ApplyError::KeyIdInUse(_)
    ));
}

#[test]
fn grievances_are_filed_by_their_participant_and_resolved_once_by_governance() {
    let mut w = World::new();
    let filed = Event::GrievanceFiled(GrievanceFiled {
        v: V1,
        grievance_id: "g-1".into(),
        participant: "p1".into(),
        decision_id: "d-1".into(),
        reason: GrievanceReason::WrongPurpose,
        at: t0(),
    });
    assert_eq!(
        w.apply_signed(filed.clone(), &["k-p2"]).unwrap_err(),
        ApplyError::NotAuthorised
    );
    w.apply(filed.clone()).unwrap();
    assert!(matches!(
        w.apply(filed).unwrap_err(),
        ApplyError::GrievanceExists(_)
    ));
    let resolved = Event::GrievanceResolved(GrievanceResolved {
        v: V1,
        grievance_id: "g-1".into(),
        outcome: GrievanceOutcome::Upheld,
        at: t0() + DAY,
    });
    assert!(matches!(
        w.apply_signed(resolved.clone(), &["k-p1"]).unwrap_err(),
        ApplyError::BelowQuorum { .. }
    ));
    w.apply(resolved.clone()).unwrap();
    assert!(matches!(
        w.apply(resolved).unwrap_err(),
        ApplyError::GrievanceResolved(_)
    ));
    let mine = w.state.grievances_of("p1");
    assert_eq!(mine.len(), 1);
    assert_eq!(
        mine[0].resolution.as_ref().map(|(r, _)| r.outcome),
        Some(GrievanceOutcome::Upheld)
    );
    assert!(w.state.grievances_of("p2").is_empty());
}
