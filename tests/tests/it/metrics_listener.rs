//! `/metrics` tells nobody who is enrolled: a request for an enrolled
//! person without a consent and one for an id nobody holds leave exactly
//! the same metrics, and the public listener does not serve them at all.

use consentry_tests::net::{self, ask, send, Ask, Net, Raw};

fn get(target: &str) -> Raw {
    Raw {
        method: "GET".into(),
        target: target.into(),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

async fn metrics(net: &Net) -> String {
    let m = send(net.metrics_addr, &get("/metrics")).await;
    assert_eq!(m.status, 200);
    String::from_utf8(m.body).unwrap()
}

/// A fresh gateway, one denied request for `participant`, then its metrics.
async fn metrics_after_one_denial(participant: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let a = ask(
        &net,
        &Ask::new(
            "riverside-housing",
            "hope-clinic",
            participant,
            "housing-placement",
            "health.sud.treatment",
        ),
    )
    .await;
    // The agency is told the same in both cases; so must the metrics be.
    assert_eq!(a.status, 403, "{}", String::from_utf8_lossy(&a.body));
    let text = metrics(&net).await;
    net.stop().await;
    text
}

/// Lines that measure time: the same request takes a different number of
/// microseconds on every run (the decision includes an fdatasync), so
/// sums and buckets of the `_seconds` histograms cannot be compared. Their
/// `_count` lines are compared like every other line.
fn timing(line: &str) -> bool {
    let name = line.split(['{', ' ']).next().unwrap_or_default();
    name.ends_with("_seconds_sum") || name.ends_with("_seconds_bucket")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolled_without_consent_and_unknown_leave_the_same_metrics() {
    // p-0001 is enrolled at hope-clinic with no consent; p-0099 is nobody.
    let enrolled = metrics_after_one_denial("p-0001").await;
    let unknown = metrics_after_one_denial("p-0099").await;
    let kept = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !timing(l))
            .map(str::to_string)
            .collect()
    };
    let (a, b) = (kept(&enrolled), kept(&unknown));
    let differing: Vec<String> = a
        .iter()
        .filter(|l| !b.contains(l))
        .map(|l| format!("enrolled only: {l}"))
        .chain(
            b.iter()
                .filter(|l| !a.contains(l))
                .map(|l| format!("unknown only:  {l}")),
        )
        .collect();
    assert!(
        differing.is_empty(),
        "metrics differ between an enrolled and an unknown participant:\n{}",
        differing.join("\n")
    );
    assert_eq!(a, b, "the same lines, in the same order");
    // The denial is still counted, as the agency was told it.
    assert!(
        a.iter()
            .any(|l| l == "consentry_requests_total{outcome=\"deny\",reason=\"no-consent\"} 1"),
        "{enrolled}"
    );
    assert!(a.iter().any(|l| l == "consentry_decision_seconds_count 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_listener_does_not_serve_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let public = send(net.addr, &get("/metrics")).await;
    assert_eq!(
        public.status,
        404,
        "{}",
        String::from_utf8_lossy(&public.body)
    );
    assert_eq!(send(net.addr, &get("/healthz")).await.status, 200);
    // The operator's listener serves them, and nothing else.
    assert_eq!(send(net.metrics_addr, &get("/metrics")).await.status, 200);
    assert_eq!(send(net.metrics_addr, &get("/healthz")).await.status, 404);
    net.stop().await;
}
