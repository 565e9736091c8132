//! Idle connections cannot take the gateway down: sockets opened and left
//! silent neither hold every connection slot nor stop anyone else.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use consentry_tests::net;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const IDLE_SOCKETS: usize = 2048;
/// A second loopback source address: Linux routes all of 127.0.0.0/8 to
/// the loopback interface, so a client socket bound here is another peer
/// address to the gateway, and nothing leaves the machine.
const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

async fn connect_from(source: IpAddr, to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::new(source, 0)).unwrap();
    s.connect(to).await.unwrap()
}

/// `GET /healthz` from `source` on a fresh connection: the status line.
async fn healthz_from(source: IpAddr, to: SocketAddr) -> String {
    let mut s = connect_from(source, to).await;
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: gateway\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The test holds both ends of every socket: raise the soft limit on open
/// files to what it needs, within the hard limit.
fn enough_files() {
    let want = (2 * IDLE_SOCKETS + 256) as u64;
    let got = rlimit::increase_nofile_limit(want).unwrap();
    assert!(
        got >= want,
        "this test needs {want} open files; the hard limit allows {got}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_within_a_second_with_2048_idle_sockets_open() {
    enough_files();
    let dir = tempfile::tempdir().unwrap();
    let net = net::start(dir.path()).await;
    let mut idle = Vec::with_capacity(IDLE_SOCKETS);
    for _ in 0..IDLE_SOCKETS {
        idle.push(TcpStream::connect(net.addr).await.unwrap());
    }
    let answered = tokio::time::timeout(Duration::from_secs(1), healthz_from(OTHER, net.addr))
        .await
        .unwrap_or_else(|_| {
            panic!("/healthz unanswered after 1 s with {IDLE_SOCKETS} idle sockets open")
        });
    assert_eq!(answered, "HTTP/1.1 200 OK");
    drop(idle);
    net.stop().await;
}

/// Reads until the gateway closes `s`; what it sent before. The timeout
/// only bounds a failing test.
async fn until_closed(s: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    match tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await {
        Ok(_) => buf,
        Err(_) => panic!(
            "still open after 10 s; it had sent {:?}",
            String::from_utf8_lossy(&buf)
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_without_a_whole_request_head_is_closed_after_the_header_read_timeout() {
    let limit = Duration::from_millis(300);
    let dir = tempfile::tempdir().unwrap();
    let limits = gateway::server::HttpLimits {
        header_read_timeout: limit,
        ..Default::default()
    };
    let net = net::start_with(dir.path(), limits, Duration::from_secs(5)).await;
    let started = tokio::time::Instant::now();
    // Nothing sent; half a head, as a slow client sends it; and a
    // kept-alive connection after its first answer.
    let mut silent = TcpStream::connect(net.addr).await.unwrap();
    let mut half = TcpStream::connect(net.addr).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nhost: gateway\r\n")
        .await
        .unwrap();
    let mut kept = TcpStream::connect(net.addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nhost: gateway\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(until_closed(&mut silent).await, b"");
    assert_eq!(
        until_closed(&mut half).await,
        b"",
        "closed without an answer"
    );
    let answered = String::from_utf8(until_closed(&mut kept).await).unwrap();
    assert!(answered.starts_with("HTTP/1.1 200 OK"), "{answered}");
    assert_eq!(answered.matches("HTTP/1.1").count(), 1);
    // Each was closed by the timeout, not before it.
    assert!(started.elapsed() >= limit, "{:?}", started.elapsed());
    // And the gateway still serves.
    assert_eq!(healthz_from(OTHER, net.addr).await, "HTTP/1.1 200 OK");
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_at_its_connection_limit_does_not_stop_another() {
    const PER_ADDRESS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let limits = gateway::server::HttpLimits {
        connections_per_address_max: PER_ADDRESS,
        ..Default::default()
    };
    let net = net::start_with(dir.path(), limits, Duration::from_secs(5)).await;
    let here = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut held = Vec::new();
    for _ in 0..PER_ADDRESS {
        held.push(connect_from(here, net.addr).await);
    }
    // One more from the same address is closed unanswered: the kernel
    // queued it after the held ones, so the gateway has taken those.
    let mut over = connect_from(here, net.addr).await;
    let _ = over
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: gateway\r\nconnection: close\r\n\r\n")
        .await;
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), over.read_to_end(&mut got))
        .await
        .expect("closed by the gateway");
    assert_eq!(
        String::from_utf8_lossy(&got),
        "",
        "over the limit: no answer"
    );
    // Another address is served as if nothing happened.
    assert_eq!(healthz_from(OTHER, net.addr).await, "HTTP/1.1 200 OK");
    drop(held);
    net.stop().await;
}
