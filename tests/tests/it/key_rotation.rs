//! A participant's key move end to end: a rotation outside the gateway's
//! clock is refused; an accepted one is shown first in the portal with a
//! way to cancel; the cancellation is the person's own entry, told to
//! them and listed for the board in the audit report.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use consentry_tests::fixture::{self, NOW};
use consentry_tests::net;
use ed25519_dalek::SigningKey;
use gateway::participant::client::ParticipantClient;
use gateway::participant::portal::catalog;
use policy::{Event, Language, ParticipantKeyRotated, ParticipantRotationCancelled, V1};

fn url(net: &net::Net) -> String {
    format!("http://{}", net.addr)
}

fn rotation(at: i64) -> Event {
    Event::ParticipantKeyRotated(ParticipantKeyRotated {
        v: V1,
        participant: fixture::participant_id(0),
        key_id: "p-0000:2".into(),
        public_key: B64.encode(SigningKey::from_bytes(&[31; 32]).verifying_key().as_bytes()),
        at,
        assisted_by: "hope-clinic".into(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_is_shown_first_cancelled_by_the_person_and_listed_for_the_board() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let new = ParticipantClient::new(
        &url(&net),
        &fixture::participant_id(0),
        "p-0000:2",
        SigningKey::from_bytes(&[31; 32]),
    )
    .unwrap();
    let clinic = net::agency_key("hope-clinic");
    // Made an hour before the gateway's clock: its wait would already be
    // running. Refused, with why.
    let r = new
        .submit(&rotation(NOW - 3600), &[("hope-clinic:1", &clinic)])
        .await
        .unwrap();
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["type"], "https://consentry.dev/problems/clock-skew");
    let r = new
        .submit(&rotation(NOW + 60), &[("hope-clinic:1", &clinic)])
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);

    // The person's next visit shows it first, with the way to cancel.
    let mut me = ParticipantClient::new(
        &url(&net),
        &fixture::participant_id(0),
        &fixture::participant_key_id(0),
        fixture::participant_key(0),
    )
    .unwrap();
    assert_eq!(me.sign_in().await.unwrap().status, 200);
    let cookie = format!("consentry_session={}", me.token().unwrap());
    let page = |path: &'static str| {
        let cookie = cookie.clone();
        let addr = net.addr;
        async move {
            let raw = net::Raw {
                method: "GET".into(),
                target: path.into(),
                headers: vec![("cookie".into(), cookie)],
                body: Vec::new(),
            };
            String::from_utf8_lossy(&net::send(addr, &raw).await.body).into_owned()
        }
    };
    let home = page("/portal/en/").await;
    let t = catalog(Language::En);
    let banner = home.find(t.t("rotation_banner_title")).expect("the banner");
    let cards = home.find("id=\"consent-c-housing\"").expect("the cards");
    assert!(banner < cards, "the move is shown before anything else");
    assert!(home.contains("/portal/en/cancel-rotation"));
    let cancel = page("/portal/en/cancel-rotation").await;
    assert!(
        cancel.contains("data-kind=\"participant.rotation_cancelled\""),
        "{cancel}"
    );
    let prepared = Event::ParticipantRotationCancelled(ParticipantRotationCancelled {
        v: V1,
        participant: fixture::participant_id(0),
        key_id: "p-0000:2".into(),
        at: NOW,
    })
    .to_json()
    .unwrap();
    assert!(
        cancel.contains(&B64.encode(&prepared)),
        "the page prepares the cancel of that very key: {cancel}"
    );

    // The person's current key cancels it (the browser would sign the
    // same entry); the pending key cannot.
    let cancel = Event::ParticipantRotationCancelled(ParticipantRotationCancelled {
        v: V1,
        participant: fixture::participant_id(0),
        key_id: "p-0000:2".into(),
        at: NOW + 120,
    });
    assert_eq!(new.submit(&cancel, &[]).await.unwrap().status, 403);
    let r = me.submit(&cancel, &[]).await.unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let home = page("/portal/en/").await;
    assert!(!home.contains(t.t("rotation_banner_title")), "settled");
    let kinds: Vec<String> = (0..net.dep.log.size())
        .map(|i| net.entry(i))
        .filter(|e| e["type"] == "participant.notice")
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        vec!["key-rotation-requested", "key-rotation-cancelled"]
    );

    // The board's report lists it.
    net.stop().await;
    let b = consentry_tests::fixture::export_bundle(
        &dir.path().join("data"),
        &dir.path().join("bundle"),
    );
    let report = audit::report::report(&b, false).unwrap();
    assert_eq!(report.cancelled_key_moves.len(), 1);
    assert_eq!(report.cancelled_key_moves[0].asked_by, "hope clinic");
    assert!(report.cancelled_key_moves[0].participant.is_none());
    let text = audit::report::text(&report);
    assert!(
        text.contains("Key moves cancelled by the person's own key"),
        "{text}"
    );
}
