//! The security review's findings (issue 21), each reproduced as the
//! review did it, against the real gateway over loopback. Each test failed
//! on the main before its fix (the note on the issue quotes what it
//! printed) and passes after.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use consentry_tests::fixture::NOW;
use consentry_tests::net::{self, Ask};
use ed25519_dalek::SigningKey;
use gateway::participant::client::ParticipantClient;
use policy::{ConsentGranted, Event, Language, ParticipantKeyRotated, Parties, V1};

fn url(net: &net::Net) -> String {
    format!("http://{}", net.addr)
}

/// Finding 1: an organisation enrolled with the `auditor` role only
/// co-signed a rotation of p-0000 (enrolled at hope-clinic) to a key it
/// made, then granted riverside-housing a consent in p-0000's name, and
/// riverside-housing's next request got the records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_organisation_cannot_take_over_a_participants_key() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    net::enrol_auditor(&net).await;
    let thief = SigningKey::from_bytes(&[13; 32]);
    let p = "p-0001";
    {
        // The input the finding needs: the person exists, at hope-clinic.
        let state = net.dep.state().unwrap();
        assert_eq!(state.participant_enrolled_by(p), Some("hope-clinic"));
    }
    let as_p = ParticipantClient::new(&url(&net), p, &format!("{p}:2"), thief.clone()).unwrap();
    let rotation = Event::ParticipantKeyRotated(ParticipantKeyRotated {
        v: V1,
        participant: p.into(),
        key_id: format!("{p}:2"),
        public_key: B64.encode(thief.verifying_key().as_bytes()),
        at: NOW,
        assisted_by: net::AUDITOR.into(),
    });
    let auditor_kid = format!("{}:1", net::AUDITOR);
    let r = as_p
        .submit(&rotation, &[(auditor_kid.as_str(), &net::auditor_key())])
        .await
        .unwrap();
    let grant = Event::ConsentGranted(ConsentGranted {
        v: V1,
        consent_id: "c-stolen".into(),
        participant: p.into(),
        holders: Parties::agencies(&["hope-clinic"]),
        recipients: Parties::agencies(&["riverside-housing"]),
        categories: vec!["health.sud.treatment".into()],
        purposes: vec!["housing-placement".into()],
        effective_at: NOW,
        expires_at: Some(NOW + 86_400),
        signed_at: NOW,
        language: Language::En,
    });
    let g = as_p.submit(&grant, &[]).await.unwrap();
    let ask = Ask::new(
        "riverside-housing",
        "hope-clinic",
        p,
        "housing-placement",
        "health.sud.treatment",
    );
    let answer = net::ask(&net, &ask).await;
    println!(
        "rotation: {} {}\ngrant: {} {}\nagency request: {}",
        r.status, r.body, g.status, g.body, answer.status
    );
    assert_eq!(r.status, 403, "the rotation is refused: {}", r.body);
    assert_ne!(g.status, 201, "no grant in the person's name: {}", g.body);
    assert_eq!(answer.status, 403, "no records leave");
    net.stop().await;
}

/// A record system that does what a real FHIR server would with whatever
/// reaches it: it answers for the `patient` its query names (else the
/// participant the gateway named).
fn honours_any_patient(target: &str, participant: &str) -> serde_json::Value {
    let asked = target
        .split(['?', '&'])
        .find_map(|kv| kv.strip_prefix("patient="))
        .unwrap_or(participant);
    serde_json::json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": net::labelled("Observation", &format!("record-of-{asked}"), asked, "health.sud.treatment")}],
    })
}

/// Finding 2: a request decided for p-0000 with the FHIR path
/// `..%2F..%2Fadmin%2Fexport%3Fpatient%3Dp-0002` reached the upstream as
/// `GET /fhir/../../admin/export?patient=p-0002`, and the gateway released
/// a resource whose subject was p-0002.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forwarded_path_cannot_name_another_person() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let (addr, seen) = net::fake_upstream(honours_any_patient).await;
    net::holder_with_consent(&net, "harbor-clinic", addr).await;
    let mut ask = Ask::new(
        "riverside-housing",
        "harbor-clinic",
        "p-0000",
        "housing-placement",
        "health.sud.treatment",
    );
    // The honest request works, and releases p-0000's record only.
    let honest = net::ask(&net, &ask).await;
    assert_eq!(honest.status, 200);
    ask.path = "..%2F..%2Fadmin%2Fexport%3Fpatient%3Dp-0002".into();
    let answer = net::ask(&net, &ask).await;
    let body = String::from_utf8_lossy(&answer.body).to_string();
    let seen = seen.lock().unwrap().clone();
    println!(
        "status {}\nupstream saw {seen:?}\nbody {body}",
        answer.status
    );
    assert_eq!(
        seen.len(),
        1,
        "only the honest request reached the upstream: {seen:?}"
    );
    assert!(!body.contains("p-0002"), "{body}");
    assert_eq!(answer.status, 400, "{body}");
    net.stop().await;
}

/// Finding 8: records, API answers and portal pages are never cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_api_answers_and_pages_say_no_store() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let ask = Ask::new(
        "riverside-housing",
        "hope-clinic",
        "p-0000",
        "housing-placement",
        "health.sud.treatment",
    );
    let records = net::ask(&net, &ask).await;
    assert_eq!(records.status, 200);
    assert_eq!(records.header("cache-control"), Some("no-store"));
    for path in ["/portal/en/", "/v1/log/checkpoint", "/v1/me"] {
        let raw = net::Raw {
            method: "GET".into(),
            target: path.into(),
            headers: vec![],
            body: vec![],
        };
        let a = net::send(net.addr, &raw).await;
        assert_eq!(a.header("cache-control"), Some("no-store"), "{path}");
    }
    net.stop().await;
}

/// Finding 8: a page elsewhere cannot sign a browser in (login CSRF):
/// sign-in takes only JSON, and only from the gateway's own origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_refuses_text_plain_and_foreign_origins() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let body = br#"{"participant":"p-0000","challenge":"x","signature":"AAAA"}"#.to_vec();
    let post = |content_type: &str, origin: Option<&str>| {
        let mut headers = vec![("content-type".to_string(), content_type.to_string())];
        if let Some(o) = origin {
            headers.push(("origin".into(), o.into()));
        }
        net::Raw {
            method: "POST".into(),
            target: "/v1/participant/session".into(),
            headers,
            body: body.clone(),
        }
    };
    let own = url(&net);
    // 403: refused before anything is read; 401: read, and this made-up
    // signature refused as a sign-in.
    for (ct, origin, want) in [
        ("text/plain", Some("https://evil.example"), 403),
        ("text/plain", None, 403),
        ("application/json", Some("https://evil.example"), 403),
        ("application/json", Some(own.as_str()), 401),
        ("application/json", None, 401),
    ] {
        let a = net::send(net.addr, &post(ct, origin)).await;
        assert_eq!(
            a.status,
            want,
            "{ct} {origin:?}: {}",
            String::from_utf8_lossy(&a.body)
        );
    }
    net.stop().await;
}
