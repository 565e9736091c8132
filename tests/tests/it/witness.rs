//! Witnesses: independent cosigners that make a split view visible.
//!
//! Two real logs run behind one log identity (origin and key) and one
//! address, as a malicious operator would run them: fork A and fork B
//! share their first entries and then differ, and a front at one address
//! serves whichever fork the operator chooses for whoever asks. Witness 1
//! is shown fork A, witness 2 fork B; then each is shown the other fork,
//! and refuses it. With a policy of 2 of 3 witnesses, no fork's checkpoint
//! reaches the quorum, and both an auditor and a participant's client
//! reject it, saying why.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use consentry_tests::fixture;
use consentry_tests::net;
use gateway::client::AgencyClient;
use gateway::witness::{round, Round, StateFile};
use ledger::{Cosigner, WitnessPolicy};

struct Witness {
    cosigner: Cosigner,
    state: StateFile,
}

impl Witness {
    fn new(i: u8, dir: &std::path::Path) -> Self {
        Self {
            cosigner: Cosigner::new(&net::witness_id(i), net::witness_key(i)).unwrap(),
            state: StateFile::new(&dir.join(format!("witness-{i}.json"))),
        }
    }

    async fn round(&self, at: &net::Net) -> Round {
        self.round_at(at.addr, at.clock_now()).await
    }

    async fn round_at(&self, addr: std::net::SocketAddr, now: i64) -> Round {
        let c = AgencyClient::new(&format!("http://{addr}"), "w:1", net::witness_key(0)).unwrap();
        round(
            &c,
            &fixture::gateway().verifier(),
            &self.cosigner,
            &self.state,
            now as u64,
        )
        .await
        .unwrap()
    }
}

/// One address in front of both forks: the operator picks, per request,
/// which history to show (`which`: 0 for A, 1 for B).
struct Front {
    addr: std::net::SocketAddr,
    which: Arc<AtomicUsize>,
}

async fn front(forks: [std::net::SocketAddr; 2]) -> Front {
    use axum::body::Bytes;
    use axum::http::{Method, StatusCode, Uri};
    use axum::response::IntoResponse;
    let which = Arc::new(AtomicUsize::new(0));
    let chosen = which.clone();
    let app = axum::Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
        let to = forks[chosen.load(Ordering::SeqCst)];
        async move {
            let c =
                AgencyClient::new(&format!("http://{to}"), "front:1", net::witness_key(0)).unwrap();
            let path = uri.path_and_query().map_or("/", |p| p.as_str());
            let r = if method == Method::POST {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                c.post_json(path, &v).await
            } else {
                c.get(path).await
            };
            match r {
                Ok(r) => (
                    StatusCode::from_u16(r.status).unwrap(),
                    [("content-type", r.content_type)],
                    r.body,
                )
                    .into_response(),
                Err(_) => StatusCode::BAD_GATEWAY.into_response(),
            }
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    Front { addr, which }
}

fn policy(quorum: usize) -> WitnessPolicy {
    net::witness_policy(quorum)
}

async fn fork(dir: &std::path::Path, agency: &str) -> net::Net {
    let n = net::start(dir).await;
    for i in 1..=3 {
        net::enrol_witness(&n, i).await;
    }
    // From here on the forks differ.
    let ask = net::Ask::new(
        agency,
        "hope-clinic",
        &fixture::participant_id(0),
        "housing-placement",
        "health.sud.treatment",
    );
    net::ask(&n, &ask).await;
    n.dep.log.publish_checkpoint().unwrap();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_view_is_refused_by_the_witnesses_and_reaches_no_quorum() {
    let tmp = tempfile::tempdir().unwrap();
    let a = fork(&tmp.path().join("a"), "riverside-housing").await;
    let b = fork(&tmp.path().join("b"), "northside-jobs").await;
    assert_eq!(
        a.dep.log.checkpoint().unwrap().lines().next(),
        b.dep.log.checkpoint().unwrap().lines().next(),
        "one log identity"
    );
    let w1 = Witness::new(1, tmp.path());
    let w2 = Witness::new(2, tmp.path());
    // Both witnesses talk to one address; the operator picks the fork.
    let f = front([a.addr, b.addr]).await;
    let now = a.clock_now();
    let show = |fork: usize| f.which.store(fork, Ordering::SeqCst);

    // Each witness sees one fork, and cosigns it.
    let size_a = a.dep.log.size();
    show(0);
    assert_eq!(w1.round_at(f.addr, now).await, Round::Cosigned(size_a));
    show(1);
    assert_eq!(
        w2.round_at(f.addr, now).await,
        Round::Cosigned(b.dep.log.size())
    );
    show(0);
    assert_eq!(
        w1.round_at(f.addr, now).await,
        Round::Unchanged(size_a),
        "nothing new"
    );

    // Each is then shown the other fork, and refuses it.
    show(1);
    assert!(
        matches!(w1.round_at(f.addr, now).await, Round::Refused(why) if why.contains("split view"))
    );
    show(0);
    assert!(
        matches!(w2.round_at(f.addr, now).await, Round::Refused(why) if why.contains("split view"))
    );
    // Fork A grows: the history witness 2 refused is refused again.
    let more = net::Ask::new(
        "riverside-housing",
        "hope-clinic",
        &fixture::participant_id(0),
        "housing-placement",
        "health.sud.treatment",
    );
    net::ask(&a, &more).await;
    a.dep.log.publish_checkpoint().unwrap();
    match w2.round_at(f.addr, now).await {
        Round::Refused(why) => assert!(why.contains("does not extend"), "{why}"),
        other => panic!("cosigned a fork it had not seen: {other:?}"),
    }
    // Witness 1 follows fork A as it grows (a consistency proof checks it).
    assert_eq!(
        w1.round_at(f.addr, now).await,
        Round::Cosigned(a.dep.log.size())
    );

    // 2 of 3: each fork has one cosignature, so neither is accepted.
    let p = policy(2);
    for (name, fork) in [("A", &a), ("B", &b)] {
        let (note, n) = fork.dep.log.checkpoint_with_cosignatures().unwrap();
        assert_eq!(n, 1, "fork {name} carries one cosignature");
        let e = p.check(&note).unwrap_err().to_string();
        assert!(
            e.contains("1 of the witnesses you trust, fewer than the 2 of 3"),
            "{e}"
        );
        assert_eq!(policy(1).check(&note).unwrap().len(), 1);
    }

    // A participant's client rejects the page, and says why.
    let me = {
        let mut c = gateway::participant::client::ParticipantClient::new(
            &format!("http://{}", a.addr),
            &fixture::participant_id(0),
            &fixture::participant_key_id(0),
            fixture::participant_key(0),
        )
        .unwrap();
        c.sign_in().await.unwrap();
        c
    };
    let page = me.get("/v1/me/disclosures").await.unwrap().body;
    let log_key = fixture::gateway().verifier();
    assert!(gateway::participant::client::verify_page(&page, &log_key).is_ok());
    let e = gateway::participant::client::verify_page_witnessed(&page, &log_key, &p)
        .unwrap_err()
        .to_string();
    assert!(e.contains("fewer than the 2 of 3"), "{e}");

    // An auditor too: the bundle of fork A is refused, and trust does not
    // move.
    a.stop().await;
    b.stop().await;
    let mut opened = consentry_tests::fixture::export_bundle(
        &tmp.path().join("a/data"),
        &tmp.path().join("bundle-a"),
    );
    opened.witness_policy = Some(p);
    let state = audit::verify::StateFile::new(&tmp.path().join("auditor.json"));
    let (f, summary) = audit::verify::verify(&opened, Some(&state), 2, |_, _| {}).unwrap();
    assert_eq!(f.len(), 1, "{f:#?}");
    assert!(
        matches!(
            f[0].kind,
            audit::FindingKind::CheckpointNotAccepted(ledger::NoteError::Undercosigned {
                need: 2,
                of: 3,
                ..
            })
        ),
        "{f:#?}"
    );
    assert!(!summary.trusted);
}

/// A witness does not cosign a checkpoint older than the one it cosigned,
/// nor one not signed by the log's key, nor a cosignature from a key that
/// is not an enrolled witness's; it survives the gateway being down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_refuses_rollbacks_and_the_gateway_refuses_strangers() {
    let tmp = tempfile::tempdir().unwrap();
    let a = fork(&tmp.path().join("a"), "riverside-housing").await;
    let w1 = Witness::new(1, tmp.path());
    assert!(matches!(w1.round(&a).await, Round::Cosigned(_)));
    // A rolled-back copy: the state remembers more than the log shows.
    let mut remembered = w1.state.load().unwrap().unwrap();
    remembered.size += 5;
    w1.state.save(&remembered).unwrap();
    match w1.round(&a).await {
        Round::Refused(why) => assert!(why.contains("fewer than"), "{why}"),
        other => panic!("{other:?}"),
    }

    // A stranger's cosignature is refused by the gateway.
    let stranger = Cosigner::new("witness-1", net::auditor_key()).unwrap();
    let note = a.dep.log.checkpoint().unwrap();
    let body = note.split("\n\n").next().unwrap().to_string() + "\n";
    let line = stranger.cosign(&body, 1).line();
    let c = AgencyClient::new(&format!("http://{}", a.addr), "x:1", net::auditor_key()).unwrap();
    let r = c
        .post_json(
            "/v1/log/cosignatures",
            &serde_json::json!({"size": a.dep.log.size(), "cosignature": line}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    let unknown = Cosigner::new("nobody", net::auditor_key()).unwrap();
    let r = c
        .post_json(
            "/v1/log/cosignatures",
            &serde_json::json!({"size": a.dep.log.size(), "cosignature": unknown.cosign(&body, 1).line()}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 403);

    // The gateway down: an error, no cosignature, the state unchanged.
    let before = w1.state.load().unwrap();
    let addr = a.addr;
    a.stop().await;
    let c = AgencyClient::new(&format!("http://{addr}"), "w:1", net::witness_key(1)).unwrap();
    let r = round(
        &c,
        &fixture::gateway().verifier(),
        &w1.cosigner,
        &w1.state,
        1,
    )
    .await;
    assert!(r.is_err());
    assert_eq!(w1.state.load().unwrap(), before);
}
