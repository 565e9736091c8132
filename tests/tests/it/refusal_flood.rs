//! Issue 21, finding 4: unsigned requests must not grow the permanent log
//! one entry each, and a key id a stranger claims is never reported
//! against the organisation that holds it. And a disk below its reserve
//! refuses new work with a clear answer instead of fail-stopping.

use std::sync::Arc;

use consentry_tests::net::{self, Ask};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const REQUESTS: usize = 100_000;
const CONNECTIONS: usize = 8;

/// Sends `n` unsigned requests one after another on one kept-alive
/// connection, claiming riverside-housing's key id; answers how many were
/// refused with 401 (unauthenticated) and with 429 (over the source's
/// rate).
async fn flood(addr: std::net::SocketAddr, n: usize) -> (usize, usize) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let one = format!(
        "GET /v1/records/hope-clinic/p-0000/Observation HTTP/1.1\r\nhost: {addr}\r\n\
         signature-input: sig1=(\"@method\");created=1;keyid=\"riverside-housing:1\"\r\n\
         signature: sig1=:AAAA:\r\n\r\n"
    );
    let (mut unauthenticated, mut limited) = (0, 0);
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    for sent in 0..n {
        s.write_all(one.as_bytes()).await.unwrap();
        // Read one whole answer: its head, then content-length bytes.
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    match head.get(9..12) {
                        Some("401") => unauthenticated += 1,
                        Some("429") => limited += 1,
                        other => panic!("answer {other:?} to request {sent}"),
                    }
                    buf.drain(..end + 4 + len);
                    break;
                }
            }
            let got = s.read(&mut chunk).await.unwrap();
            assert!(got > 0, "the gateway closed the connection after {sent}");
            buf.extend_from_slice(&chunk[..got]);
        }
    }
    (unauthenticated, limited)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_unsigned_requests_add_a_bounded_number_of_entries() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let before = net.dep.log.size();
    let started = std::time::Instant::now();
    let mut floods = Vec::new();
    for _ in 0..CONNECTIONS {
        floods.push(tokio::spawn(flood(net.addr, REQUESTS / CONNECTIONS)));
    }
    let (mut refused, mut limited) = (0, 0);
    for f in floods {
        let (r, l) = f.await.unwrap();
        refused += r;
        limited += l;
    }
    assert_eq!(refused + limited, REQUESTS);
    println!(
        "{REQUESTS} unsigned requests in {:?}: {refused} refused (401), {limited} over the source's rate (429)",
        started.elapsed()
    );
    // Not one entry per request: nothing yet, then one summary per reason.
    assert_eq!(net.dep.log.size(), before);
    let summaries = net.state.agency.flush_refusals().await.unwrap();
    assert_eq!(net.dep.log.size() - before, summaries.len() as u64);
    assert!(summaries.len() <= 2, "{summaries:?}");
    let mut counted = 0;
    for i in &summaries {
        let e = net.entry(*i);
        counted += e["count"].as_u64().unwrap();
        // The key id is recorded as a claim, with its count.
        assert_eq!(e["claimed"][0]["key_id"], "riverside-housing:1", "{e}");
        assert!(e.get("claimed_key_id").is_none());
    }
    assert_eq!(
        counted, refused as u64,
        "every 401 is counted; a 429 is not work"
    );

    // The auditor's report counts them as refused and against no agency.
    net.stop().await;
    let b = consentry_tests::fixture::export_bundle(
        &dir.path().join("data"),
        &dir.path().join("bundle"),
    );
    let r = audit::report::report(&b, false).unwrap();
    assert_eq!(r.refused_unauthenticated, refused as u64);
    let riverside: u64 = r
        .requests
        .iter()
        .filter(|x| x.agency == "riverside-housing")
        .map(|x| x.allowed + x.denied)
        .sum();
    assert_eq!(
        riverside, 0,
        "no request is reported against riverside-housing"
    );
    let text = audit::report::text(&r);
    assert!(!text.contains("riverside-housing:1"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_disk_reserve_new_work_is_refused_and_revocations_still_land() {
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let free = Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX));
    let probe = free.clone();
    net.dep.set_free_space(Arc::new(move || {
        Ok(probe.load(std::sync::atomic::Ordering::SeqCst))
    }));
    net.dep.set_disk_reserve(1 << 30);
    let ask = Ask::new(
        "riverside-housing",
        "hope-clinic",
        "p-0000",
        "housing-placement",
        "health.sud.treatment",
    );
    assert_eq!(net::ask(&net, &ask).await.status, 200);
    free.store(1 << 20, std::sync::atomic::Ordering::SeqCst);
    let size = net.dep.log.size();
    let a = net::ask(&net, &ask).await;
    assert_eq!(a.status, 503, "{}", String::from_utf8_lossy(&a.body));
    assert!(String::from_utf8_lossy(&a.body).contains("reserve"));
    assert_eq!(net.dep.log.size(), size, "nothing appended");
    assert!(net.dep.is_healthy(), "a refusal, not a fail-stop");
    // The person can still revoke.
    let revoke = consentry_tests::fixture::revoke(0, "c-housing").unwrap();
    net.dep.submit(revoke).await.unwrap();
    // Space again: work resumes, and the revocation holds.
    free.store(u64::MAX, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(net::ask(&net, &ask).await.status, 403);
    net.stop().await;
}

/// One request from `source` (a loopback address), answered status.
async fn status_from(source: [u8; 4], addr: std::net::SocketAddr) -> u16 {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(std::net::SocketAddr::from((source, 0)))
        .unwrap();
    let mut s = socket.connect(addr).await.unwrap();
    let req = format!("GET /healthz HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf);
    text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_over_its_rate_is_refused_and_another_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let limits = gateway::server::HttpLimits {
        requests_per_source_per_second: 1,
        requests_per_source_burst: 20,
        ..Default::default()
    };
    let net = net::start_with(dir.path(), limits, std::time::Duration::from_secs(5)).await;
    let mut statuses = Vec::new();
    for _ in 0..40 {
        statuses.push(status_from([127, 0, 0, 1], net.addr).await);
    }
    let limited = statuses.iter().filter(|&&s| s == 429).count();
    assert!(
        limited >= 19 && statuses[..20].iter().all(|&s| s == 200),
        "the burst passes, then 429: {statuses:?}"
    );
    assert_eq!(
        status_from([127, 0, 0, 2], net.addr).await,
        200,
        "another source"
    );
    net.stop().await;
}
