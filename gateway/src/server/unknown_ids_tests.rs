//! The participant's sign-in does the same work for an unknown participant
//! as for an enrolled one: one signature verification, through
//! [`crate::httpsig::verify_or_dummy`] (issue 21, item 8). Counted with
//! [`crate::httpsig::verifications`] on this thread (a current-thread runtime and
//! `oneshot` run the handler here), never timed.

use std::sync::Arc;

use axum::body::Body;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use tower::ServiceExt as _;

use super::{app, AppState, HttpLimits, Settings};
use crate::clock::ManualClock;
use crate::deployment::{sign_event, Deployment};
use crate::httpsig::verifications;

const NOW: i64 = 1_800_000_000;

fn key(b: u8) -> SigningKey {
    SigningKey::from_bytes(&[b; 32])
}

async fn gateway(dir: &std::path::Path) -> AppState {
    let (governance, gw) = (key(1), key(2));
    let trust = policy::Trust {
        governance_key_id: "governance".into(),
        governance_public_key: B64.encode(governance.verifying_key().as_bytes()),
        gateway_key_id: "gateway".into(),
        gateway_public_key: B64.encode(gw.verifying_key().as_bytes()),
        board: Vec::new(),
        quorum: 1,
    };
    let signer = ledger::NoteSigner::new("test.consentry/log", gw.clone()).unwrap();
    let dep = Arc::new(Deployment::open(dir, signer, trust).unwrap());
    let agency = policy::Event::AgencyEnrolled(policy::AgencyEnrolled {
        v: policy::V1,
        agency: "hope-clinic".into(),
        name: "Hope".into(),
        key_id: "hope-clinic:1".into(),
        public_key: B64.encode(key(3).verifying_key().as_bytes()),
        upstream: "http://127.0.0.1:9/fhir".into(),
        upstream_client_certificate: false,
        classes: vec!["clinic".into()],
        roles: vec![policy::Role::Agency],
        at: NOW,
    });
    dep.submit(sign_event(&agency, "governance", &governance).unwrap())
        .await
        .unwrap();
    let person = policy::Event::ParticipantEnrolled(policy::ParticipantEnrolled {
        v: policy::V1,
        participant: "p-0001".into(),
        key_id: "p-0001:1".into(),
        public_key: B64.encode(key(4).verifying_key().as_bytes()),
        at: NOW,
        enrolled_by: "hope-clinic".into(),
    });
    let mut env = sign_event(&person, "p-0001:1", &key(4)).unwrap();
    env.add_signature("hope-clinic:1", &key(3));
    dep.submit(env).await.unwrap();
    AppState::new(
        dep,
        Arc::new(ManualClock::new(NOW)),
        gw,
        Settings::new("http://127.0.0.1:1"),
    )
    .unwrap()
}

async fn post(g: &AppState, path: &str, body: serde_json::Value) -> serde_json::Value {
    let mut req = http::Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let peer: std::net::SocketAddr = "127.0.0.1:40000".parse().unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    let r = app(g.clone(), &HttpLimits::default())
        .oneshot(req)
        .await
        .unwrap();
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    serde_json::from_slice(&bytes).unwrap_or_default()
}

/// Signature checks one sign-in as `participant` with `signer` made.
async fn checks(g: &AppState, participant: &str, signer: &SigningKey) -> (usize, bool) {
    let c = post(
        g,
        "/v1/participant/challenge",
        serde_json::json!({ "participant": participant }),
    )
    .await;
    let sign = c["sign"].as_str().unwrap().to_string();
    let before = verifications();
    let r = post(
        g,
        "/v1/participant/session",
        serde_json::json!({
            "participant": participant,
            "challenge": c["challenge"],
            "signature": B64.encode(signer.sign(sign.as_bytes()).to_bytes()),
        }),
    )
    .await;
    (verifications() - before, r["token"].is_string())
}

#[tokio::test]
async fn an_unknown_participant_costs_a_verification_like_an_enrolled_one() {
    let dir = tempfile::tempdir().unwrap();
    let g = gateway(dir.path()).await;
    assert_eq!(
        checks(&g, "p-0001", &key(4)).await,
        (1, true),
        "enrolled, own key"
    );
    assert_eq!(
        checks(&g, "p-0001", &key(5)).await,
        (1, false),
        "enrolled, wrong key"
    );
    assert_eq!(checks(&g, "p-0404", &key(5)).await, (1, false), "unknown");
}
