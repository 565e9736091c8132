//! The demo deployment over a real loopback server: health, the signed
//! checkpoint, proofs that verify against it, and bad queries refused with
//! a reason while the server keeps answering.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ledger::merkle::{leaf_hash, verify_inclusion, Hash};
use ledger::Checkpoint;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8(buf).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_deployment_serves_verifiable_checkpoint_and_proofs() {
    let dir = tempfile::tempdir().unwrap();
    let keys = gateway::demo::keys(dir.path()).unwrap();
    let dep = gateway::deployment::Deployment::open(
        &dir.path().join("data"),
        keys.gateway.clone(),
        gateway::demo::trust(&keys),
    )
    .unwrap();
    gateway::demo::seed(
        &dep,
        dir.path(),
        &keys,
        1_800_000_000,
        &gateway::demo::Upstreams::nowhere(),
    )
    .await
    .unwrap();
    let size = dep.log.size();
    assert_eq!(size, 7, "4 agencies, 2 participants, 1 consent");
    let entry3 = dep.log.entry(3).unwrap().unwrap().entry;
    let dep = Arc::new(dep);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = gateway::server::AppState::new(
        dep.clone(),
        Arc::new(gateway::clock::ManualClock::new(1_800_000_000)),
        keys.gateway.signing_key().clone(),
        gateway::server::Settings::new(format!("http://{addr}")),
    )
    .unwrap();
    let limits = gateway::server::HttpLimits::default();
    let app = gateway::server::app(state, &limits);
    tokio::spawn(async move {
        gateway::server::run(listener, &limits, app, std::future::pending()).await
    });

    let (status, body) = get(addr, "/healthz").await;
    assert_eq!(status, 200, "{body}");

    let (status, note) = get(addr, "/v1/log/checkpoint").await;
    assert_eq!(status, 200);
    let cp = Checkpoint::open(&note, &keys.gateway.verifier()).unwrap();
    assert_eq!(cp.size, size);

    let (status, body) = get(
        addr,
        &format!("/v1/log/proof/inclusion?index=3&size={size}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let proof: Vec<Hash> = v["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| B64.decode(h.as_str().unwrap()).unwrap().try_into().unwrap())
        .collect();
    verify_inclusion(&leaf_hash(&entry3), 3, size, &proof, &cp.root).unwrap();

    for bad in [
        "/v1/log/proof/inclusion?index=99&size=7",
        "/v1/log/proof/inclusion?index=x",
        "/v1/log/proof/consistency?old=9&new=2",
    ] {
        let (status, body) = get(addr, bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.contains("detail"), "{body}");
    }
    // Still serving after bad input.
    assert_eq!(get(addr, "/healthz").await.0, 200);
    // Counts are for the operator's listener, never the public one.
    assert_eq!(get(addr, "/metrics").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_on_reopen_rebuilds_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let keys = gateway::demo::keys(dir.path()).unwrap();
    let (root, consents) = {
        let dep = gateway::deployment::Deployment::open(
            &dir.path().join("data"),
            keys.gateway.clone(),
            gateway::demo::trust(&keys),
        )
        .unwrap();
        gateway::demo::seed(
            &dep,
            dir.path(),
            &keys,
            1_800_000_000,
            &gateway::demo::Upstreams::nowhere(),
        )
        .await
        .unwrap();
        let c = dep.state().unwrap().consent_count();
        let r = dep.log.root();
        dep.close();
        (r, c)
    };
    let dep = gateway::deployment::Deployment::open(
        &dir.path().join("data"),
        keys.gateway.clone(),
        gateway::demo::trust(&keys),
    )
    .unwrap();
    assert_eq!(dep.log.root(), root);
    assert_eq!(dep.state().unwrap().consent_count(), consents);
    // A second seed is a no-op: the log already has the registry.
    assert!(gateway::demo::seed(
        &dep,
        dir.path(),
        &keys,
        1_800_000_001,
        &gateway::demo::Upstreams::nowhere()
    )
    .await
    .unwrap()
    .is_empty());
}
