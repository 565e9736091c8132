//! Record systems that misbehave on purpose: whatever they answer, only the
//! decided participant's resources, labelled within the release, leave;
//! and what the gateway asked them for is its own grammar, with the
//! patient set by the gateway.

use consentry_tests::net::{self, Ask};
use serde_json::{json, Value};

/// By resource type: another person's record beside the person's own; a
/// record with a contained resource labelled outside the release; a
/// record with no subject at all.
fn misbehaves(target: &str, participant: &str) -> Value {
    let mine = net::labelled("Observation", "mine", participant, "health.sud.treatment");
    let entries: Vec<Value> = if target.starts_with("/fhir/Observation") {
        let theirs = net::labelled("Observation", "theirs", "p-0002", "health.sud.treatment");
        vec![mine, theirs]
    } else if target.starts_with("/fhir/Condition") {
        let mut r = net::labelled(
            "Condition",
            "with-contained",
            participant,
            "health.sud.treatment",
        );
        r["contained"] = json!([net::labelled(
            "Condition",
            "anxiety",
            participant,
            "health.mental"
        )]);
        vec![r]
    } else {
        let mut r = net::labelled(
            "Procedure",
            "no-subject",
            participant,
            "health.sud.treatment",
        );
        r.as_object_mut().unwrap().remove("subject");
        vec![r]
    };
    let entry: Vec<Value> = entries
        .into_iter()
        .map(|r| json!({"resource": r}))
        .collect();
    json!({"resourceType": "Bundle", "type": "searchset", "entry": entry})
}

fn ids(body: &[u8]) -> Vec<String> {
    let v: Value = serde_json::from_slice(body).unwrap();
    v["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_of_another_person_or_outside_the_release_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let (addr, seen) = net::fake_upstream(misbehaves).await;
    net::holder_with_consent(&net, "harbor-clinic", addr).await;
    let ask = |path: &str| {
        let mut a = Ask::new(
            "riverside-housing",
            "harbor-clinic",
            "p-0000",
            "housing-placement",
            "health.sud.treatment",
        );
        a.path = path.into();
        a
    };
    let cases = [
        (
            "Observation?code=opioid-use",
            vec!["mine"],
            "not-the-participant",
        ),
        ("Condition", vec![], "contained-not-released"),
        ("Procedure", vec![], "not-the-participant"),
    ];
    for (path, kept, dropped) in cases {
        let a = net::ask(&net, &ask(path)).await;
        assert_eq!(
            a.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&a.body)
        );
        assert_eq!(ids(&a.body), kept, "{path}");
        let (decision, _) = a.decision();
        let released = net.entries_for("access.released", &decision);
        assert_eq!(released.len(), 1, "{path}");
        assert_eq!(
            released[0]["dropped"],
            json!([{"category": dropped, "count": 1}]),
            "{path}"
        );
        // The decision records what was forwarded: names in clear, values
        // only as keyed hashes.
        let decided = net.entries_for("access.decided", &decision);
        let fwd = &decided[0]["forwarded"];
        assert_eq!(fwd["resource_type"], path.split('?').next().unwrap());
        assert!(!decided[0].to_string().contains("opioid"), "{}", decided[0]);
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen[0],
        "/fhir/Observation?code=opioid-use&patient%3Aidentifier=https%3A%2F%2Fconsentry.dev%2Fparticipant%7Cp-0000"
    );
    let decided = net.entries_for(
        "access.decided",
        &net::ask(&net, &ask("Observation?code=x"))
            .await
            .decision()
            .0,
    );
    assert_eq!(decided[0]["forwarded"]["params"][0]["name"], "code");
    assert_eq!(
        decided[0]["forwarded"]["params"][0]["value_mac"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    net.stop().await;
}
