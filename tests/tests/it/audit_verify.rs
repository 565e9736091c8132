//! `consentry audit`: a log made by the gateway's own traffic over real
//! loopback servers verifies clean; every kind of tampering an auditor
//! must catch is caught, named by its index, with a non-zero exit.
//!
//! Raw tampering edits the bundle's files (a flipped byte, a dropped
//! entry, a swapped pair). A malicious operator instead holds every key:
//! they re-sign entries with the real gateway key and the checkpoint with
//! the real log key, so only the meaning can give them away (a decision
//! the rules do not give, a release after a deny or wider than its allow,
//! a history rewritten under a checkpoint the auditor trusted).

use std::path::{Path, PathBuf};

use audit::bundle::{write_bundle, Bundle};
use audit::tiles::{self, TILE_WIDTH};
use audit::verify::{verify, StateFile};
use audit::{Finding, FindingKind};
use consentry_tests::fixture;
use consentry_tests::net;
use ledger::{Checkpoint, Envelope};
use serde_json::{json, Value};

/// Traffic of every kind through the real gateway, then the bundle.
async fn traffic_bundle(out: &Path) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    net::every_kind_of_traffic(&net).await;
    net.stop().await;
    audit::export_dir(
        &dir.path().join("data"),
        &fixture::trust(),
        &fixture::gateway().verifier(),
        out,
        |_| {},
    )
    .unwrap()
}

fn check(bundle: &Path, state: Option<&Path>) -> Vec<Finding> {
    check_from(bundle, state).0
}

/// The findings, and the index the run started from.
fn check_from(bundle: &Path, state: Option<&Path>) -> (Vec<Finding>, u64) {
    let b = Bundle::open(
        bundle,
        Some(fixture::gateway().verifier()),
        Some(fixture::trust()),
    )
    .unwrap();
    let s = state.map(StateFile::new);
    let (findings, summary) = verify(&b, s.as_ref(), 2, |_, _| {}).unwrap();
    assert_eq!(summary.findings, findings.len() as u64);
    assert_eq!(summary.trusted, findings.is_empty() && state.is_some());
    (findings, summary.from)
}

/// Every entry of a bundle, in order.
fn envelopes(bundle: &Path) -> Vec<Envelope> {
    let b = Bundle::open(bundle, None, None).unwrap();
    let mut out = Vec::new();
    for n in 0..b.checkpoint.size.div_ceil(TILE_WIDTH) {
        out.extend(b.read_tile(n).unwrap().envelopes);
    }
    out
}

fn json_of(e: &Envelope) -> Value {
    serde_json::from_slice(&e.entry).unwrap()
}

fn index_of(envs: &[Envelope], pred: impl Fn(&Value) -> bool) -> usize {
    envs.iter()
        .position(|e| pred(&json_of(e)))
        .expect("such an entry")
}

/// The gateway's signature on new bytes: what an operator holding its key
/// can do.
fn resign(v: &Value) -> Envelope {
    Envelope::sign(
        serde_json::to_vec(v).unwrap(),
        &fixture::trust().gateway_key_id,
        fixture::gateway().signing_key(),
    )
}

/// A whole new bundle of `envs`, its checkpoint signed with the real log
/// key.
fn rebuild(envs: &[Envelope], out: &Path) {
    rebuild_under(envs, out, &fixture::trust())
}

/// As [`rebuild`], the bundle naming `trust` as its roots.
fn rebuild_under(envs: &[Envelope], out: &Path, trust: &policy::Trust) {
    let mut tree = tiles::HashTiles::default();
    for e in envs {
        tree.push(&e.entry);
    }
    let cp = Checkpoint {
        origin: fixture::gateway().name().to_string(),
        size: envs.len() as u64,
        root: tree.root(),
    };
    let note = cp.sign(&fixture::gateway()).unwrap();
    write_bundle(
        out,
        envs.len() as u64,
        |a, b| Ok(envs[a as usize..b as usize].to_vec()),
        &note,
        &fixture::gateway().verifier(),
        trust,
        |_| {},
    )
    .unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &p);
        } else {
            std::fs::copy(e.path(), p).unwrap();
        }
    }
}

/// The single partial tile of a small bundle: its entry and signature
/// files.
fn tile_files(bundle: &Path, size: u64) -> (PathBuf, PathBuf) {
    assert!(size < TILE_WIDTH, "the traffic fits one tile");
    (
        bundle.join(tiles::tile_path("tile/entries", 0, size)),
        bundle.join(tiles::tile_path("signatures", 0, size)),
    )
}

fn rewrite_tile(bundle: &Path, size: u64, envs: &[Envelope]) {
    let (e, s) = tile_files(bundle, size);
    std::fs::write(
        e,
        tiles::encode_entries(0, envs.iter().map(|x| x.entry.as_slice())).unwrap(),
    )
    .unwrap();
    std::fs::write(
        s,
        tiles::encode_signatures(envs.iter().map(|x| x.signatures.as_slice())),
    )
    .unwrap();
}

fn names(findings: &[Finding], index: usize, kind: impl Fn(&FindingKind) -> bool) -> bool {
    findings
        .iter()
        .any(|f| f.index == index as u64 && kind(&f.kind))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_own_traffic_verifies_and_every_tampering_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let clean = tmp.path().join("clean");
    let size = traffic_bundle(&clean).await;
    let envs = envelopes(&clean);
    assert_eq!(envs.len() as u64, size);
    let kinds: Vec<String> = envs
        .iter()
        .map(|e| json_of(e)["type"].as_str().unwrap().to_string())
        .collect();
    for kind in [
        "consent.granted",
        "consent.revoked",
        "access.decided",
        "access.released",
        "access.refused",
        "participant.notice",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "the traffic has {kind}");
    }

    // Clean: no finding, and the state file now trusts this checkpoint.
    let state = tmp.path().join("auditor.json");
    assert_eq!(check(&clean, Some(&state)), vec![]);
    assert!(state.exists());

    let decided =
        |v: &Value, outcome: &str| v["type"] == "access.decided" && v["outcome"] == outcome;
    let allow = index_of(&envs, |v| decided(v, "allow") && v["break_glass"] == false);
    let deny = index_of(&envs, |v| decided(v, "deny"));
    let release = index_of(&envs, |v| {
        v["type"] == "access.released" && v["decision_id"] == json_of(&envs[allow])["decision_id"]
    });

    // 1. A flipped byte in an entry.
    let flipped = tmp.path().join("flipped");
    copy_dir(&clean, &flipped);
    let mut e = envs.clone();
    // A digit of its time: still a well-formed entry, so only the
    // signature (and the tree) can tell.
    let at = e[deny]
        .entry
        .windows(5)
        .position(|w| w == b"\"at\":")
        .unwrap()
        + 5;
    e[deny].entry[at] = if e[deny].entry[at] == b'1' {
        b'2'
    } else {
        b'1'
    };
    rewrite_tile(&flipped, size, &e);
    let f = check(&flipped, None);
    assert!(
        names(&f, deny, |k| matches!(k, FindingKind::BadSignature(_))),
        "flipped byte at #{deny}: {f:#?}"
    );

    // 2. A dropped entry.
    let dropped = tmp.path().join("dropped");
    copy_dir(&clean, &dropped);
    let mut e = envs.clone();
    e.remove(allow);
    rewrite_tile(&dropped, size, &e);
    let f = check(&dropped, None);
    assert!(
        names(&f, allow, |k| matches!(k, FindingKind::NotInTree)),
        "dropped #{allow}: {f:#?}"
    );

    // 3. A reordered pair.
    let swapped = tmp.path().join("swapped");
    copy_dir(&clean, &swapped);
    let mut e = envs.clone();
    e.swap(deny, deny + 1);
    rewrite_tile(&swapped, size, &e);
    let f = check(&swapped, None);
    assert!(
        names(&f, deny, |k| matches!(k, FindingKind::NotInTree))
            && names(&f, deny + 1, |k| matches!(k, FindingKind::NotInTree)),
        "swapped #{deny} and #{}: {f:#?}",
        deny + 1
    );

    // 4. A decision the rules do not give, signed with the real gateway key.
    let mut e = envs.clone();
    let mut v = json_of(&e[deny]);
    v["outcome"] = json!("allow");
    v["released"] = v["categories"].clone();
    v["reasons"] = json!([]);
    // Format 2: an allow names its basis, as a careful forger would.
    v["basis"] = json!("consent");
    e[deny] = resign(&v);
    let forged = tmp.path().join("forged");
    rebuild(&e, &forged);
    let f = check(&forged, None);
    assert!(
        names(&f, deny, |k| matches!(
            k,
            FindingKind::DecisionDisagrees { .. }
        )),
        "forged decision #{deny}: {f:#?}"
    );
    assert_eq!(f.len(), 1, "nothing else is wrong: {f:#?}");

    // 5. A release after a deny.
    let mut e = envs.clone();
    let mut v = json_of(&e[release]);
    v["decision_id"] = json_of(&e[deny])["decision_id"].clone();
    e.insert(deny + 1, resign(&v));
    let after_deny = tmp.path().join("after-deny");
    rebuild(&e, &after_deny);
    let f = check(&after_deny, None);
    assert!(
        names(&f, deny + 1, |k| matches!(
            k,
            FindingKind::ReleaseAfterDeny { .. }
        )),
        "#{}: {f:#?}",
        deny + 1
    );

    // 6. A release wider than its allow.
    let mut e = envs.clone();
    let mut v = json_of(&e[release]);
    v["kept"]
        .as_array_mut()
        .unwrap()
        .push(json!({"category": "health.mental", "count": 1}));
    e[release] = resign(&v);
    let wider = tmp.path().join("wider");
    rebuild(&e, &wider);
    let f = check(&wider, None);
    assert!(
        names(&f, release, |k| matches!(
            k,
            FindingKind::ReleaseWider { .. }
        )),
        "#{release}: {f:#?}"
    );
    assert!(
        matches!(&f[0].kind, FindingKind::ReleaseWider { category, .. } if category == "health.mental"),
        "{f:#?}"
    );

    // 7. A history rewritten after the auditor trusted a checkpoint: the
    // operator changes an old entry (re-signed), appends more, and signs
    // a new checkpoint with the real log key.
    let mut e = envs.clone();
    let mut v = json_of(&e[release]);
    v["released_sha256"] = json!("00".repeat(32));
    e[release] = resign(&v);
    e.push(envs[deny].clone());
    let rewritten = tmp.path().join("rewritten");
    rebuild(&e, &rewritten);
    let f = check(&rewritten, Some(&state));
    assert!(
        names(&f, release, |k| matches!(
            k,
            FindingKind::HistoryRewritten { .. }
        )),
        "#{release}: {f:#?}"
    );

    // The honest log, grown by one more refused request: the run resumes
    // after the trusted checkpoint, and is clean.
    let mut e = envs.clone();
    let mut v = json_of(&e[index_of(&envs, |v| v["type"] == "access.refused")]);
    v["decision_id"] = json!("d-0123456789abcdef0123456789abcdef");
    e.push(resign(&v));
    let grown = tmp.path().join("grown");
    rebuild(&e, &grown);
    assert_eq!(check_from(&grown, Some(&state)), (vec![], size));
    // And the rewritten copy is still refused after that.
    let f = check(&rewritten, Some(&state));
    assert!(
        names(&f, release, |k| matches!(
            k,
            FindingKind::HistoryRewritten { .. }
        )),
        "{f:#?}"
    );
}

/// The auditor read API: hash tiles are public; entry bundles and their
/// signatures only for an enrolled auditor's signed request (not an
/// agency's, not a replay). An auditor mirrors the running log with
/// them, verifies it, and after more traffic resumes where it stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auditors_mirror_the_running_log_as_tiles_and_verify_it() {
    use gateway::client::AgencyClient;
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    net::enrol_auditor(&net).await;
    let origin = format!("http://{}", net.addr);
    let housing = net::Ask::new(
        "riverside-housing",
        "hope-clinic",
        &fixture::participant_id(0),
        "housing-placement",
        "health.sud.treatment",
    );
    for _ in 0..2 {
        assert_eq!(net::ask(&net, &housing).await.status, 200);
    }
    let size = net.dep.log.size();
    let entries: Vec<Envelope> = (0..size)
        .map(|i| net.dep.log.entry(i).unwrap().unwrap())
        .collect();

    // Hash tiles: public, and the tree's own.
    let anyone = AgencyClient::new(&origin, "nobody:1", net::auditor_key()).unwrap();
    let mut tree = tiles::HashTiles::default();
    for e in &entries {
        tree.push(&e.entry);
    }
    let level0 = tree.tiles().into_iter().find(|t| t.0 == 0).unwrap();
    let r = anyone
        .get(&format!("/v1/log/{}", tiles::tile_path("tile/0", 0, size)))
        .await
        .unwrap();
    assert_eq!((r.status, r.body.to_vec()), (200, level0.3));
    let r = anyone
        .get(&format!(
            "/v1/log/{}",
            tiles::tile_path("tile/0", 0, size + 1)
        ))
        .await
        .unwrap();
    assert_eq!(r.status, 404, "no tile beyond the tree");

    // Entries: refused unsigned, refused to an agency, served to the auditor.
    let path = format!("/v1/log/{}", tiles::tile_path("tile/entries", 0, size));
    let r = anyone.get(&path).await.unwrap();
    assert_eq!(r.status, 401);
    let agency = AgencyClient::new(
        &origin,
        &net::agency_key_id("riverside-housing"),
        net::agency_key("riverside-housing"),
    )
    .unwrap();
    assert_eq!(
        agency
            .signed_get(&path, net.clock_now())
            .await
            .unwrap()
            .status,
        401
    );
    let auditor = AgencyClient::new(
        &origin,
        &net::agency_key_id(net::AUDITOR),
        net::auditor_key(),
    )
    .unwrap();
    let r = auditor.signed_get(&path, net.clock_now()).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body.to_vec(),
        tiles::encode_entries(0, entries.iter().map(|e| e.entry.as_slice())).unwrap()
    );

    // Mirrored and verified, twice: the second run resumes.
    let mirror = dir.path().join("mirror");
    let state = dir.path().join("auditor.json");
    let mirror_and_check = || async {
        net.dep.log.publish_checkpoint().unwrap();
        gateway::client::mirror_log(
            &auditor,
            &mirror,
            &fixture::trust(),
            &fixture::gateway().verifier(),
            || net.clock_now(),
            |_, _| {},
        )
        .await
        .unwrap();
        check_from(&mirror, Some(&state))
    };
    let (f, from) = mirror_and_check().await;
    assert_eq!((f, from), (vec![], 0));
    let before = net.dep.log.size();
    for _ in 0..3 {
        assert_eq!(net::ask(&net, &housing).await.status, 200);
    }
    let (f, from) = mirror_and_check().await;
    assert_eq!((f, from), (vec![], before));
    net.stop().await;
}

/// The report counts what the traffic did, names agencies, and shows no
/// participant unless asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_counts_the_traffic_and_hides_participants_unless_asked() {
    use audit::report;
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("b");
    traffic_bundle(&bundle).await;
    let b = Bundle::open(&bundle, None, None).unwrap();
    let r = report::report(&b, false).unwrap();
    let row = |agency: &str, purpose: &str| {
        r.requests
            .iter()
            .find(|x| x.agency == agency && x.purpose == purpose)
            .map(|x| (x.allowed, x.denied))
    };
    assert_eq!(row("riverside-housing", "housing-placement"), Some((3, 0)));
    assert_eq!(row("northside-jobs", "employment-support"), Some((1, 2)));
    assert_eq!(row("st-marys-er", "medical-emergency"), Some((1, 0)));
    assert_eq!(r.refused_unauthenticated, 1);
    assert_eq!(r.emergencies.len(), 1);
    assert_eq!(r.emergencies[0].requester, "st marys er");
    let c = &r.consents;
    assert_eq!((c.granted, c.revoked, c.expired, c.active), (2, 1, 0, 1));
    assert_eq!(r.revocations.len(), 1);
    assert_eq!(
        r.revocations[0].seconds,
        Some(30),
        "revoked, then denied 30 s later"
    );

    let json = serde_json::to_string(&r).unwrap();
    for shown in [report::text(&r), report::html(&r), json] {
        assert!(
            !shown.contains("p-000") && !shown.contains("c-jobs"),
            "{shown}"
        );
        assert!(shown.contains("riverside housing"), "agencies are named");
    }
    let with = report::report(&b, true).unwrap();
    assert_eq!(with.emergencies[0].participant.as_deref(), Some("p-0002"));
    assert!(report::text(&with).contains("p-0002"));
}

/// A board of three with quorum two: a governance entry forged with one
/// member's signature (by an operator who holds that member's key and the
/// log's) is named by the auditor at its index, while the same entry with
/// two members' signatures verifies.
#[test]
fn a_governance_entry_signed_by_one_member_of_a_quorum_of_two_is_named() {
    use base64::Engine;
    let b64 = |k: &ed25519_dalek::SigningKey| {
        base64::engine::general_purpose::STANDARD.encode(k.verifying_key().as_bytes())
    };
    let member = ed25519_dalek::SigningKey::from_bytes(&[91; 32]);
    let other = ed25519_dalek::SigningKey::from_bytes(&[92; 32]);
    let trust = policy::Trust {
        board: vec![
            policy::BoardMember {
                key_id: "member-2".into(),
                public_key: b64(&member),
            },
            policy::BoardMember {
                key_id: "member-3".into(),
                public_key: b64(&other),
            },
        ],
        quorum: 2,
        ..fixture::trust()
    };
    let rules = |version: u32| {
        serde_json::to_vec(&policy::Event::GovernanceRules(policy::GovernanceRules {
            v: policy::V1,
            version,
            vocabulary: policy::Vocabulary::default_recovery(),
            rules: policy::Rules::default_recovery(),
            at: fixture::NOW,
        }))
        .unwrap()
    };
    let mut quorate = Envelope::sign(rules(1), "governance", &fixture::governance());
    quorate.add_signature("member-2", &member);
    let forged = Envelope::sign(rules(2), "member-3", &other);
    let tmp = tempfile::tempdir().unwrap();
    let findings = |envs: &[Envelope], name: &str| {
        let out = tmp.path().join(name);
        rebuild_under(envs, &out, &trust);
        let b = Bundle::open(
            &out,
            Some(fixture::gateway().verifier()),
            Some(trust.clone()),
        )
        .unwrap();
        verify(&b, None, 2, |_, _| {}).unwrap().0
    };
    assert!(findings(std::slice::from_ref(&quorate), "clean").is_empty());
    let f = findings(&[quorate, forged], "forged");
    assert!(
        names(&f, 1, |k| matches!(
            k,
            FindingKind::NotApplicable(policy::ApplyError::BelowQuorum {
                quorum: 2,
                members: 1,
                ..
            })
        )),
        "{f:#?}"
    );
}
