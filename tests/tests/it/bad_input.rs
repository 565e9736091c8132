//! Bad input through the real write path: every refused entry leaves the
//! log, its segment file and the consent state exactly as they were.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use consentry_tests::fixture;
use gateway::deployment::{sign_event, Deployment, SubmitError};
use ledger::Envelope;
use policy::{ConsentGranted, Event, ParticipantEnrolled, V1};

const PARTICIPANTS: u32 = 3;

fn grant_with(p: u32, edit: impl FnOnce(&mut ConsentGranted)) -> Event {
    let Event::ConsentGranted(mut g) =
        policy::parse_event(&fixture::grant(p, "c-x").unwrap().entry).unwrap()
    else {
        unreachable!("fixture::grant builds a grant")
    };
    edit(&mut g);
    Event::ConsentGranted(g)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_entries_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let dep = Deployment::open(&data, fixture::gateway(), fixture::trust()).unwrap();
    fixture::seed(&dep, PARTICIPANTS).await.unwrap();
    dep.submit(fixture::grant(0, "c-first").unwrap())
        .await
        .unwrap();

    let segment = || std::fs::read(data.join(ledger::store::SEGMENT_FILE)).unwrap();
    let dump = |dep: &Deployment| fixture::dump(&dep.state().unwrap(), PARTICIPANTS);
    let (size, bytes, state) = (dep.log.size(), segment(), dump(&dep));

    let p1 = fixture::participant_key(1);
    let p1_id = fixture::participant_key_id(1);
    let mut bad_sig = fixture::grant(1, "c-bad-sig").unwrap();
    bad_sig.signatures[0].signature[7] ^= 1;
    let oversized = Envelope::sign(
        format!(
            r#"{{"type":"consent.granted","v":1,"pad":"{}"}}"#,
            "x".repeat(20_000)
        )
        .into_bytes(),
        &p1_id,
        &p1,
    );
    let not_an_event = Envelope::sign(br#"{"type":"weather","v":1}"#.to_vec(), &p1_id, &p1);
    let not_json = Envelope::sign(b"hello".to_vec(), &p1_id, &p1);
    let unknown_key = Envelope::sign(
        fixture::grant(1, "c-unknown-key").unwrap().entry,
        "nobody:1",
        &p1,
    );
    // In participant 1's name, signed by participant 2.
    let wrong_signer = sign_event(
        &grant_with(1, |g| g.consent_id = "c-wrong-signer".into()),
        &fixture::participant_key_id(2),
        &fixture::participant_key(2),
    )
    .unwrap();
    let forbidden = sign_event(
        &grant_with(1, |g| {
            g.consent_id = "c-forbidden".into();
            g.purposes = vec!["criminal-investigation".into()];
        }),
        &p1_id,
        &p1,
    )
    .unwrap();
    let unknown_category = sign_event(
        &grant_with(1, |g| {
            g.consent_id = "c-unknown-cat".into();
            g.categories = vec!["no.such.category".into()];
        }),
        &p1_id,
        &p1,
    )
    .unwrap();
    let reused_id = fixture::grant(0, "c-first").unwrap();
    let revoke_unknown = fixture::revoke(1, "c-never-granted").unwrap();
    let mut re_enrol = sign_event(
        &Event::ParticipantEnrolled(ParticipantEnrolled {
            v: V1,
            participant: fixture::participant_id(1),
            key_id: "p-0001:2".into(),
            public_key: B64.encode(fixture::participant_key(9).verifying_key().as_bytes()),
            at: fixture::NOW,
            enrolled_by: fixture::AGENCIES[0].into(),
        }),
        "p-0001:2",
        &fixture::participant_key(9),
    )
    .unwrap();
    re_enrol.add_signature("hope-clinic:1", &fixture::agency_key(0));

    let cases: Vec<(&str, Envelope)> = vec![
        ("bad signature", bad_sig),
        ("oversized entry", oversized),
        ("unknown entry type", not_an_event),
        ("entry is not json", not_json),
        ("unknown key id", unknown_key),
        ("signed by someone else", wrong_signer),
        ("forbidden purpose", forbidden),
        ("unknown category", unknown_category),
        ("reused consent id", reused_id),
        ("revoke of an unknown consent", revoke_unknown),
        ("second enrolment of the same id", re_enrol),
    ];
    for (what, env) in cases {
        let err = dep.submit(env).await.expect_err(what);
        assert!(
            !matches!(err, SubmitError::Log(_) | SubmitError::Stopped),
            "{what}: refused for the wrong reason: {err}"
        );
        assert!(!err.to_string().is_empty());
        assert_eq!(dep.log.size(), size, "{what}: the log grew");
        assert_eq!(dump(&dep), state, "{what}: the state changed");
    }
    assert!(dep.is_healthy(), "refusals do not stop the deployment");
    assert_eq!(segment(), bytes, "the segment is byte for byte unchanged");
    // A good entry still goes through after all that.
    let idx = dep
        .submit(fixture::grant(1, "c-after").unwrap())
        .await
        .unwrap();
    assert_eq!(idx, size);
    dep.close();
}
