//! A certificate rotated while the gateway is under load, as
//! `bench/run.sh --tls` does it: agency requests over kept-alive TLS
//! connections (the load generator's own client, `gateway::bench::run`)
//! and a stream of fresh connections, while new files are renamed over
//! the old ones and `ServerTls::watch` picks them up. No request fails,
//! a handshake gets the old certificate or the new one and nothing else,
//! and afterwards a new connection gets the new one.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use consentry_tests::{fixture, net};
use gateway::client::{AgencyClient, Ask};
use gateway::tls::pki::{DeploymentCa, Host, Usage, Validity, LEAF_DAYS};
use gateway::tls::{Roots, ServerTls, TlsFiles};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The load: open loop, so that it lasts `REQUESTS / RATE` seconds (5)
/// however fast the gateway is, with the rotation well inside it.
const REQUESTS: usize = 1_000;
const RATE: f64 = 200.0;
const CONNECTIONS: usize = 4;

use crate::tls_server::real_now;

/// The gateway is reached at its address, so that the load generator's
/// client needs no name lookup.
fn hosts() -> Vec<Host> {
    vec![Host::Ip("127.0.0.1".parse().unwrap())]
}

fn issue(ca: &DeploymentCa, files: &TlsFiles) {
    ca.issue(
        Usage::Server,
        &hosts(),
        Validity {
            now: real_now(),
            days: LEAF_DAYS,
        },
    )
    .unwrap()
    .write(&files.cert, &files.key)
    .unwrap();
}

fn leaf_of(files: &TlsFiles) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(&files.cert).unwrap()
}

/// One request on a connection of its own: the certificate its handshake
/// got, and the status of `GET /v1/log/checkpoint`.
async fn fresh(addr: SocketAddr, ca: &Path) -> (CertificateDer<'static>, u16) {
    let config = gateway::tls::client_config(&Roots::File(ca.into()), None).unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut s = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .expect("a handshake failed during the rotation");
    let leaf = s.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned();
    s.write_all(b"GET /v1/log/checkpoint HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(2).any(|w| w == b"\r\n") {
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed before its answer");
        head.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&head).to_string();
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (leaf, status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_rotated_under_load_fails_no_request_and_is_served_after() {
    let dir = tempfile::tempdir().unwrap();
    let ca = DeploymentCa::new("rotation", &hosts(), real_now()).unwrap();
    let ca_file: PathBuf = dir.path().join("ca.pem");
    ca.write_cert(&ca_file).unwrap();
    let files = TlsFiles {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
    };
    issue(&ca, &files);
    let first = leaf_of(&files);
    let tls = ServerTls::load(files.clone()).unwrap();
    tokio::spawn(tls.clone().watch(Duration::from_millis(50)));
    let net = net::start_tls(dir.path(), tls.clone(), "127.0.0.1", |_| {}).await;

    let roots = Roots::File(ca_file.clone());
    let agency = AgencyClient::with_roots(
        &net.public_url,
        &net::agency_key_id("riverside-housing"),
        net::agency_key("riverside-housing"),
        &roots,
    )
    .unwrap();
    let ask = Ask {
        holder: "hope-clinic".into(),
        participant: fixture::participant_id(0),
        path: "Observation".into(),
        purpose: "housing-placement".into(),
        categories: vec!["health.sud.treatment".into(), "social.peer-support".into()],
    };
    let ready = gateway::bench::presign_gateway(&agency, &ask, REQUESTS, net.clock_now()).unwrap();
    let load =
        tokio::spawn(
            async move { gateway::bench::run(ready, CONNECTIONS, Some(RATE), &roots).await },
        );
    let (leaf, status) = fresh(net.addr, &ca_file).await;
    assert_eq!((leaf == first, status), (true, 200));

    // As certbot and most tools do: new files beside, renamed over.
    let next = TlsFiles {
        cert: dir.path().join("next.crt"),
        key: dir.path().join("next.key"),
    };
    issue(&ca, &next);
    let second = leaf_of(&next);
    std::fs::rename(&next.key, &files.key).unwrap();
    std::fs::rename(&next.cert, &files.cert).unwrap();

    // Fresh connections until the load ends: each answered, each with the
    // old certificate or the new one, and never the old after the new.
    let (mut old_seen, mut new_seen, mut new_while_loaded) = (0, 0, false);
    while !load.is_finished() {
        let (leaf, status) = fresh(net.addr, &ca_file).await;
        assert_eq!(status, 200, "a fresh connection's request failed");
        if leaf == second {
            new_seen += 1;
            new_while_loaded |= !load.is_finished();
        } else {
            assert_eq!(leaf, first, "a certificate that is neither");
            assert_eq!(new_seen, 0, "the old certificate came back");
            old_seen += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let m = load.await.unwrap().unwrap();
    assert_eq!(
        m.statuses.get(&200).copied(),
        Some(REQUESTS),
        "requests failed across the rotation: {:?}",
        m.statuses
    );
    assert_eq!(m.sent, REQUESTS);
    assert!(
        new_while_loaded,
        "the new certificate was not served while the load ran ({old_seen} old handshakes)"
    );
    let (leaf, status) = fresh(net.addr, &ca_file).await;
    assert_eq!((leaf == second, status), (true, 200));
    assert_eq!(tls.chain()[0], second);
}
