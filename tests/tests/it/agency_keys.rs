//! An agency's key rotated by governance: the old key's next request is
//! refused (401) and the new key's allowed, on the same running gateway.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use consentry_tests::fixture::{self, NOW};
use consentry_tests::net::{self, Ask};
use gateway::deployment::sign_event;
use policy::{AgencyKeyRotated, Event, V1};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_rotation_the_old_key_is_refused_and_the_new_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let ask = Ask::new(
        "riverside-housing",
        "hope-clinic",
        "p-0000",
        "housing-placement",
        "health.sud.treatment",
    );
    assert_eq!(
        net::ask(&net, &ask).await.status,
        200,
        "before: the first key works"
    );
    let new = ed25519_dalek::SigningKey::from_bytes(&[33; 32]);
    let rotation = Event::AgencyKeyRotated(AgencyKeyRotated {
        v: V1,
        agency: "riverside-housing".into(),
        key_id: "riverside-housing:2".into(),
        public_key: B64.encode(new.verifying_key().as_bytes()),
        at: NOW,
    });
    net.dep
        .submit(sign_event(&rotation, "governance", &fixture::governance()).unwrap())
        .await
        .unwrap();
    let old = net::send(
        net.addr,
        &net::sign_for(
            &net.public_url,
            &ask,
            &net::agency_key("riverside-housing"),
            net.clock_now(),
        ),
    )
    .await;
    assert_eq!(old.status, 401, "{}", String::from_utf8_lossy(&old.body));
    let with_new = net::send(
        net.addr,
        &net::sign_as(
            &net.public_url,
            &ask,
            &new,
            "riverside-housing:2",
            net.clock_now(),
        ),
    )
    .await;
    assert_eq!(
        with_new.status,
        200,
        "{}",
        String::from_utf8_lossy(&with_new.body)
    );
    // The new key under the old id proves nothing either.
    let mixed = net::send(
        net.addr,
        &net::sign_as(
            &net.public_url,
            &ask,
            &new,
            "riverside-housing:1",
            net.clock_now(),
        ),
    )
    .await;
    assert_eq!(mixed.status, 401);
    net.stop().await;
}
