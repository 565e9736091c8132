//! What an agency's signature binds, over real loopback servers (issue 21,
//! items 7 and 8): the authority in `@target-uri` is the configured one
//! whatever form the request line takes; a captured request is refused
//! after a real restart on the same data directory; the headers a
//! decision is taken on appear once and are well formed, or the request is
//! a 400 logged as refused.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use consentry_tests::fixture::NOW;
use consentry_tests::net::{self, send, sign_for, Ask, Net};
use gateway::httpsig::{self, Component, OwnedMessage, SignatureParams};

fn housing() -> Ask {
    Ask::new(
        "riverside-housing",
        "hope-clinic",
        "p-0000",
        "housing-placement",
        "health.sud.treatment",
    )
}

/// `ask` signed now, for the gateway's configured public URL.
fn signed(net: &Net, ask: &Ask) -> net::Raw {
    sign_for(
        &net.public_url,
        ask,
        &net::agency_key(&ask.agency),
        net.clock_now(),
    )
}

fn body(a: &net::Answer) -> String {
    String::from_utf8_lossy(&a.body).into_owned()
}

/// A 401 with `reason`, answered at once; unauthenticated refusals are
/// logged as summaries (see [`logged_refusals`]), never one per request.
fn refused_401(a: &net::Answer, reason: &str, what: &str) {
    assert_eq!(a.status, 401, "{what}: {}", body(a));
    assert_eq!(a.json()["reason"], reason, "{what}: {}", body(a));
    assert!(a.header("consentry-decision").is_none(), "{what}");
}

/// Flushes the refusal summaries and answers how many requests they count
/// for `reason`.
async fn logged_refusals(net: &Net, reason: &str) -> u64 {
    let mut n = 0;
    for index in net.state.agency.flush_refusals().await.unwrap() {
        let e = net.entry(index);
        assert_eq!(e["type"], "access.refused", "{e}");
        if e["reason"] == reason {
            n += e["count"].as_u64().unwrap_or(1);
        }
    }
    n
}

/// A 400 with the problem type `reason`, logged as `access.refused`
/// attributed to the verified key, and nothing decided.
fn refused_400(net: &Net, a: &net::Answer, reason: &str, what: &str) {
    assert_eq!(a.status, 400, "{what}: {}", body(a));
    assert!(
        a.json()["type"]
            .as_str()
            .unwrap_or_default()
            .ends_with(reason),
        "{what}: {}",
        body(a)
    );
    let (id, index) = a.decision();
    let e = net.entry(index);
    assert_eq!(e["type"], "access.refused", "{what}: {e}");
    assert_eq!(e["reason"], reason, "{what}: {e}");
    assert_eq!(
        e["verified_key_id"],
        net::agency_key_id("riverside-housing"),
        "{what}: {e}"
    );
    assert!(
        net.entries_for("access.decided", &id).is_empty(),
        "{what}: nothing was decided"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absolute_form_target_is_read_against_the_configured_authority() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let key = net::agency_key("riverside-housing");

    // Signed for another gateway, sent in absolute form naming it: the
    // authority a signature binds is the configured one, never the one a
    // request line names.
    let other = "http://other-gateway.example:8700";
    let mut raw = sign_for(other, &housing(), &key, NOW);
    raw.target = format!("{other}{}", housing().target());
    let a = send(net.addr, &raw).await;
    refused_401(&a, "foreign-target-authority", "another authority");

    // Signed for this gateway, sent in absolute form naming another: the
    // signature would verify, the target is still refused.
    let mut raw = signed(&net, &housing());
    raw.target = format!("{other}{}", housing().target());
    let a = send(net.addr, &raw).await;
    refused_401(&a, "foreign-target-authority", "our signature, their name");
    assert_eq!(logged_refusals(&net, "foreign-target-authority").await, 2);

    // The absolute form naming this gateway (as RFC 9112 lets a client
    // send it) is served like the origin form; so is the origin form.
    let mut raw = signed(&net, &housing());
    raw.target = format!("{}{}", net.public_url, housing().target());
    let a = send(net.addr, &raw).await;
    assert_eq!(a.status, 200, "absolute form, our authority: {}", body(&a));
    let a = send(net.addr, &signed(&net, &housing())).await;
    assert_eq!(a.status, 200, "origin form: {}", body(&a));
    net.stop().await;
}

/// An auditor's signed read of the first entry bundle, as raw bytes.
fn auditor_read(net: &Net, now: i64) -> net::Raw {
    let path = "/v1/log/tile/entries/000.p/1";
    let msg = OwnedMessage {
        method: "GET".into(),
        target_uri: format!("{}{path}", net.public_url),
        headers: Vec::new(),
    };
    let mut nonce = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut nonce);
    let params = SignatureParams {
        expires: Some(now + 60),
        nonce: Some(B64.encode(nonce)),
        include_alg: true,
        ..SignatureParams::new(
            vec![Component::Method, Component::TargetUri],
            now,
            net::agency_key_id(net::AUDITOR),
        )
    };
    let (input, sig) = httpsig::sign(&msg.view(&[]), &params, "sig1", &net::auditor_key()).unwrap();
    net::Raw {
        method: "GET".into(),
        target: path.into(),
        headers: vec![("signature-input".into(), input), ("signature".into(), sig)],
        body: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_request_is_refused_after_a_real_restart() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    net::enrol_auditor(&net).await;

    // Captured: an agency's request, answered once; a second time it is
    // a replay.
    let captured = signed(&net, &housing());
    let first = send(net.addr, &captured).await;
    assert_eq!(first.status, 200, "{}", body(&first));
    refused_401(
        &send(net.addr, &captured).await,
        "nonce-replayed",
        "before the restart",
    );
    assert_eq!(logged_refusals(&net, "nonce-replayed").await, 1);
    // And an auditor's read, answered once.
    let read = auditor_read(&net, net.clock_now());
    let a = send(net.addr, &read).await;
    assert_eq!(a.status, 200, "the auditor's read: {}", body(&a));

    // A real restart: the server stops, the deployment closes, the same
    // data directory is opened again (the log replayed, nothing seeded)
    // and a new gateway serves it, a second later on the same clock.
    net.clock.advance(1);
    let size = net.dep.log.size();
    let net = net.restart().await;
    assert!(
        net.dep.log.size() >= size,
        "the restarted gateway has the whole log"
    );

    // The captured bytes, replayed: still refused, logged, precisely.
    let a = send(net.addr, &captured).await;
    refused_401(&a, "nonce-replayed", "after the restart");
    assert_eq!(
        logged_refusals(&net, "nonce-replayed").await,
        1,
        "the replay after the restart is logged"
    );
    // The auditor's read, replayed: its signature may have been accepted
    // by the process before, which logged nothing of it.
    let a = send(net.addr, &read).await;
    assert_eq!(a.status, 401, "the auditor's read replayed: {}", body(&a));
    assert_eq!(a.json()["reason"], "signature-before-start", "{}", body(&a));

    // Fresh requests are served at once: the agency's now, the auditor's
    // once its clock is past the start and the skew.
    let a = send(net.addr, &signed(&net, &housing())).await;
    assert_eq!(a.status, 200, "a fresh request: {}", body(&a));
    net.clock
        .advance(httpsig::VerifyPolicy::auditor().max_skew_secs + 1);
    let a = send(net.addr, &auditor_read(&net, net.clock_now())).await;
    assert_eq!(a.status, 200, "a fresh auditor read: {}", body(&a));
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_decision_headers_are_refused_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    // Signed as both lines joined ("housing-placement, law-enforcement"),
    // it would be decided on the first: refused, whatever the lines say.
    for (header, extra) in [
        ("consentry-purpose", "law-enforcement"),
        ("consentry-categories", "health.mental"),
    ] {
        let mut ask = housing();
        let first = if header == "consentry-purpose" {
            ask.purpose.clone()
        } else {
            ask.categories.clone()
        };
        let joined = format!("{first}, {extra}");
        if header == "consentry-purpose" {
            ask.purpose = joined.clone();
        } else {
            ask.categories = joined.clone();
        }
        // Signed over the joined value, sent as two lines: the signature
        // verifies (RFC 9421 joins a field's lines with ", ").
        let mut raw = signed(&net, &ask);
        let line = raw.headers.iter().position(|(n, _)| n == header).unwrap();
        raw.headers[line].1 = first;
        raw.headers.insert(line + 1, (header.into(), extra.into()));
        let a = send(net.addr, &raw).await;
        refused_400(&net, &a, "repeated-header", header);
    }
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_purpose_or_category_list_is_a_400_logged_as_refused() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let with = |edit: &dyn Fn(&mut Ask)| {
        let mut a = housing();
        edit(&mut a);
        a
    };
    let many: Vec<String> = (0..=gateway::agency::CATEGORIES_MAX)
        .map(|i| format!("health.c{i}"))
        .collect();
    let rows: Vec<(&str, Ask, &str)> = vec![
        (
            "empty purpose",
            with(&|a| a.purpose = String::new()),
            "invalid-purpose",
        ),
        (
            "300-byte purpose",
            with(&|a| a.purpose = "a".repeat(300)),
            "invalid-purpose",
        ),
        (
            "not a code",
            with(&|a| a.purpose = "Housing Placement".into()),
            "invalid-purpose",
        ),
        (
            "a category that is not a code",
            with(&|a| a.categories = "health.sud.treatment, Health!".into()),
            "invalid-category",
        ),
        (
            "a 300-byte category",
            with(&|a| a.categories = "a".repeat(300)),
            "invalid-category",
        ),
        (
            "too many categories",
            with(&|a| a.categories = many.join(",")),
            "too-many-categories",
        ),
    ];
    for (what, ask, reason) in rows {
        let a = send(net.addr, &signed(&net, &ask)).await;
        refused_400(&net, &a, reason, what);
    }
    // The bounds themselves are still decided.
    let at_bound = with(&|a| a.purpose = "a".repeat(policy::limits::CODE_BYTES_MAX));
    let a = send(net.addr, &signed(&net, &at_bound)).await;
    assert_eq!(
        a.status,
        403,
        "a purpose at the bound is decided: {}",
        body(&a)
    );
    assert_eq!(
        send(net.addr, &signed(&net, &housing())).await.status,
        200,
        "the server is still serving"
    );
    net.stop().await;
}
