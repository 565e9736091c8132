//! An entry signed under a key id the registry does not know is checked
//! like one signed under a known key with a wrong signature: verified
//! (against a key nobody holds) and refused as a bad signature, with the
//! same answer, so that neither the answer nor the work done tells which
//! key ids are enrolled (issue 21, item 8). No timing is measured: the
//! error shows that a verification ran.

use consentry_tests::fixture::{self, NOW};
use consentry_tests::net;
use gateway::deployment::{sign_event, SubmitError};
use ledger::EntryError;

/// p-0000 grants a consent; signed by `key_id` with participant 0's key
/// or another's.
fn grant(key_id: &str, key_of: u32) -> ledger::Envelope {
    let e = policy::Event::ConsentGranted(policy::ConsentGranted {
        v: policy::V1,
        consent_id: "c-probe".into(),
        participant: fixture::participant_id(0),
        holders: policy::Parties::agencies(&["hope-clinic"]),
        recipients: policy::Parties::agencies(&["riverside-housing"]),
        categories: vec!["health.sud.treatment".into()],
        purposes: vec!["housing-placement".into()],
        effective_at: NOW,
        expires_at: Some(NOW + 86_400),
        signed_at: NOW,
        language: policy::Language::En,
    });
    sign_event(&e, key_id, &fixture::participant_key(key_of)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_signer_is_verified_and_refused_like_a_wrong_signature() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let enrolled = fixture::participant_key_id(0);
    let unknown = "p-0404:1";
    // A known key id, a signature by another key: verified, refused.
    match net.dep.submit(grant(&enrolled, 1)).await {
        Err(SubmitError::Entry(EntryError::BadSignature(id))) => assert_eq!(id, enrolled),
        other => panic!("a known key id, a wrong signature: {other:?}"),
    }
    // An unknown key id: verified too (against a key nobody holds), and
    // refused the same way, not turned away before any verification.
    match net.dep.submit(grant(unknown, 1)).await {
        Err(SubmitError::Entry(EntryError::BadSignature(id))) => assert_eq!(id, unknown),
        other => panic!("an unknown key id: {other:?}"),
    }
    // Over HTTP the two answers are the same bytes.
    let client = gateway::client::AgencyClient::new(
        &net.public_url,
        &net::agency_key_id("riverside-housing"),
        net::agency_key("riverside-housing"),
    )
    .unwrap();
    let known = client
        .post_entry(grant(&enrolled, 1).to_json())
        .await
        .unwrap();
    let stranger = client
        .post_entry(grant(unknown, 1).to_json())
        .await
        .unwrap();
    assert_eq!(known.status, 401);
    assert_eq!(
        (known.status, known.body.to_vec()),
        (stranger.status, stranger.body.to_vec())
    );
    // And the right key is still accepted.
    assert!(net.dep.submit(grant(&enrolled, 0)).await.is_ok());
    net.stop().await;
}
