//! `consentry witness` killed with SIGKILL at random moments, a dozen
//! times, while the log grows: after each restart it goes on from its
//! state file, and everything it cosigned is one history. Then the same
//! witness is shown a fork of that log (a second deployment with the same
//! keys, as a malicious operator would run it): it refuses, loudly, and
//! cosigns nothing there.

use crate::common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

const WITNESS: &str = "witness-1";

fn url_of(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join(gateway::demo::GATEWAY_URL_FILE))
        .unwrap()
        .trim()
        .to_string()
}

/// Enrols the witness at the demo in `dir`, signed with its governance key.
fn enrol(rt: &tokio::runtime::Runtime, dir: &std::path::Path, witness: &ed25519_dalek::SigningKey) {
    let gov = gateway::config::read_key(&dir.join("keys/governance.key")).unwrap();
    let e = policy::Event::AgencyEnrolled(policy::AgencyEnrolled {
        v: policy::V1,
        agency: WITNESS.into(),
        name: "Legal aid clinic".into(),
        key_id: format!("{WITNESS}:1"),
        public_key: B64.encode(witness.verifying_key().as_bytes()),
        upstream: "http://127.0.0.1:9/none".into(),
        upstream_client_certificate: false,
        classes: vec![],
        roles: vec![policy::Role::Witness],
        at: 1_800_000_000,
    });
    let env = gateway::deployment::sign_event(&e, "governance", &gov).unwrap();
    let c = gateway::client::AgencyClient::new(&url_of(dir), "governance", gov).unwrap();
    let r = rt.block_on(c.post_entry(env.to_json())).unwrap();
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
}

fn witness(
    dir: &std::path::Path,
    gateway: &str,
    key: &std::path::Path,
    state: &std::path::Path,
) -> Child {
    Command::new(env!("CARGO_BIN_EXE_consentry"))
        .args([
            "witness",
            "--gateway",
            gateway,
            "--name",
            WITNESS,
            "--interval-ms",
            "20",
        ])
        .arg("--key")
        .arg(key)
        .arg("--vkey")
        .arg(dir.join("keys/log.vkey"))
        .arg("--state")
        .arg(state)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The sizes at which the served checkpoint carries the witness's line.
fn cosigned_size(rt: &tokio::runtime::Runtime, url: &str) -> Option<u64> {
    let c = gateway::client::AgencyClient::new(
        url,
        "x:1",
        ed25519_dalek::SigningKey::from_bytes(&[1; 32]),
    )
    .unwrap();
    let r = rt.block_on(c.get("/v1/log/checkpoint")).unwrap();
    let note = String::from_utf8_lossy(&r.body).into_owned();
    note.contains(&format!("\u{2014} {WITNESS} "))
        .then(|| note.lines().nth(1).unwrap().parse().unwrap())
}

#[test]
fn a_witness_killed_at_random_moments_keeps_one_history_and_refuses_a_fork() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (dir_a, dir_b) = (tmp.path().join("a"), tmp.path().join("b"));
    let (_a, _) = common::demo(&dir_a);
    // Fork B: the same keys, so the same log identity, another history.
    std::fs::create_dir_all(&dir_b).unwrap();
    let copy = Command::new("cp")
        .arg("-r")
        .arg(dir_a.join("keys"))
        .arg(&dir_b)
        .status()
        .unwrap();
    assert!(copy.success());
    let (_b, _) = common::demo(&dir_b);

    let wkey = ed25519_dalek::SigningKey::from_bytes(&[77; 32]);
    let key_file = tmp.path().join("witness.key");
    gateway::config::write_secret(&key_file, &wkey).unwrap();
    enrol(&rt, &dir_a, &wkey);
    enrol(&rt, &dir_b, &wkey);
    let state = tmp.path().join("witness.json");
    let (url_a, url_b) = (url_of(&dir_a), url_of(&dir_b));

    // Traffic on fork A while the witness is killed again and again.
    let agency = gateway::client::AgencyClient::new(
        &url_a,
        "riverside-housing:1",
        gateway::config::read_key(&dir_a.join("keys/riverside-housing.key")).unwrap(),
    )
    .unwrap();
    let ask = gateway::client::Ask {
        holder: "hope-clinic".into(),
        participant: "p-0001".into(),
        path: "Observation".into(),
        purpose: "housing-placement".into(),
        categories: vec!["health.sud.treatment".into()],
    };
    let mut sizes = Vec::new();
    let mut kills = 0;
    let started = Instant::now();
    while kills < 12 {
        let mut w = witness(&dir_a, &url_a, &key_file, &state);
        // Requests for a while; the demo publishes a checkpoint a second.
        let until = Instant::now() + Duration::from_millis(300 + (kills * 97 % 500) as u64);
        while Instant::now() < until {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            rt.block_on(agency.request(&ask, now)).unwrap();
        }
        w.kill().unwrap();
        let status = w.wait().unwrap();
        assert!(status.code().is_none(), "killed, not exited: {status:?}");
        kills += 1;
        if let Ok(text) = std::fs::read(&state) {
            let s: gateway::witness::Cosigned =
                serde_json::from_slice(&text).expect("the state file is whole after every kill");
            sizes.push(s.size);
        }
    }
    assert!(
        sizes.len() >= 8,
        "the witness cosigned between kills: {sizes:?}"
    );
    assert!(
        sizes.windows(2).all(|w| w[0] <= w[1]),
        "never backwards: {sizes:?}"
    );
    // A last round cosigns the head of fork A.
    let mut w = witness(&dir_a, &url_a, &key_file, &state);
    let deadline = Instant::now() + Duration::from_secs(20);
    while cosigned_size(&rt, &url_a).is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    w.kill().unwrap();
    w.wait().unwrap();
    assert!(cosigned_size(&rt, &url_a).is_some(), "fork A is cosigned");
    let _ = started;

    // Shown fork B, it refuses, loudly, and cosigns nothing there.
    let w = witness(&dir_a, &url_b, &key_file, &state);
    let out = w.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a refusal is an exit of 2");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("REFUSED"), "{err}");
    assert_eq!(
        cosigned_size(&rt, &url_b),
        None,
        "nothing cosigned on fork B"
    );
}
