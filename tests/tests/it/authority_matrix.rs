//! Who may sign what: every entry type against every kind of signer,
//! through the real `Deployment::submit`, each cell accepted or refused as
//! the table below states. A fresh deployment per cell, so that one
//! accepted entry never changes the next cell's answer.
//!
//! The signer kinds: governance; the gateway; the participant the entry is
//! about; another participant; the agency that enrolled the participant;
//! an agency that is a party to the participant's consent; an unrelated
//! agency; an organisation with the auditor role only; one with the
//! witness role only; a retired agency; a rotated-out agency key; a
//! second member of the community board (quorum 1 here: the quorum itself
//! is `policy/tests/it/board.rs`'s); a member the board removed.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use consentry_tests::fixture::{self, NOW};
use ed25519_dalek::SigningKey;
use gateway::clock::ManualClock;
use gateway::deployment::{sign_event, Deployment, SubmitError};
use ledger::Envelope;
use policy::*;

const SIGNERS: [&str; 13] = [
    "governance",
    "gateway",
    "participant",
    "other-participant",
    "enrolling-agency",
    "party-agency",
    "unrelated-agency",
    "auditor-org",
    "witness-org",
    "retired-agency",
    "rotated-out-key",
    "board-member",
    "removed-member",
];

/// Rows: entry type; columns: `SIGNERS`; `A` accepted, `-` refused.
const EXPECTED: &str = "
governance.rules                 A - - - - - - - - - - A -
agency.enrolled                  A - - - - - - - - - - A -
agency.key_rotated               A - - - - - - - - - - A -
agency.retired                   A - - - - - - - - - - A -
participant.enrolled             - - - - A A A - - - - - -
participant.key_rotated          - - - - A - - - - - - - -
participant.key_rotated@retired  A - - - - - - - - - - A -
participant.key_activated        - A - - - - - - - - - - -
participant.rotation_cancelled   - - A - - - - - - - - - -
consent.granted                  - - A - - - - - - - - - -
consent.granted@pending          - - - - - - - - - - - - -
consent.revoked                  - - A - - A - - - - - - -
consent.revoked@pending-key      - - A - - A - - - - - - -
grievance.filed                  - - A - - - - - - - - - -
grievance.resolved               A - - - - - - - - - - A -
access.decided                   - A - - - - - - - - - - -
access.refused                   - A - - - - - - - - - - -
access.released                  - A - - - - - - - - - - -
participant.notice               - A - - - - - - - - - - -
";

fn key(tag: u8) -> SigningKey {
    SigningKey::from_bytes(&[tag; 32])
}

fn public(k: &SigningKey) -> String {
    B64.encode(k.verifying_key().as_bytes())
}

/// The organisations of the world, each `(id, roles, key)`.
fn orgs() -> Vec<(&'static str, Vec<Role>, SigningKey)> {
    vec![
        ("hope-clinic", vec![Role::Agency], key(1)),
        ("riverside-housing", vec![Role::Agency], key(2)),
        ("harbor-records", vec![Role::Agency], key(3)),
        ("jobs-centre", vec![Role::Agency], key(4)),
        ("audit-org", vec![Role::Auditor], key(5)),
        ("witness-org", vec![Role::Witness], key(6)),
        ("old-clinic", vec![Role::Agency], key(7)),
    ]
}

/// hope-clinic's key after its rotation; `hope-clinic:1` is rotated out.
fn hope_key_2() -> SigningKey {
    key(11)
}

fn p_key(i: u8) -> SigningKey {
    key(40 + i)
}

fn p_id(i: u8) -> String {
    format!("p-{i}")
}

fn p_kid(i: u8) -> String {
    format!("p-{i}:1")
}

/// The pending key of p-0 in the worlds that have one.
fn pending_key() -> SigningKey {
    key(60)
}

fn gov(e: &Event) -> Envelope {
    sign_event(e, "governance", &fixture::governance()).unwrap()
}

fn enrolment(i: u8, agency: &str, agency_kid: &str, agency_key: &SigningKey) -> Envelope {
    let e = Event::ParticipantEnrolled(ParticipantEnrolled {
        v: V1,
        participant: p_id(i),
        key_id: p_kid(i),
        public_key: public(&p_key(i)),
        at: NOW,
        enrolled_by: agency.into(),
    });
    let mut env = sign_event(&e, &p_kid(i), &p_key(i)).unwrap();
    env.add_signature(agency_kid, agency_key);
    env
}

fn rotation_of_p0(assisted_by: &str) -> Event {
    Event::ParticipantKeyRotated(ParticipantKeyRotated {
        v: V1,
        participant: p_id(0),
        key_id: "p-0:2".into(),
        public_key: public(&pending_key()),
        at: NOW,
        assisted_by: assisted_by.into(),
    })
}

/// What a world starts with besides the registry.
#[derive(Clone, Copy, PartialEq)]
enum World {
    Plain,
    /// p-0's move to `p-0:2` was asked for 72 hours ago.
    Pending,
}

/// A deployment holding: a board of governance, member-2 and member-3
/// (member-3 removed by a `board.changed`, quorum 1); the seven
/// organisations (old-clinic retired
/// after enrolling p-2; hope-clinic's key rotated to `hope-clinic:2`),
/// p-0 and p-1 enrolled at hope-clinic, consent c-0 (p-0 lets
/// riverside-housing receive from harbor-records) and grievance g-0 of
/// p-0.
async fn world(dir: &std::path::Path, kind: World) -> (Deployment, Arc<ManualClock>) {
    let trust = Trust {
        board: vec![
            BoardMember {
                key_id: "member-2".into(),
                public_key: public(&key(80)),
            },
            BoardMember {
                key_id: "member-3".into(),
                public_key: public(&key(81)),
            },
        ],
        ..fixture::trust()
    };
    let dep = Deployment::open(dir, fixture::gateway(), trust).unwrap();
    let clock = Arc::new(ManualClock::new(NOW));
    dep.set_clock(clock.clone());
    let mut entries = Vec::new();
    for (id, roles, k) in orgs() {
        entries.push(gov(&Event::AgencyEnrolled(AgencyEnrolled {
            v: V1,
            agency: id.into(),
            name: id.into(),
            key_id: format!("{id}:1"),
            public_key: public(&k),
            upstream: format!("http://127.0.0.1:9/{id}"),
            upstream_client_certificate: false,
            classes: vec!["clinic".into()],
            roles,
            at: NOW,
        })));
    }
    entries.push(enrolment(0, "hope-clinic", "hope-clinic:1", &key(1)));
    entries.push(enrolment(1, "hope-clinic", "hope-clinic:1", &key(1)));
    entries.push(enrolment(2, "old-clinic", "old-clinic:1", &key(7)));
    entries.push(gov(&Event::AgencyRetired(AgencyRetired {
        v: V1,
        agency: "old-clinic".into(),
        at: NOW,
    })));
    entries.push(gov(&Event::AgencyKeyRotated(AgencyKeyRotated {
        v: V1,
        agency: "hope-clinic".into(),
        key_id: "hope-clinic:2".into(),
        public_key: public(&hope_key_2()),
        at: NOW,
    })));
    entries.push(gov(&Event::BoardChanged(BoardChanged {
        v: V1,
        add: Vec::new(),
        remove: vec!["member-3".into()],
        quorum: 1,
        at: NOW,
    })));
    entries.push(sign_event(&grant("c-0"), &p_kid(0), &p_key(0)).unwrap());
    entries.push(
        sign_event(
            &Event::GrievanceFiled(GrievanceFiled {
                v: V1,
                grievance_id: "g-0".into(),
                participant: p_id(0),
                decision_id: "d-0".into(),
                reason: GrievanceReason::Other,
                at: NOW,
            }),
            &p_kid(0),
            &p_key(0),
        )
        .unwrap(),
    );
    for env in entries {
        dep.submit(env).await.unwrap();
    }
    if kind == World::Pending {
        clock.set(NOW - 72 * 3600);
        let mut r = rotation_of_p0("hope-clinic");
        if let Event::ParticipantKeyRotated(e) = &mut r {
            e.at = NOW - 72 * 3600;
        }
        let mut env = sign_event(&r, "p-0:2", &pending_key()).unwrap();
        env.add_signature("hope-clinic:2", &hope_key_2());
        dep.submit(env).await.unwrap();
        clock.set(NOW);
    }
    (dep, clock)
}

fn grant(consent: &str) -> Event {
    Event::ConsentGranted(ConsentGranted {
        v: V1,
        consent_id: consent.into(),
        participant: p_id(0),
        holders: Parties::agencies(&["harbor-records"]),
        recipients: Parties::agencies(&["riverside-housing"]),
        categories: vec!["social.housing".into()],
        purposes: vec!["housing-placement".into()],
        effective_at: NOW,
        expires_at: Some(NOW + 30 * 86_400),
        signed_at: NOW,
        language: Language::En,
    })
}

/// The key id, key and organisation (if any) of a signer kind.
fn signer(kind: &str) -> (String, SigningKey, Option<&'static str>) {
    match kind {
        "governance" => ("governance".into(), fixture::governance(), None),
        "gateway" => (
            "gateway".into(),
            fixture::gateway().signing_key().clone(),
            None,
        ),
        "participant" => (p_kid(0), p_key(0), None),
        "other-participant" => (p_kid(1), p_key(1), None),
        "enrolling-agency" => ("hope-clinic:2".into(), hope_key_2(), Some("hope-clinic")),
        "party-agency" => (
            "riverside-housing:1".into(),
            key(2),
            Some("riverside-housing"),
        ),
        "unrelated-agency" => ("jobs-centre:1".into(), key(4), Some("jobs-centre")),
        "auditor-org" => ("audit-org:1".into(), key(5), Some("audit-org")),
        "witness-org" => ("witness-org:1".into(), key(6), Some("witness-org")),
        "retired-agency" => ("old-clinic:1".into(), key(7), Some("old-clinic")),
        "rotated-out-key" => ("hope-clinic:1".into(), key(1), Some("hope-clinic")),
        "board-member" => ("member-2".into(), key(80), None),
        "removed-member" => ("member-3".into(), key(81), None),
        other => panic!("unknown signer kind {other}"),
    }
}

fn rules_entry() -> Event {
    Event::GovernanceRules(GovernanceRules {
        v: V1,
        version: 1,
        vocabulary: Vocabulary::default_recovery(),
        rules: Rules::default_recovery(),
        at: NOW,
    })
}

/// The entry a row submits, as signed by `kind`, with the world it needs.
/// Where an entry names an organisation as its co-signer (an enrolment's
/// agency, a rotation's or an assisted revocation's helper), it names the
/// signer's own.
fn entry(row: &str, kind: &str) -> (Envelope, World) {
    let (kid, k, org) = signer(kind);
    let org = org.unwrap_or("hope-clinic");
    let sign = |e: &Event| sign_event(e, &kid, &k).unwrap();
    let with_self = |e: &Event, self_kid: &str, self_key: &SigningKey| {
        let mut env = sign_event(e, self_kid, self_key).unwrap();
        env.add_signature(&kid, &k);
        env
    };
    let participant = |e: &Event| sign(e);
    match row {
        "governance.rules" => (sign(&rules_entry()), World::Plain),
        "agency.enrolled" => (
            sign(&Event::AgencyEnrolled(AgencyEnrolled {
                v: V1,
                agency: "new-agency".into(),
                name: "new agency".into(),
                key_id: "new-agency:1".into(),
                public_key: public(&key(90)),
                upstream: "http://127.0.0.1:9/new".into(),
                upstream_client_certificate: false,
                classes: vec![],
                roles: vec![Role::Agency],
                at: NOW,
            })),
            World::Plain,
        ),
        "agency.key_rotated" => (
            sign(&Event::AgencyKeyRotated(AgencyKeyRotated {
                v: V1,
                agency: "jobs-centre".into(),
                key_id: "jobs-centre:2".into(),
                public_key: public(&key(91)),
                at: NOW,
            })),
            World::Plain,
        ),
        "agency.retired" => (
            sign(&Event::AgencyRetired(AgencyRetired {
                v: V1,
                agency: "jobs-centre".into(),
                at: NOW,
            })),
            World::Plain,
        ),
        "participant.enrolled" => {
            let new = key(92);
            let e = Event::ParticipantEnrolled(ParticipantEnrolled {
                v: V1,
                participant: "p-new".into(),
                key_id: "p-new:1".into(),
                public_key: public(&new),
                at: NOW,
                enrolled_by: org.into(),
            });
            (with_self(&e, "p-new:1", &new), World::Plain)
        }
        "participant.key_rotated" => (
            with_self(&rotation_of_p0(org), "p-0:2", &pending_key()),
            World::Plain,
        ),
        "participant.key_rotated@retired" => {
            let e = Event::ParticipantKeyRotated(ParticipantKeyRotated {
                v: V1,
                participant: p_id(2),
                key_id: "p-2:2".into(),
                public_key: public(&key(93)),
                at: NOW,
                assisted_by: "old-clinic".into(),
            });
            (with_self(&e, "p-2:2", &key(93)), World::Plain)
        }
        "participant.key_activated" => (
            sign(&Event::ParticipantKeyActivated(ParticipantKeyActivated {
                v: V1,
                participant: p_id(0),
                key_id: "p-0:2".into(),
                // Its rotation is the last entry of the pending world
                // (the notice follows it).
                rotation_index: pending_rotation_index(),
                at: NOW,
            })),
            World::Pending,
        ),
        "participant.rotation_cancelled" => (
            participant(&Event::ParticipantRotationCancelled(
                ParticipantRotationCancelled {
                    v: V1,
                    participant: p_id(0),
                    key_id: "p-0:2".into(),
                    at: NOW,
                },
            )),
            World::Pending,
        ),
        "consent.granted" => (participant(&grant("c-1")), World::Plain),
        "consent.granted@pending" => (participant(&grant("c-1")), World::Pending),
        "consent.revoked" | "consent.revoked@pending-key" => {
            let agency = matches!(
                kind,
                "enrolling-agency"
                    | "party-agency"
                    | "unrelated-agency"
                    | "auditor-org"
                    | "witness-org"
                    | "retired-agency"
                    | "rotated-out-key"
            );
            let e = Event::ConsentRevoked(ConsentRevoked {
                v: V1,
                consent_id: "c-0".into(),
                participant: p_id(0),
                at: NOW,
                assisted_by: agency.then(|| org.to_string()),
            });
            if row == "consent.revoked@pending-key" && kind == "participant" {
                // The participant here is the pending key: it may revoke.
                return (
                    sign_event(&e, "p-0:2", &pending_key()).unwrap(),
                    World::Pending,
                );
            }
            let world = if row == "consent.revoked" {
                World::Plain
            } else {
                World::Pending
            };
            (sign(&e), world)
        }
        "grievance.filed" => (
            participant(&Event::GrievanceFiled(GrievanceFiled {
                v: V1,
                grievance_id: "g-1".into(),
                participant: p_id(0),
                decision_id: "d-1".into(),
                reason: GrievanceReason::WrongPurpose,
                at: NOW,
            })),
            World::Plain,
        ),
        "grievance.resolved" => (
            sign(&Event::GrievanceResolved(GrievanceResolved {
                v: V1,
                grievance_id: "g-0".into(),
                outcome: GrievanceOutcome::Upheld,
                at: NOW,
            })),
            World::Plain,
        ),
        "access.decided" => (
            sign(&Event::AccessDecided(AccessDecided {
                v: V1or2::V2,
                decision_id: "d-9".into(),
                at: NOW,
                requester: "riverside-housing".into(),
                holder: "harbor-records".into(),
                participant: p_id(0),
                categories: vec!["social.housing".into()],
                purpose: "housing-placement".into(),
                outcome: Outcome::Deny,
                released: vec![],
                consents: vec![],
                reasons: vec![Reason::NoConsent],
                break_glass: false,
                rules_version: 0,
                request_digest: None,
                basis: None,
                evidence: Some(Evidence {
                    method: EvidenceMethod::Rfc9421,
                    digest: "sha-256=:x:".into(),
                }),
                forwarded: None,
            })),
            World::Plain,
        ),
        "access.refused" => (
            sign(&Event::AccessRefused(AccessRefused {
                v: V1or2::V2,
                decision_id: "d-10".into(),
                at: NOW,
                reason: "bad-signature".into(),
                request_digest: None,
                claimed_key_id: None,
                from: Some(NOW - 60),
                count: Some(12),
                claimed: vec![ClaimedKey {
                    key_id: "hope-clinic:2".into(),
                    count: 12,
                }],
                verified_key_id: None,
            })),
            World::Plain,
        ),
        "access.released" => (
            sign(&Event::AccessReleased(AccessReleased {
                v: V1,
                decision_id: "d-9".into(),
                participant: p_id(0),
                at: NOW,
                upstream_status: 0,
                released_sha256: String::new(),
                released_bytes: 0,
                kept: vec![],
                dropped: vec![],
                problem: Some("upstream-unreachable".into()),
            })),
            World::Plain,
        ),
        "participant.notice" => (
            sign(&Event::ParticipantNotice(ParticipantNotice {
                v: V1or2::V2,
                participant: p_id(0),
                at: NOW,
                kind: NoticeKind::BreakGlass.code().into(),
                decision_id: Some("d-9".into()),
                entry_index: None,
            })),
            World::Plain,
        ),
        other => panic!("no entry for row {other}"),
    }
}

/// The index of p-0's rotation in the pending world: after the seven
/// organisations, three enrolments, a retirement, a key rotation, the
/// board's change, a grant and a grievance.
fn pending_rotation_index() -> u64 {
    7 + 3 + 1 + 1 + 1 + 1 + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entry_type_against_every_kind_of_signer() {
    let tmp = tempfile::tempdir().unwrap();
    let mut want = Vec::new();
    let mut got = Vec::new();
    let mut n = 0;
    for line in EXPECTED.lines().filter(|l| !l.trim().is_empty()) {
        let mut cols = line.split_whitespace();
        let row = cols.next().unwrap();
        let cells: Vec<&str> = cols.collect();
        assert_eq!(cells.len(), SIGNERS.len(), "row {row}");
        let mut mine = Vec::new();
        for kind in SIGNERS.iter() {
            n += 1;
            let (env, kind_of_world) = entry(row, kind);
            let (dep, _clock) = world(&tmp.path().join(n.to_string()), kind_of_world).await;
            let answer = dep.submit(env).await;
            // A refusal is a refusal of authority or meaning, never a
            // failure of the log.
            if let Err(e) = &answer {
                assert!(
                    !matches!(e, SubmitError::Log(_) | SubmitError::Stopped),
                    "{row} by {kind}: {e}"
                );
            }
            mine.push(if answer.is_ok() { "A" } else { "-" });
            dep.close();
        }
        want.push(format!("{row:32} {}", cells.join(" ")));
        got.push(format!("{row:32} {}", mine.join(" ")));
    }
    assert_eq!(
        got.join("\n"),
        want.join("\n"),
        "\ncolumns: {}\n",
        SIGNERS.join(" ")
    );
}

/// The pending world really is pending, and its rotation sits where the
/// activation row says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pending_world_holds_a_rotation_at_the_index_the_table_uses() {
    let tmp = tempfile::tempdir().unwrap();
    let (dep, _) = world(tmp.path(), World::Pending).await;
    let state = dep.state().unwrap().clone();
    let r = state.pending_rotation("p-0").unwrap();
    assert_eq!(r.index, pending_rotation_index());
    assert_eq!(r.ready_at, NOW);
    assert_eq!(state.participant_key_id("p-0"), Some("p-0:1"));
    dep.close();
}
