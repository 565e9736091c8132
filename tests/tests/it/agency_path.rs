//! The agency path end to end, over real loopback servers: the gateway's
//! real `app`, the real sample upstreams (which verify the gateway's
//! signature), requests signed with RFC 9421 by agency keys; the log read
//! back after each step.

use consentry_tests::fixture::{self, NOW};
use consentry_tests::net::{self, ask, send, sign, Ask};
use sha2::{Digest, Sha256};

fn housing_ask(participant: &str, categories: &str) -> Ask {
    Ask::new(
        "riverside-housing",
        "hope-clinic",
        participant,
        "housing-placement",
        categories,
    )
}

fn ids(body: &serde_json::Value) -> Vec<String> {
    body["entry"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["resource"]["id"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_releases_exactly_the_consented_subset_and_logs_its_digest() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let size0 = net.dep.log.size();
    let a = ask(
        &net,
        &housing_ask(
            "p-0000",
            "health.sud.treatment, social.peer-support, health.mental",
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    // Attendance and peer support are consented; medication, the mental
    // health condition and the unlabelled intake notes never leave.
    assert_eq!(ids(&a.json()), vec!["attendance", "peer-support"]);
    assert!(a
        .header("consentry-redisclosure-notice")
        .unwrap()
        .contains("42 CFR part 2"));
    let (id, index) = a.decision();
    let decided = net.entry(index);
    assert_eq!(decided["type"], "access.decided");
    assert_eq!(decided["decision_id"], id.as_str());
    assert_eq!(decided["consents"][0], "c-housing");
    let released = net.entries_for("access.released", &id);
    assert_eq!(released.len(), 1);
    let r = &released[0];
    assert_eq!(
        r["released_sha256"].as_str().unwrap(),
        hex(&Sha256::digest(&a.body)),
        "the log commits to exactly the bytes the agency received"
    );
    assert_eq!(r["released_bytes"], a.body.len() as u64);
    assert_eq!(r["upstream_status"], 200);
    let dropped: Vec<(String, u64)> = r["dropped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["category"].as_str().unwrap().into(),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        dropped,
        vec![
            ("health.mental".into(), 1),
            ("health.sud.medication".into(), 1),
            ("unlabelled".into(), 1)
        ]
    );
    // Exactly two entries for one allowed request.
    assert_eq!(net.dep.log.size(), size0 + 2);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denials_tell_the_agency_only_what_it_may_know() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    // p-0001 is enrolled but gave riverside-housing no consent; p-9999 is
    // not enrolled at all: the agency must not be able to tell them apart.
    let no_consent = ask(&net, &housing_ask("p-0001", "health.sud.treatment")).await;
    let unknown = ask(&net, &housing_ask("p-9999", "health.sud.treatment")).await;
    assert_eq!(no_consent.status, 403);
    assert_eq!(unknown.status, 403);
    assert_eq!(
        no_consent.body, unknown.body,
        "byte-identical bodies for an unknown participant and one with no consent"
    );
    assert_eq!(
        no_consent.header("content-type"),
        Some("application/problem+json")
    );
    // Each is logged with its precise reason.
    let (id1, i1) = no_consent.decision();
    let (id2, i2) = unknown.decision();
    assert_ne!(id1, id2);
    assert_eq!(net.entry(i1)["outcome"], "deny");
    assert_eq!(net.entry(i2)["outcome"], "deny");
    // Nothing was released for a deny.
    assert!(net.entries_for("access.released", &id1).is_empty());

    // A purpose no consent can authorise is denied even with a consent.
    let mut investigation = housing_ask("p-0000", "health.sud.treatment");
    investigation.purpose = "criminal-investigation".into();
    let a = ask(&net, &investigation).await;
    assert_eq!(a.status, 403);
    assert!(
        a.json()["reasons"]
            .to_string()
            .contains("purpose-forbidden"),
        "{}",
        a.json()
    );
    // A category the consent does not cover is denied.
    let a = ask(&net, &housing_ask("p-0000", "health.mental")).await;
    assert_eq!(a.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_then_the_very_next_request_is_denied() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let a = ask(&net, &housing_ask("p-0000", "health.sud.treatment")).await;
    assert_eq!(a.status, 200);
    net.dep
        .submit(fixture::revoke(0, "c-housing").unwrap())
        .await
        .unwrap();
    let a = ask(&net, &housing_ask("p-0000", "health.sud.treatment")).await;
    assert_eq!(a.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_takes_effect_at_the_exact_second() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let expires = NOW + 30 * 86_400;
    net.clock.set(expires - 1);
    let a = ask(&net, &housing_ask("p-0000", "health.sud.treatment")).await;
    assert_eq!(a.status, 200, "one second before expiry");
    net.clock.set(expires);
    let a = ask(&net, &housing_ask("p-0000", "health.sud.treatment")).await;
    assert_eq!(a.status, 403, "at the expiry second");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_is_allowed_flagged_and_noticed() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let er = Ask::new(
        "st-marys-er",
        "hope-clinic",
        "p-0002",
        "medical-emergency",
        "health.sud",
    );
    let a = ask(&net, &er).await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(ids(&a.json()), vec!["attendance", "medication"]);
    let (id, index) = a.decision();
    assert_eq!(net.entry(index)["break_glass"], true);
    let notices = net.entries_for("participant.notice", &id);
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0]["participant"], "p-0002");
    assert_eq!(notices[0]["kind"], "break-glass");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signatures_are_refused_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let key = net::agency_key("riverside-housing");
    let good = sign(
        net.addr,
        &housing_ask("p-0000", "health.sud.treatment"),
        &key,
        NOW,
    );
    assert_eq!(send(net.addr, &good).await.status, 200);

    // Each refusal is answered at once with its reason, and counted; the
    // log gets one summary per reason when the gateway flushes them.
    let size_before = net.dep.log.size();
    let refused = |a: &net::Answer, what: &str| {
        assert_eq!(
            a.status,
            401,
            "{what}: {}",
            String::from_utf8_lossy(&a.body)
        );
        assert!(a.header("consentry-decision").is_none(), "{what}");
        a.json()["reason"].as_str().unwrap().to_string()
    };
    // The same signed request again: a replay.
    let reason = refused(&send(net.addr, &good).await, "replay");
    assert_eq!(reason, "nonce-replayed");
    // Signed too long ago.
    let old = sign(
        net.addr,
        &housing_ask("p-0000", "health.sud.treatment"),
        &key,
        NOW - 3600,
    );
    refused(&send(net.addr, &old).await, "expired");
    // A tampered header, path or body.
    let fresh = || {
        sign(
            net.addr,
            &housing_ask("p-0000", "health.sud.treatment"),
            &key,
            NOW,
        )
    };
    let mut t = fresh();
    t.headers[1].1 = "health.mental".into();
    refused(&send(net.addr, &t).await, "tampered categories");
    let mut t = fresh();
    t.target = t.target.replace("p-0000", "p-0001");
    refused(&send(net.addr, &t).await, "tampered path");
    let mut with_body = housing_ask("p-0000", "health.sud.treatment");
    with_body.body = b"{\"a\":1}".to_vec();
    let mut t = sign(net.addr, &with_body, &key, NOW);
    t.body = b"{\"a\":2}".to_vec();
    refused(&send(net.addr, &t).await, "tampered body");
    // An agency the registry does not know, and a key that is not its own.
    let mut stranger = housing_ask("p-0000", "health.sud.treatment");
    stranger.agency = "nobody".into();
    let a = send(
        net.addr,
        &sign(
            net.addr,
            &stranger,
            &net::agency_key("riverside-housing"),
            NOW,
        ),
    )
    .await;
    refused(&a, "unknown agency");
    let forged = sign(
        net.addr,
        &housing_ask("p-0000", "health.sud.treatment"),
        &net::agency_key("northside-jobs"),
        NOW,
    );
    refused(&send(net.addr, &forged).await, "wrong key");
    // The server is still up and serving.
    assert_eq!(
        send(net.addr, &fresh()).await.status,
        200,
        "a good request after all that"
    );
    // Nothing was logged per refusal; the summaries count all seven.
    let grown = net.dep.log.size() - size_before;
    assert_eq!(
        grown, 2,
        "the last good request's decided and released entries only"
    );
    let summaries = net.state.agency.flush_refusals().await.unwrap();
    let mut total = 0;
    for index in &summaries {
        let e = net.entry(*index);
        assert_eq!(e["type"], "access.refused");
        assert_eq!(e["v"], 2);
        total += e["count"].as_u64().unwrap();
    }
    assert_eq!(total, 7, "{summaries:?}");
    assert!(
        summaries.len() < 7,
        "one summary per reason, not per request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retired_agency_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let retire = policy::Event::AgencyRetired(policy::AgencyRetired {
        v: policy::V1,
        agency: "riverside-housing".into(),
        at: NOW,
    });
    net.dep
        .submit(
            gateway::deployment::sign_event(&retire, "governance", &fixture::governance()).unwrap(),
        )
        .await
        .unwrap();
    let a = ask(&net, &housing_ask("p-0000", "health.sud.treatment")).await;
    assert_eq!(a.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_and_headers_are_refused_and_the_server_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let key = net::agency_key("riverside-housing");
    let mut big = housing_ask("p-0000", "health.sud.treatment");
    big.body = vec![b'x'; 200 * 1024];
    let a = send(net.addr, &sign(net.addr, &big, &key, NOW)).await;
    assert_eq!(a.status, 413);
    assert_eq!(a.header("content-type"), Some("application/problem+json"));
    assert_eq!(a.json()["status"], 413);
    let mut raw = sign(
        net.addr,
        &housing_ask("p-0000", "health.sud.treatment"),
        &key,
        NOW,
    );
    raw.headers
        .push(("x-padding".into(), "y".repeat(20 * 1024)));
    let a = send(net.addr, &raw).await;
    assert_eq!(a.status, 431);
    assert_eq!(a.header("content-type"), Some("application/problem+json"));
    // An unknown route is a problem document too.
    let nowhere = net::Raw {
        method: "GET".into(),
        target: "/v2/nothing".into(),
        headers: Vec::new(),
        body: Vec::new(),
    };
    let a = send(net.addr, &nowhere).await;
    assert_eq!(a.status, 404);
    assert_eq!(a.header("content-type"), Some("application/problem+json"));
    let a = ask(&net, &housing_ask("p-0000", "health.sud.treatment")).await;
    assert_eq!(a.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_down_is_a_502_with_both_entries_logged() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    // northside-jobs runs no record system: its upstream is a closed port.
    let e = policy::Event::ConsentGranted(policy::ConsentGranted {
        v: policy::V1,
        consent_id: "c-jobs".into(),
        participant: fixture::participant_id(1),
        holders: policy::Parties::agencies(&["northside-jobs"]),
        recipients: policy::Parties::agencies(&["riverside-housing"]),
        categories: vec!["social.employment".into()],
        purposes: vec!["housing-placement".into()],
        effective_at: NOW,
        expires_at: Some(NOW + 86_400),
        signed_at: NOW,
        language: policy::Language::En,
    });
    net.dep
        .submit(
            gateway::deployment::sign_event(
                &e,
                &fixture::participant_key_id(1),
                &fixture::participant_key(1),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let mut jobs = housing_ask("p-0001", "social.employment");
    jobs.holder = "northside-jobs".into();
    let a = ask(&net, &jobs).await;
    assert_eq!(a.status, 502, "{}", String::from_utf8_lossy(&a.body));
    let (id, _) = a.decision();
    let decided = net.entries_for("access.decided", &id);
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0]["outcome"], "allow");
    let released = net.entries_for("access.released", &id);
    assert_eq!(released.len(), 1);
    assert_eq!(released[0]["released_sha256"], "");
    assert_eq!(released[0]["problem"], "upstream-unreachable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_requests_are_all_answered_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let net = std::sync::Arc::new(net::start(dir.path()).await);
    let size0 = net.dep.log.size();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let net = net.clone();
            tokio::spawn(async move {
                // Half allowed (two entries each), half denied (one each).
                let p = if i % 2 == 0 { "p-0000" } else { "p-0001" };
                ask(&net, &housing_ask(p, "health.sud.treatment"))
                    .await
                    .status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 100);
    assert_eq!(statuses.iter().filter(|s| **s == 403).count(), 100);
    assert_eq!(net.dep.log.size(), size0 + 100 * 2 + 100);
    // Metrics count what happened, by outcome and reason.
    let m = send(
        net.metrics_addr,
        &net::Raw {
            method: "GET".into(),
            target: "/metrics".into(),
            headers: Vec::new(),
            body: Vec::new(),
        },
    )
    .await;
    let text = String::from_utf8_lossy(&m.body);
    assert!(
        text.contains("consentry_requests_total{outcome=\"allow\",reason=\"\"} 100"),
        "{text}"
    );
    assert!(
        text.contains("consentry_requests_total{outcome=\"deny\",reason=\"no-consent\"} 100"),
        "{text}"
    );
    assert!(text.contains("consentry_releases_total{released=\"true\"} 100"));
    assert!(text.contains("consentry_decision_seconds_count 200"));
    assert!(text.contains("consentry_upstream_seconds_count 100"));
    assert!(text.contains("consentry_log_batch_entries_bucket{le=\"+Inf\"}"));
    // A check from outside must wait while the gateway holds the store.
    assert!(ledger::fsck::open_for_check(&dir.path().join("data")).is_err());
    // Stopped, the whole log verifies with exactly what `consentry fsck`
    // runs: read-only, public keys only, every signature against the
    // registry at its position, every frame and stored hash, the checkpoint.
    let size = net.dep.log.size();
    let Ok(net) = std::sync::Arc::try_unwrap(net) else {
        panic!("every request task has finished")
    };
    net.stop().await;
    let report = audit::fsck_dir(
        &dir.path().join("data"),
        fixture::trust(),
        &fixture::gateway().verifier(),
    )
    .unwrap();
    assert_eq!((report.size, report.checkpoint_size), (size, size));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upstream_is_a_504_with_nothing_released() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start_with(
        dir.path(),
        gateway::server::HttpLimits::default(),
        std::time::Duration::from_millis(300),
    )
    .await;
    // A record system that accepts the connection and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let sign = |e: &policy::Event, id: &str, k: &ed25519_dalek::SigningKey| {
        gateway::deployment::sign_event(e, id, k).unwrap()
    };
    let slow = ed25519_dalek::SigningKey::from_bytes(&[99; 32]);
    let enrol = policy::Event::AgencyEnrolled(policy::AgencyEnrolled {
        v: policy::V1,
        agency: "slow-clinic".into(),
        name: "Slow Clinic".into(),
        key_id: "slow-clinic:1".into(),
        public_key: base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            slow.verifying_key().as_bytes(),
        ),
        upstream: format!("http://{silent_addr}/fhir"),
        upstream_client_certificate: false,
        classes: vec!["clinic".into()],
        roles: vec![policy::Role::Agency],
        at: NOW,
    });
    net.dep
        .submit(sign(&enrol, "governance", &fixture::governance()))
        .await
        .unwrap();
    let grant = policy::Event::ConsentGranted(policy::ConsentGranted {
        v: policy::V1,
        consent_id: "c-slow".into(),
        participant: fixture::participant_id(2),
        holders: policy::Parties::agencies(&["slow-clinic"]),
        recipients: policy::Parties::agencies(&["riverside-housing"]),
        categories: vec!["health.sud.treatment".into()],
        purposes: vec!["housing-placement".into()],
        effective_at: NOW,
        expires_at: Some(NOW + 86_400),
        signed_at: NOW,
        language: policy::Language::En,
    });
    net.dep
        .submit(sign(
            &grant,
            &fixture::participant_key_id(2),
            &fixture::participant_key(2),
        ))
        .await
        .unwrap();
    let mut a = housing_ask("p-0002", "health.sud.treatment");
    a.holder = "slow-clinic".into();
    let answer = ask(&net, &a).await;
    assert_eq!(
        answer.status,
        504,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let (id, _) = answer.decision();
    let released = net.entries_for("access.released", &id);
    assert_eq!(released.len(), 1);
    assert_eq!(released[0]["problem"], "upstream-timeout");
    assert_eq!(released[0]["released_bytes"], 0);
    // The gateway keeps serving.
    let ok = ask(&net, &housing_ask("p-0000", "health.sud.treatment")).await;
    assert_eq!(ok.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_agency_visible_deny_reason() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let retire = policy::Event::AgencyRetired(policy::AgencyRetired {
        v: policy::V1,
        agency: "old-shelter".into(),
        at: NOW,
    });
    net.dep
        .submit(
            gateway::deployment::sign_event(&retire, "governance", &fixture::governance()).unwrap(),
        )
        .await
        .unwrap();
    // p-0003 grants, then revokes: the agency is told only "no-consent";
    // the log keeps the precise reason.
    net.dep
        .submit(net::consent(
            3,
            "c-gone",
            &["health.sud.treatment"],
            NOW + 86_400,
        ))
        .await
        .unwrap();
    net.dep
        .submit(fixture::revoke(3, "c-gone").unwrap())
        .await
        .unwrap();
    let base = || housing_ask("p-0000", "health.sud.treatment");
    let with = |edit: &dyn Fn(&mut Ask)| {
        let mut a = base();
        edit(&mut a);
        a
    };
    let rows: Vec<(&str, Ask, &str, &str)> = vec![
        (
            "unknown holder",
            with(&|a| a.holder = "nobody-clinic".into()),
            "unknown-agency",
            "unknown-agency",
        ),
        (
            "retired holder",
            with(&|a| a.holder = "old-shelter".into()),
            "agency-retired",
            "agency-retired",
        ),
        (
            "unknown purpose",
            with(&|a| a.purpose = "sightseeing".into()),
            "unknown-purpose",
            "unknown-purpose",
        ),
        (
            "forbidden purpose",
            with(&|a| a.purpose = "immigration-enforcement".into()),
            "purpose-forbidden",
            "purpose-forbidden",
        ),
        (
            "unknown category",
            with(&|a| a.categories = "health.dreams".into()),
            "unknown-category",
            "unknown-category",
        ),
        (
            "no category",
            with(&|a| a.categories = " , ".into()),
            "invalid-request",
            "invalid-request",
        ),
        (
            "no consent",
            with(&|a| a.participant = "p-0001".into()),
            "no-consent",
            "no-consent",
        ),
        (
            "revoked consent",
            with(&|a| a.participant = "p-0003".into()),
            "no-consent",
            "consent-revoked",
        ),
    ];
    for (what, a, told, logged) in rows {
        let answer = ask(&net, &a).await;
        assert_eq!(
            answer.status,
            403,
            "{what}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        let reasons: Vec<String> = answer.json()["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect();
        assert_eq!(reasons, vec![told.to_string()], "{what}: the agency's view");
        let (_, index) = answer.decision();
        let entry = net.entry(index);
        assert!(
            entry["reasons"].to_string().contains(logged),
            "{what}: the log keeps {logged}: {entry}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_authority_and_the_gateway_key_are_what_count() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let key = net::agency_key("riverside-housing");
    // Signed for another host: the Host header cannot make it valid here.
    let other: std::net::SocketAddr = "127.0.0.2:8700".parse().unwrap();
    let mut raw = sign(
        other,
        &housing_ask("p-0000", "health.sud.treatment"),
        &key,
        NOW,
    );
    raw.headers.push(("host".into(), other.to_string()));
    let a = send(net.addr, &raw).await;
    assert_eq!(a.status, 401, "{}", String::from_utf8_lossy(&a.body));

    // The sample upstreams refuse anything the gateway did not sign: an
    // unsigned request, and one signed by an agency's key.
    let (_, upstream) = net
        .upstreams
        .iter()
        .find(|(id, _)| id == "hope-clinic")
        .unwrap();
    let unsigned = net::Raw {
        method: "GET".into(),
        target: "/fhir/Observation".into(),
        headers: vec![("consentry-participant".into(), "p-0000".into())],
        body: Vec::new(),
    };
    assert_eq!(send(*upstream, &unsigned).await.status, 401);
    let by_agency = sign(
        *upstream,
        &housing_ask("p-0000", "health.sud.treatment"),
        &key,
        NOW,
    );
    assert_eq!(send(*upstream, &by_agency).await.status, 401);
}
