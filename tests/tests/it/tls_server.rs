//! The gateway's own TLS: ALPN picks HTTP/2 or HTTP/1.1, HSTS on every
//! answer, a plain-HTTP request on the TLS port told to use https, limits
//! that start before HTTP does (the handshake's time, HTTP/2's streams,
//! header list and resets), and a certificate replaced without a restart
//! or a dropped connection.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use gateway::server::HttpLimits;
use gateway::tls::pki::{DeploymentCa, Host, Usage, Validity, LEAF_DAYS};
use gateway::tls::{Roots, ServerTls, TlsFiles};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) fn real_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The names the tests' deployment CAs are limited to and their server
/// certificates are for.
pub(crate) fn hosts() -> Vec<Host> {
    vec![
        Host::Dns("consentry.test".into()),
        Host::Ip("127.0.0.1".parse().unwrap()),
    ]
}

/// A deployment CA in `dir` (`ca.pem`) and a server certificate from it.
pub(crate) fn pki(dir: &Path) -> (DeploymentCa, PathBuf, TlsFiles) {
    let ca = DeploymentCa::new("test", &hosts(), real_now()).unwrap();
    let ca_file = dir.join("ca.pem");
    ca.write_cert(&ca_file).unwrap();
    let files = TlsFiles {
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
    };
    issue(&ca, &files);
    (ca, ca_file, files)
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

/// A TLS client of the gateway trusting `ca`, offering `alpn`.
async fn connect(
    addr: SocketAddr,
    ca: &Path,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    connect_from("127.0.0.1".parse().unwrap(), addr, ca, alpn).await
}

/// As [`connect`], from the loopback address `source` (Linux routes all
/// of 127.0.0.0/8 to loopback: another peer to the gateway).
async fn connect_from(
    source: std::net::IpAddr,
    addr: SocketAddr,
    ca: &Path,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut config = gateway::tls::client_config(&Roots::File(ca.into()), None).unwrap();
    config.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    let tcp = socket.connect(addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("consentry.test").unwrap(), tcp)
        .await
        .unwrap()
}

fn leaf(
    stream: &tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

/// One HTTP/1.1 GET on an open stream, kept alive; the head and body.
async fn get1<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    path: &str,
) -> String {
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: consentry.test\r\n\r\n").as_bytes())
        .await
        .unwrap();
    read_answer(s).await
}

/// One whole answer (head and a content-length body) from `s`.
async fn read_answer<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // The answers here are small and carry a content-length.
    loop {
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed mid-answer");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= len {
                return text;
            }
        }
    }
}

/// A TLS listener with `limits` serving `/hello`, as the gateway serves.
async fn serve(tls: Arc<ServerTls>, limits: HttpLimits) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let app = axum::Router::new().route("/hello", get(|| async { "hello" }));
    tokio::spawn(async move {
        gateway::server::run_tls(
            l,
            &limits,
            app,
            tls,
            "https://consentry.test",
            std::future::pending(),
        )
        .await
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_speaks_http2_or_http1_by_alpn_with_hsts() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ca, files) = pki(dir.path());
    let tls = ServerTls::load(files).unwrap();
    let net = consentry_tests::net::start_tls(dir.path(), tls, "consentry.test", |_| {}).await;
    assert!(net.public_url.starts_with("https://consentry.test:"));

    let mut s = connect(net.addr, &ca, &[b"http/1.1"]).await;
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let answer = get1(&mut s, "/v1/log/checkpoint").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains(&format!(
            "strict-transport-security: {}",
            gateway::server::HSTS
        )),
        "{answer}"
    );

    // Every cookie is Secure under https, the language cookie too.
    let page = get1(&mut s, "/portal/en/").await;
    let lang = page
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie: consentry_lang=")
        })
        .unwrap_or_else(|| panic!("no language cookie: {page}"));
    assert!(lang.ends_with("; Secure"), "{lang}");

    let s = connect(net.addr, &ca, &[b"h2", b"http/1.1"]).await;
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut h2, conn) = h2::client::handshake(s).await.unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("https://consentry.test/v1/log/checkpoint")
        .body(())
        .unwrap();
    let (answer, _) = h2.send_request(req, true).unwrap();
    let answer = answer.await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.headers()["strict-transport-security"],
        gateway::server::HSTS
    );

    // Plain HTTP on the TLS port: told where to go, nothing served.
    let raw = consentry_tests::net::Raw {
        method: "GET".into(),
        target: "/v1/log/checkpoint".into(),
        headers: vec![],
        body: vec![],
    };
    let plain = consentry_tests::net::send(net.addr, &raw).await;
    assert_eq!(plain.status, 400);
    let body = String::from_utf8_lossy(&plain.body).to_string();
    assert!(body.contains("https-required"), "{body}");
    assert!(body.contains(&net.public_url), "{body}");
    net.stop().await;
}

/// Under https only the `__Host-` session cookie signs anyone in: a plain
/// `consentry_session` could have been planted over plain HTTP before
/// HSTS applied, or by a sibling domain. The one sign-out clears is the
/// one in use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_https_only_the_host_prefixed_session_cookie_counts() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ca, files) = pki(dir.path());
    let tls = ServerTls::load(files).unwrap();
    let net = consentry_tests::net::start_tls(dir.path(), tls, "127.0.0.1", |_| {}).await;
    let mut me = gateway::participant::client::ParticipantClient::with_roots(
        &format!("https://127.0.0.1:{}", net.addr.port()),
        &consentry_tests::fixture::participant_id(0),
        &consentry_tests::fixture::participant_key_id(0),
        consentry_tests::fixture::participant_key(0),
        &Roots::File(ca.clone()),
    )
    .unwrap();
    assert_eq!(me.sign_in().await.unwrap().status, 200);
    let token = me.token().unwrap().to_string();
    let mut s = connect(net.addr, &ca, &[b"http/1.1"]).await;
    for (cookie, want) in [
        (format!("consentry_session={token}"), "HTTP/1.1 401"),
        (format!("__Host-consentry_session={token}"), "HTTP/1.1 200"),
    ] {
        s.write_all(
            format!("GET /v1/me HTTP/1.1\r\nhost: consentry.test\r\ncookie: {cookie}\r\ncontent-length: 0\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
        let answer = read_answer(&mut s).await;
        assert!(answer.starts_with(want), "{cookie}: {answer}");
    }
    net.stop().await;
}

/// Before HTTP starts: a socket that sends nothing, or half a handshake,
/// is closed at the handshake timeout, and others are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_that_does_not_finish_is_closed_at_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ca, files) = pki(dir.path());
    let limits = HttpLimits {
        tls_handshake_timeout: Duration::from_millis(300),
        ..HttpLimits::default()
    };
    let addr = serve(ServerTls::load(files).unwrap(), limits).await;
    for first in [&b""[..], &[0x16, 0x03, 0x01][..]] {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(first).await.unwrap();
        let started = std::time::Instant::now();
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "closed, not answered or held: {read:?}"
        );
        assert!(started.elapsed() >= Duration::from_millis(250));
    }
    let mut ok = connect(addr, &ca, &[b"http/1.1"]).await;
    assert!(get1(&mut ok, "/hello").await.ends_with("hello"));
}

/// A flood of sockets that never start a handshake: one source holds no
/// more than its share of connections, each is closed at the handshake
/// timeout, and a client elsewhere is served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_are_bounded_per_source_and_closed_at_the_handshake_timeout() {
    const FLOOD: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let (_, ca, files) = pki(dir.path());
    let limits = HttpLimits {
        tls_handshake_timeout: Duration::from_secs(1),
        connections_per_address_max: 16,
        ..HttpLimits::default()
    };
    let addr = serve(ServerTls::load(files).unwrap(), limits.clone()).await;
    let mut silent = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        silent.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let other: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    let served = tokio::time::timeout(Duration::from_secs(1), async {
        let mut s = connect_from(other, addr, &ca, &[b"http/1.1"]).await;
        get1(&mut s, "/hello").await
    })
    .await
    .expect("a client elsewhere waited behind the flood");
    assert!(served.ends_with("hello"));
    // Every silent socket is closed: the ones over the share at once,
    // the rest when their handshake time is up.
    let closed = |read: &Result<std::io::Result<usize>, _>| matches!(read, Ok(Ok(0)) | Ok(Err(_)));
    let mut held = Vec::new();
    for mut s in silent {
        let mut buf = [0u8; 16];
        match tokio::time::timeout(Duration::from_millis(10), s.read(&mut buf)).await {
            r if closed(&r) => {}
            Err(_) => held.push(s),
            Ok(r) => panic!("a silent socket was answered: {r:?}"),
        }
    }
    assert!(
        held.len() <= limits.connections_per_address_max,
        "{} silent sockets held at once",
        held.len()
    );
    for mut s in held {
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
        assert!(closed(&read), "a silent socket outlived its handshake time");
    }
}

/// HTTP/2's limits: the server announces its stream cap, a header list
/// over the header limit is refused, and a client that resets streams as
/// fast as it opens them (the rapid-reset flood) loses its connection
/// while the server goes on serving others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_streams_headers_and_resets_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ca, files) = pki(dir.path());
    let limits = HttpLimits::default();
    let addr = serve(ServerTls::load(files).unwrap(), limits.clone()).await;
    let request = || {
        http::Request::get("https://consentry.test/hello")
            .body(())
            .unwrap()
    };

    let s = connect(addr, &ca, &[b"h2"]).await;
    let (mut h2, mut conn) = h2::client::handshake(s).await.unwrap();
    // The server's SETTINGS arrive with its first answer.
    let (answer, _) = h2.send_request(request(), true).unwrap();
    let answer = tokio::select! {
        a = answer => a.unwrap(),
        _ = &mut conn => panic!("the connection ended"),
    };
    assert_eq!(answer.status(), 200);
    assert_eq!(
        conn.max_concurrent_send_streams(),
        limits.http2_streams_max as usize
    );
    tokio::spawn(conn);
    let mut big = request();
    big.headers_mut().insert(
        "x-padding",
        http::HeaderValue::from_str(&"a".repeat(limits.header_bytes_max + 1)).unwrap(),
    );
    let refused = match h2.send_request(big, true) {
        Err(_) => true,
        Ok((answer, _)) => match answer.await {
            Err(_) => true,
            Ok(a) => a.status() == 431,
        },
    };
    assert!(refused, "a header list over the limit was served");

    let s = connect(addr, &ca, &[b"h2"]).await;
    let (flood, conn) = h2::client::handshake(s).await.unwrap();
    let ended = tokio::spawn(conn);
    let mut sent = 0;
    for _ in 0..10_000 {
        let Ok(mut ready) = flood.clone().ready().await else {
            break;
        };
        match ready.send_request(request(), false) {
            Ok((_, mut stream)) => {
                stream.send_reset(h2::Reason::CANCEL);
                sent += 1;
            }
            Err(_) => break,
        }
    }
    let ended = tokio::time::timeout(Duration::from_secs(10), ended).await;
    assert!(ended.is_ok(), "the flooding connection was never closed");
    assert!(sent < 10_000, "all {sent} resets were taken");
    let mut other = connect(addr, &ca, &[b"http/1.1"]).await;
    assert!(get1(&mut other, "/hello").await.ends_with("hello"));
}

/// A flood of slow requests over HTTP/2 from one address (streams whose
/// bodies never end): that source holds no more than its share of turns,
/// the rest are refused at once, and another address is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_cannot_take_every_turn_over_http2() {
    const STREAMS: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let (_, ca, files) = pki(dir.path());
    let limits = HttpLimits {
        requests_in_flight_max: 32,
        requests_in_flight_per_source_max: 8,
        ..HttpLimits::default()
    };
    let tls = ServerTls::load(files).unwrap();
    let net =
        consentry_tests::net::start_tls_with(dir.path(), tls, "consentry.test", limits, |_| {})
            .await;
    let s = connect(net.addr, &ca, &[b"h2"]).await;
    let (h2, conn) = h2::client::handshake(s).await.unwrap();
    tokio::spawn(conn);
    let mut held = Vec::new();
    let mut answers = Vec::new();
    for _ in 0..STREAMS {
        let mut ready = h2.clone().ready().await.unwrap();
        let req = http::Request::post("https://consentry.test/v1/entries")
            .header("content-type", "application/json")
            .body(())
            .unwrap();
        let (answer, mut body) = ready.send_request(req, false).unwrap();
        body.send_data(bytes::Bytes::from_static(b"{"), false)
            .unwrap();
        held.push(body);
        answers.push(answer);
    }
    let mut refused = 0;
    for answer in answers {
        if let Ok(Ok(a)) = tokio::time::timeout(Duration::from_millis(500), answer).await {
            assert_eq!(a.status(), 429);
            refused += 1;
        }
    }
    assert_eq!(
        refused,
        STREAMS - 8,
        "all but the source's share refused at once"
    );
    let other: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    let served = tokio::time::timeout(Duration::from_secs(2), async {
        let mut s = connect_from(other, net.addr, &ca, &[b"http/1.1"]).await;
        get1(&mut s, "/healthz").await
    })
    .await
    .expect("another address waited behind the flood");
    assert!(served.starts_with("HTTP/1.1 200"), "{served}");
    drop(held);
    net.stop().await;
}

/// HTTP/2's header-read timeout: a connection that carries no request
/// is closed after it, however often the client PINGs, while one whose
/// request is open stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_connection_without_a_request_is_closed_though_it_pings() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ca, files) = pki(dir.path());
    let limits = HttpLimits {
        header_read_timeout: Duration::from_millis(400),
        ..HttpLimits::default()
    };
    let addr = serve(ServerTls::load(files).unwrap(), limits).await;
    let s = connect(addr, &ca, &[b"h2"]).await;
    let (mut h2, mut conn) = h2::client::handshake(s).await.unwrap();
    let (answer, _) = h2
        .send_request(
            http::Request::get("https://consentry.test/hello")
                .body(())
                .unwrap(),
            true,
        )
        .unwrap();
    let mut pings = conn.ping_pong().unwrap();
    let started = std::time::Instant::now();
    let served = tokio::spawn(async move {
        let a = answer.await.unwrap();
        let mut body = a.into_body();
        while let Some(chunk) = body.data().await {
            chunk.unwrap();
        }
    });
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::select! {
            _ = &mut conn => {}
            _ = async {
                loop {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if pings.ping(h2::Ping::opaque()).await.is_err() {
                        break;
                    }
                }
            } => {}
        }
    })
    .await;
    served.await.unwrap();
    assert!(
        closed.is_ok(),
        "a pinging connection without a request was held"
    );
    assert!(started.elapsed() >= Duration::from_millis(350));
}

/// A rotation: new files are served to new handshakes within the watch's
/// period, a connection made before goes on with its own, and a pair
/// that does not load leaves the certificate in service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_certificate_is_served_without_a_restart_or_a_dropped_connection() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_key, ca, files) = pki(dir.path());
    let tls = ServerTls::load(files.clone()).unwrap();
    tokio::spawn(tls.clone().watch(Duration::from_millis(50)));
    let addr = serve(tls.clone(), HttpLimits::default()).await;
    let mut before = connect(addr, &ca, &[b"http/1.1"]).await;
    let first = leaf(&before);
    assert!(get1(&mut before, "/hello").await.ends_with("hello"));

    // As certbot and most tools do: new files beside, renamed over.
    let next = TlsFiles {
        cert: dir.path().join("next.crt"),
        key: dir.path().join("next.key"),
    };
    issue(&ca_key, &next);
    std::fs::rename(&next.key, &files.key).unwrap();
    std::fs::rename(&next.cert, &files.cert).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let second = loop {
        let c = connect(addr, &ca, &[b"http/1.1"]).await;
        if leaf(&c) != first {
            break leaf(&c);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        get1(&mut before, "/hello").await.ends_with("hello"),
        "the old connection was dropped"
    );

    // A key that is not the certificate's: refused, the second stays.
    let stray = TlsFiles {
        cert: dir.path().join("stray.crt"),
        key: dir.path().join("stray.key"),
    };
    issue(&ca_key, &stray);
    std::fs::rename(&stray.key, &files.key).unwrap();
    assert!(tls.reload(true).is_err());
    assert_eq!(leaf(&connect(addr, &ca, &[b"http/1.1"]).await), second);
}

#[test]
fn a_key_others_can_read_is_refused_at_load() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (_, _, files) = pki(dir.path());
    std::fs::set_permissions(&files.key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = ServerTls::load(files).unwrap_err().to_string();
    assert!(err.contains("chmod 600"), "{err}");
}
