//! The participant's API over real loopback servers: enrol, sign in,
//! grant, see the disclosure with a proof that verifies, revoke, see the
//! denial; isolation between participants; refusals; exports; grievances;
//! and a revoke under load of agency requests.

use std::sync::Arc;
use std::time::Instant;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use consentry_tests::fixture::{self, NOW};
use consentry_tests::net::{self, ask, Ask};
use ed25519_dalek::SigningKey;
use gateway::deployment::sign_event;
use gateway::participant::client::{verify_page, ParticipantClient};
use gateway::participant::new_participant_id;
use policy::{
    ConsentGranted, ConsentRevoked, Event, GrievanceFiled, GrievanceOutcome, GrievanceReason,
    GrievanceResolved, Language, ParticipantEnrolled, ParticipantKeyRotated, Parties, V1,
};

fn random_key() -> SigningKey {
    SigningKey::generate(&mut rand::rngs::OsRng)
}

fn url(net: &net::Net) -> String {
    format!("http://{}", net.addr)
}

/// Enrols a new participant at hope-clinic's intake through the API, with
/// a key made here; returns a client signed in as them.
async fn enrol(net: &net::Net) -> (ParticipantClient, SigningKey) {
    let id = new_participant_id();
    let key = random_key();
    let key_id = format!("{id}:1");
    let mut c = ParticipantClient::new(&url(net), &id, &key_id, key.clone()).unwrap();
    let e = Event::ParticipantEnrolled(ParticipantEnrolled {
        v: V1,
        participant: id.clone(),
        key_id: key_id.clone(),
        public_key: B64.encode(key.verifying_key().as_bytes()),
        at: NOW,
        enrolled_by: "hope-clinic".into(),
    });
    let clinic = net::agency_key("hope-clinic");
    let a = c.submit(&e, &[("hope-clinic:1", &clinic)]).await.unwrap();
    assert_eq!(a.status, 201, "{}", a.body);
    let a = c.sign_in().await.unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
    (c, key)
}

fn grant_event(participant: &str, consent_id: &str, purpose: &str, lang: Language) -> Event {
    Event::ConsentGranted(ConsentGranted {
        v: V1,
        consent_id: consent_id.into(),
        participant: participant.into(),
        holders: Parties::agencies(&["hope-clinic"]),
        recipients: Parties::agencies(&["riverside-housing"]),
        categories: vec!["health.sud.treatment".into()],
        purposes: vec![purpose.into()],
        effective_at: NOW,
        expires_at: Some(NOW + 60 * 86_400),
        signed_at: NOW,
        language: lang,
    })
}

fn revoke_event(participant: &str, consent_id: &str) -> Event {
    Event::ConsentRevoked(ConsentRevoked {
        v: V1,
        consent_id: consent_id.into(),
        participant: participant.into(),
        at: NOW + 60,
        assisted_by: None,
    })
}

fn housing_ask(p: &str) -> Ask {
    Ask::new(
        "riverside-housing",
        "hope-clinic",
        p,
        "housing-placement",
        "health.sud.treatment",
    )
}

fn log_key() -> ledger::NoteVerifier {
    fixture::gateway().verifier()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrol_sign_in_grant_allow_see_it_proven_revoke_deny_see_that_too() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let (me, _) = enrol(&net).await;
    let id = me.participant.clone();

    let a = me
        .submit(
            &grant_event(&id, "c-mine", "housing-placement", Language::Es),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(a.status, 201, "{}", a.body);
    let allowed = ask(&net, &housing_ask(&id)).await;
    assert_eq!(
        allowed.status,
        200,
        "{}",
        String::from_utf8_lossy(&allowed.body)
    );
    let (allowed_id, _) = allowed.decision();

    let page = me.get("/v1/me/disclosures?lang=es").await.unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    let size = verify_page(&page.body, &log_key()).unwrap();
    assert!(size > 0);
    let items = page.body["items"].as_array().unwrap();
    let kinds: Vec<&str> = items.iter().map(|i| i["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["released", "allowed"], "newest first");
    assert_eq!(items[1]["decision_id"], allowed_id.as_str());
    assert!(
        items[1]["text"].as_str().unwrap().contains("permitido"),
        "in Spanish: {}",
        items[1]["text"]
    );

    // Revoke: one request, acknowledged; again: a clear no-op.
    let a = me.submit(&revoke_event(&id, "c-mine"), &[]).await.unwrap();
    assert_eq!(a.status, 201, "{}", a.body);
    let again = me.submit(&revoke_event(&id, "c-mine"), &[]).await.unwrap();
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["status"], "already-revoked");

    let denied = ask(&net, &housing_ask(&id)).await;
    assert_eq!(denied.status, 403);
    let (denied_id, _) = denied.decision();
    let page = me.get("/v1/me/disclosures").await.unwrap();
    verify_page(&page.body, &log_key()).unwrap();
    let newest = &page.body["items"][0];
    assert_eq!(newest["kind"], "denied");
    assert_eq!(newest["decision_id"], denied_id.as_str());
    assert!(
        newest["text"].as_str().unwrap().contains("revoked"),
        "{newest}"
    );

    let consents = me.get("/v1/me/consents").await.unwrap();
    verify_page(&consents.body, &log_key()).unwrap();
    assert_eq!(consents.body["items"][0]["status"], "revoked");

    // A proof that has been tampered with does not verify.
    let mut forged = page.body.clone();
    forged["items"][0]["proof"]["entry"] = B64.encode(b"{\"type\":\"made-up\"}").into();
    assert!(verify_page(&forged, &log_key()).is_err());
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_reads_and_changes_only_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let (a, _) = enrol(&net).await;
    let (b, _) = enrol(&net).await;
    let r = b
        .submit(
            &grant_event(&b.participant, "c-b", "housing-placement", Language::En),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201);

    // B's consent, read by A, is answered as a consent that does not exist.
    for what in ["fhir", "receipt"] {
        let other = a.get(&format!("/v1/me/consents/c-b/{what}")).await.unwrap();
        let none = a
            .get(&format!("/v1/me/consents/c-none/{what}"))
            .await
            .unwrap();
        assert_eq!(other.status, 404);
        assert_eq!((other.status, &other.body), (none.status, &none.body));
    }
    assert_eq!(
        a.get("/v1/me/consents").await.unwrap().body["items"],
        serde_json::json!([])
    );

    // A revoke of B's consent signed by A; of a consent of an unknown id:
    // one answer.
    let other = a
        .submit(&revoke_event(&b.participant, "c-b"), &[])
        .await
        .unwrap();
    let unknown = a
        .submit(&revoke_event(&new_participant_id(), "c-b"), &[])
        .await
        .unwrap();
    assert_eq!(other.status, 403);
    assert_eq!((other.status, &other.body), (unknown.status, &unknown.body));

    // Signing in as B with A's key is refused like signing in as nobody.
    let mut as_b = ParticipantClient::new(&url(&net), &b.participant, "x", random_key()).unwrap();
    let mut as_nobody =
        ParticipantClient::new(&url(&net), &new_participant_id(), "x", random_key()).unwrap();
    let r1 = as_b.sign_in().await.unwrap();
    let r2 = as_nobody.sign_in().await.unwrap();
    assert_eq!(r1.status, 401);
    assert_eq!((r1.status, &r1.body), (r2.status, &r2.body));
    // No session, no reading.
    assert_eq!(as_b.get("/v1/me/consents").await.unwrap().status, 401);
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_replayed_expired_and_rotated_out_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let (mut me, key) = enrol(&net).await;
    let id = me.participant.clone();
    me.submit(
        &grant_event(&id, "c-1", "housing-placement", Language::En),
        &[],
    )
    .await
    .unwrap();

    // A revoke signed by a key that is not the participant's.
    let forger = ParticipantClient::new(&url(&net), &id, me.key_id(), random_key()).unwrap();
    let r = forger.submit(&revoke_event(&id, "c-1"), &[]).await.unwrap();
    assert_eq!(r.status, 401, "{}", r.body);

    // A sign-in challenge used twice.
    let (first, challenge) = me.try_sign_in(&key).await.unwrap();
    assert_eq!(first.status, 200);
    let sig = {
        use ed25519_dalek::Signer;
        let m = gateway::participant::session::signin_message(&url(&net), &id, &challenge);
        B64.encode(key.sign(m.as_bytes()).to_bytes())
    };
    let replay = me
        .post_json(
            "/v1/participant/session",
            &serde_json::json!({"participant": id, "challenge": challenge, "signature": sig}),
        )
        .await
        .unwrap();
    assert_eq!(replay.status, 401);
    assert_eq!(
        replay.body["type"],
        "https://consentry.dev/problems/sign-in-refused"
    );

    // A session past its life.
    assert_eq!(me.get("/v1/me").await.unwrap().status, 200);
    let agencies = me.get("/v1/me/agencies").await.unwrap();
    assert_eq!(agencies.status, 200);
    assert!(
        agencies.body["items"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"agency": "hope-clinic", "name": "hope clinic"})),
        "{}",
        agencies.body
    );
    net.clock.set(NOW + 16 * 60);
    assert_eq!(me.get("/v1/me").await.unwrap().status, 401);
    assert_eq!(me.get("/v1/me/agencies").await.unwrap().status, 401);
    net.clock.set(NOW);

    // Key rotation at the enrolling agency, in person: it waits, the
    // person is told, and only then does the new key sign and the old not.
    let new_key = random_key();
    let rotation = Event::ParticipantKeyRotated(ParticipantKeyRotated {
        v: V1,
        participant: id.clone(),
        key_id: format!("{id}:2"),
        public_key: B64.encode(new_key.verifying_key().as_bytes()),
        at: NOW,
        assisted_by: "hope-clinic".into(),
    });
    let mut rotated = ParticipantClient::new(&url(&net), &id, &format!("{id}:2"), new_key).unwrap();
    // Another agency cannot ask for it.
    let mut elsewhere = rotation.clone();
    if let Event::ParticipantKeyRotated(r) = &mut elsewhere {
        r.assisted_by = "riverside-housing".into();
    }
    let r = rotated
        .submit(
            &elsewhere,
            &[("riverside-housing:1", &net::agency_key("riverside-housing"))],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    let r = rotated
        .submit(
            &rotation,
            &[("hope-clinic:1", &net::agency_key("hope-clinic"))],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    // The old key still signs in, and is told first.
    assert_eq!(me.sign_in().await.unwrap().status, 200);
    let pending = me.get("/v1/me").await.unwrap();
    assert_eq!(
        pending.body["pending_rotation"]["key_id"],
        format!("{id}:2"),
        "{}",
        pending.body
    );
    assert_eq!(
        pending.body["pending_rotation"]["ready_at"],
        NOW + 72 * 3600
    );
    // The notice is on the person's timeline at once.
    let timeline = me.get("/v1/me/disclosures").await.unwrap();
    assert!(
        timeline.body.to_string().contains("key-rotation-requested"),
        "{}",
        timeline.body
    );
    // Nothing happens before the wait is over, on the gateway's clock.
    net.clock.set(NOW + 72 * 3600 - 1);
    assert!(net.dep.activate_due_rotations().await.unwrap().is_empty());
    assert_eq!(rotated.sign_in().await.unwrap().status, 401, "not yet");
    net.clock.set(NOW + 72 * 3600);
    let me_before = me.get("/v1/me").await.unwrap();
    assert_eq!(
        me_before.status, 401,
        "the session outlived its life anyway"
    );
    net.clock.set(NOW + 72 * 3600 - 60);
    assert_eq!(me.sign_in().await.unwrap().status, 200);
    net.clock.set(NOW + 72 * 3600);
    assert_eq!(net.dep.activate_due_rotations().await.unwrap().len(), 1);
    assert_eq!(
        me.get("/v1/me").await.unwrap().status,
        401,
        "the old key's session ended"
    );
    let old = me.submit(&revoke_event(&id, "c-1"), &[]).await.unwrap();
    assert_eq!(old.status, 403, "the rotated-out key: {}", old.body);
    assert_eq!(
        me.sign_in().await.unwrap().status,
        401,
        "nor can it sign in"
    );
    assert_eq!(rotated.sign_in().await.unwrap().status, 200);
    let new = rotated
        .submit(&revoke_event(&id, "c-1"), &[])
        .await
        .unwrap();
    assert_eq!(new.status, 201, "{}", new.body);
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_purpose_is_refused_in_the_participants_language() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let (me, _) = enrol(&net).await;
    let r = me
        .submit(
            &grant_event(
                &me.participant,
                "c-x",
                "criminal-investigation",
                Language::Es,
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 422);
    assert_eq!(r.body["reason"], "purpose-forbidden");
    assert_eq!(r.body["language"], "es");
    assert_eq!(
        r.body["detail"],
        policy::Reason::PurposeForbidden.sentence(Language::Es)
    );
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_consent_exports_as_fhir_r4_and_a_27560_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let (me, _) = enrol(&net).await;
    let id = me.participant.clone();
    for (c, purpose) in [("c-a", "treatment"), ("c-b", "housing-placement")] {
        let r = me
            .submit(&grant_event(&id, c, purpose, Language::En), &[])
            .await
            .unwrap();
        assert_eq!(r.status, 201);
    }
    me.submit(&revoke_event(&id, "c-b"), &[]).await.unwrap();
    for c in ["c-a", "c-b"] {
        let f = me.get(&format!("/v1/me/consents/{c}/fhir")).await.unwrap();
        assert_eq!(f.status, 200);
        check_fhir_consent(&f.body);
        let r = me
            .get(&format!("/v1/me/consents/{c}/receipt"))
            .await
            .unwrap();
        assert_eq!(r.status, 200);
        for field in [
            "schema_version",
            "record_id",
            "pii_principal_id",
            "notice",
            "pii_controllers",
            "purposes",
            "consent_type",
            "collection_method",
            "consent_state",
            "events",
            "withdrawal",
            "record_integrity",
        ] {
            assert!(
                !r.body[field].is_null(),
                "receipt lacks {field}: {}",
                r.body
            );
        }
        let p = &r.body["purposes"][0];
        for field in [
            "purpose_id",
            "purpose",
            "lawful_basis",
            "pii_categories",
            "recipients",
        ] {
            assert!(!p[field].is_null(), "purpose lacks {field}");
        }
    }
    let a = me.get("/v1/me/consents/c-a/fhir").await.unwrap().body;
    let b = me.get("/v1/me/consents/c-b/fhir").await.unwrap().body;
    assert_eq!(a["status"], "active");
    assert_eq!(b["status"], "inactive", "revoked");
    assert_eq!(
        a["provision"]["purpose"][0]["system"],
        "http://terminology.hl7.org/CodeSystem/v3-ActReason"
    );
    assert_eq!(a["provision"]["purpose"][0]["code"], "TREAT");
    let r = me.get("/v1/me/consents/c-b/receipt").await.unwrap().body;
    assert_eq!(r["consent_state"], "withdrawn");
    assert_eq!(r["events"][1]["event_state"], "withdrawn");
    net.stop().await;
}

/// The required elements and code systems of a FHIR R4 Consent.
fn check_fhir_consent(c: &serde_json::Value) {
    assert_eq!(c["resourceType"], "Consent");
    let status = c["status"].as_str().unwrap();
    assert!(
        [
            "draft",
            "proposed",
            "active",
            "rejected",
            "inactive",
            "entered-in-error"
        ]
        .contains(&status),
        "{status}"
    );
    // scope 1..1, category 1..*.
    assert_eq!(
        c["scope"]["coding"][0]["system"],
        "http://terminology.hl7.org/CodeSystem/consentscope"
    );
    assert_eq!(c["scope"]["coding"][0]["code"], "patient-privacy");
    assert_eq!(c["category"][0]["coding"][0]["system"], "http://loinc.org");
    assert_eq!(c["category"][0]["coding"][0]["code"], "59284-0");
    // ppc-1: policy or policyRule.
    assert!(c["policy"].is_array() || c["policyRule"].is_object());
    let dt = c["dateTime"].as_str().unwrap();
    assert_eq!(dt.len(), 20, "{dt}");
    assert!(dt.ends_with('Z') && dt.as_bytes()[10] == b'T');
    assert!(c["patient"]["identifier"]["value"].is_string());
    let p = &c["provision"];
    assert!(["permit", "deny"].contains(&p["type"].as_str().unwrap()));
    assert!(p["period"]["start"].as_str().unwrap() < p["period"]["end"].as_str().unwrap());
    for actor in p["actor"].as_array().unwrap() {
        assert_eq!(
            actor["role"]["coding"][0]["system"],
            "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
        );
        assert!(["CST", "IRCP"].contains(&actor["role"]["coding"][0]["code"].as_str().unwrap()));
        assert!(actor["reference"].is_object());
    }
    for coding in p["purpose"]
        .as_array()
        .unwrap()
        .iter()
        .chain(p["class"].as_array().unwrap())
    {
        assert!(coding["system"].as_str().unwrap().starts_with("http"));
        assert!(coding["code"].is_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grievance_filed_then_resolved_is_visible_to_its_participant() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let (me, _) = enrol(&net).await;
    let id = me.participant.clone();
    let denied = ask(&net, &housing_ask(&id)).await;
    assert_eq!(denied.status, 403);
    let (decision, _) = denied.decision();
    let filed = Event::GrievanceFiled(GrievanceFiled {
        v: V1,
        grievance_id: "g-1".into(),
        participant: id.clone(),
        decision_id: decision.clone(),
        reason: GrievanceReason::WronglyDenied,
        at: NOW,
    });
    assert_eq!(me.submit(&filed, &[]).await.unwrap().status, 201);
    let g = me.get("/v1/me/grievances?lang=es").await.unwrap().body;
    assert_eq!(g["items"][0]["status"], "open");
    assert_eq!(g["items"][0]["decision_id"], decision.as_str());
    let resolved = Event::GrievanceResolved(GrievanceResolved {
        v: V1,
        grievance_id: "g-1".into(),
        outcome: GrievanceOutcome::Upheld,
        at: NOW + 86_400,
    });
    net.dep
        .submit(sign_event(&resolved, "governance", &fixture::governance()).unwrap())
        .await
        .unwrap();
    let g = me.get("/v1/me/grievances?lang=es").await.unwrap().body;
    assert_eq!(g["items"][0]["status"], "resolved");
    assert_eq!(g["items"][0]["outcome"], "upheld");
    assert_eq!(
        g["items"][0]["outcome_text"],
        GrievanceOutcome::Upheld.sentence(Language::Es)
    );
    net.stop().await;
}

/// 50 agency requests in flight when the revoke is acknowledged: every
/// request sent after the acknowledgement is denied, and in the log every
/// allow comes before the revoke and every decision after it is a deny.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_revoke_is_acknowledged_the_very_next_request_is_denied_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let net = Arc::new(net::start(dir.path()).await);
    let (me, _) = enrol(&net).await;
    let id = me.participant.clone();
    me.submit(
        &grant_event(&id, "c-load", "housing-placement", Language::En),
        &[],
    )
    .await
    .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked_at: Arc<std::sync::Mutex<Option<Instant>>> = Default::default();
    let workers: Vec<_> = (0..50)
        .map(|_| {
            let (net, stop, id) = (net.clone(), stop.clone(), id.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Acquire) {
                    let sent = Instant::now();
                    let a = ask(&net, &housing_ask(&id)).await;
                    let (_, index) = a.decision();
                    seen.push((sent, a.status, index));
                }
                seen
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let r = me.submit(&revoke_event(&id, "c-load"), &[]).await.unwrap();
    assert_eq!(r.status, 201);
    let revoke_index = r.body["index"].as_u64().unwrap();
    *acked_at.lock().unwrap() = Some(Instant::now());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Release);
    let acked = acked_at.lock().unwrap().unwrap();
    let (mut before, mut after) = (0, 0);
    for w in workers {
        for (sent, status, index) in w.await.unwrap() {
            if sent > acked {
                assert_eq!(
                    status, 403,
                    "sent after the acknowledgement, at index {index}"
                );
                after += 1;
            }
            if status == 200 {
                assert!(
                    index < revoke_index,
                    "an allow at {index} after the revoke at {revoke_index}"
                );
                before += 1;
            } else {
                assert!(index > revoke_index, "a deny at {index} before the revoke");
            }
        }
    }
    assert!(
        before > 0 && after > 0,
        "load on both sides: {before} before, {after} after"
    );
    match Arc::try_unwrap(net) {
        Ok(net) => net.stop().await,
        Err(_) => panic!("net still shared"),
    }
}
