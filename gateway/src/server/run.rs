//! Serving: the connection loop (TLS when configured, then HTTP/1.1 or
//! HTTP/2 by ALPN) with its limits and timeouts, a
//! graceful shutdown, and the background work `serve` and `demo` run
//! beside it (checkpoints, key activations, refusal summaries).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::Router;

use super::limits::HttpLimits;
use super::state::AppState;
use super::{app, metrics_app};
use crate::agency::Gateway;
use crate::tls::ServerTls;

/// Serves `app` on `listener` within `limits` until `shutdown` resolves:
/// HTTP/1.1, the connection limits of [`crate::listener`], the header-read
/// and idle timeouts. Then it stops accepting, lets each connection finish
/// the request it is on (idle ones close at once), and closes what is
/// still open after the longer of the request and header-read timeouts.
pub async fn run(
    listener: tokio::net::TcpListener,
    limits: &HttpLimits,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve(listener, limits, app, None, shutdown).await
}

/// As [`run`], with TLS first on every connection: a handshake within
/// `tls_handshake_timeout`, then HTTP/2 when ALPN chose it, else HTTP/1.1.
/// A plain-HTTP request on this port gets one plain answer that says to
/// use `https://` (nothing else is read or served in clear).
pub async fn run_tls(
    listener: tokio::net::TcpListener,
    limits: &HttpLimits,
    app: Router,
    tls: Arc<ServerTls>,
    public_url: &str,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = tls
        .config(true)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let tls = Tls {
        config,
        plain_answer: plain_http_answer(public_url),
        handshake_timeout: limits.tls_handshake_timeout,
    };
    serve(listener, limits, app, Some(Arc::new(tls)), shutdown).await
}

/// What a TLS listener needs per connection.
struct Tls {
    config: Arc<rustls::ServerConfig>,
    plain_answer: bytes::Bytes,
    handshake_timeout: Duration,
}

async fn serve(
    listener: tokio::net::TcpListener,
    limits: &HttpLimits,
    app: Router,
    tls: Option<Arc<Tls>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    limits
        .check()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut listener = crate::listener::LimitedListener::new(
        listener,
        limits.connections_max,
        limits.connections_per_address_max,
    );
    let http = Arc::new(Protocols {
        http1: http1_builder(limits),
        http2: http2_builder(limits),
    });
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            (io, peer) = listener.accept() => {
                let conn = Connection {
                    peer,
                    app: app.clone(),
                    http: http.clone(),
                    idle: limits.idle_timeout,
                    quiet: limits.header_read_timeout,
                    graceful: graceful.watcher(),
                };
                match &tls {
                    None => connections.spawn(conn.serve(io, false)),
                    Some(tls) => connections.spawn(conn.handshake(io, tls.clone())),
                };
            }
            // Reaped as they end, so that the set holds open ones only.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let last = limits.request_timeout.max(limits.header_read_timeout);
    let _ = tokio::time::timeout(last, graceful.shutdown()).await;
    connections.shutdown().await;
    Ok(())
}

/// The two HTTP versions a connection may speak, built once per listener.
struct Protocols {
    http1: hyper::server::conn::http1::Builder,
    http2: hyper::server::conn::http2::Builder<hyper_util::rt::TokioExecutor>,
}

/// HTTP/1.1 on a plain listener, as axum's own `serve` without its `http2`
/// feature: a version-sniffing server reads a connection's first bytes
/// before any header timer starts, so a socket that never sends one would
/// never time out. With TLS, ALPN says the version before any HTTP byte.
fn http1_builder(limits: &HttpLimits) -> hyper::server::conn::http1::Builder {
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    b
}

/// HTTP/2 within the limits: streams at once, the header list (the same
/// cap as HTTP/1.1's headers), and the resets that end a connection.
fn http2_builder(
    limits: &HttpLimits,
) -> hyper::server::conn::http2::Builder<hyper_util::rt::TokioExecutor> {
    // HTTP/2's smallest window is 65,535 bytes.
    let window = u32::try_from(limits.body_bytes_max)
        .unwrap_or(u32::MAX)
        .clamp(65_535, 1 << 20);
    let mut b = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
    b.timer(hyper_util::rt::TokioTimer::new())
        .max_concurrent_streams(limits.http2_streams_max)
        .max_header_list_size(u32::try_from(limits.header_bytes_max).unwrap_or(u32::MAX))
        .max_pending_accept_reset_streams(limits.http2_resets_pending_max)
        .max_local_error_reset_streams(limits.http2_error_resets_max)
        // A window of one body per stream, not hyper's 1 MiB: what a
        // client may push before the body limit reads it is what the limit
        // allows.
        .initial_stream_window_size(window)
        .initial_connection_window_size(window.saturating_mul(4));
    b
}

/// The answer to a plain-HTTP request on the TLS port: RFC 9457, closed
/// after, naming the address to use instead.
fn plain_http_answer(public_url: &str) -> bytes::Bytes {
    let body = serde_json::json!({
        "type": "https-required",
        "title": "This gateway speaks HTTPS only",
        "status": 400,
        "detail": format!("plain HTTP is not served here: use {public_url}"),
    })
    .to_string();
    bytes::Bytes::from(format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ))
}

/// One accepted connection and what serving it needs.
struct Connection {
    peer: std::net::SocketAddr,
    app: Router,
    http: Arc<Protocols>,
    idle: Duration,
    /// HTTP/2: how long a connection may stay without a request.
    quiet: Duration,
    graceful: hyper_util::server::graceful::Watcher,
}

/// How much of a plain-HTTP request on the TLS port is read (and
/// dropped) after its answer, before the socket closes.
const PLAIN_REQUEST_BYTES_MAX: usize = 8 * 1024;

/// The first byte of every TLS connection: a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

impl Connection {
    /// TLS, then HTTP: the first byte read (within the handshake timeout)
    /// tells a TLS client from a plain-HTTP one, which gets the plain
    /// answer; a handshake that fails or does not end in time closes the
    /// socket before any HTTP is read.
    async fn handshake<I>(self, mut io: I, tls: Arc<Tls>)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let deadline = tokio::time::Instant::now() + tls.handshake_timeout;
        let mut first = [0u8; 1];
        match tokio::time::timeout_at(deadline, io.read(&mut first)).await {
            Ok(Ok(1)) => {}
            _ => return,
        }
        if first[0] != TLS_HANDSHAKE_RECORD {
            // The request is read (a little of it, and never past the
            // deadline) before the socket closes: closing with bytes unread
            // sends a reset, which can discard the answer before the
            // client reads it.
            let _ = tokio::time::timeout_at(deadline, async {
                io.write_all(&tls.plain_answer).await?;
                io.shutdown().await?;
                let mut rest = [0u8; 1024];
                let mut read = 0;
                while read < PLAIN_REQUEST_BYTES_MAX {
                    match io.read(&mut rest).await? {
                        0 => break,
                        n => read += n,
                    }
                }
                Ok::<_, std::io::Error>(())
            })
            .await;
            return;
        }
        let io = crate::tls::server::Replayed::new(first[0], io);
        let accept = tokio_rustls::TlsAcceptor::from(tls.config.clone()).accept(io);
        let Ok(Ok(stream)) = tokio::time::timeout_at(deadline, accept).await else {
            return;
        };
        let h2 = stream.get_ref().1.alpn_protocol() == Some(crate::tls::ALPN_H2);
        self.serve(stream, h2).await;
    }

    /// HTTP on `io` until it ends, its idle timeout passes, or a graceful
    /// shutdown has let it finish. Each request carries the peer's address
    /// as axum's `ConnectInfo`.
    async fn serve<I>(self, io: I, h2: bool)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        use tower::ServiceExt;
        let Connection {
            peer,
            app,
            http,
            idle,
            quiet,
            graceful,
        } = self;
        let activity = crate::listener::Activity::new();
        let io = hyper_util::rt::TokioIo::new(crate::listener::Watched::new(io, activity.clone()));
        if h2 {
            let requests = super::quiet::Requests::new();
            let seen = requests.clone();
            let service =
                hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                    req.extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    let open = seen.open();
                    let app = app.clone();
                    async move {
                        let answer = app.oneshot(req).await?;
                        Ok::<_, std::convert::Infallible>(
                            answer.map(|body| super::quiet::Held::body(body, open)),
                        )
                    }
                });
            let conn = graceful.watch(http.http2.serve_connection(io, service));
            until_idle(conn, &activity, idle, Some((&requests, quiet))).await;
        } else {
            let service =
                hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                    req.extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    app.clone().oneshot(req)
                });
            let conn = graceful.watch(http.http1.serve_connection(io, service));
            until_idle(conn, &activity, idle, None).await;
        }
    }
}

/// Drives `conn` until it ends, no byte has moved for `idle`, or (with
/// `requests`, HTTP/2) no request has been open for `quiet`; dropping it
/// then closes the socket. Both are looked at again at least every
/// `quiet`, so neither deadline is missed by more than that.
async fn until_idle<F: Future>(
    conn: F,
    activity: &crate::listener::Activity,
    idle: Duration,
    requests: Option<(&super::quiet::Requests, Duration)>,
) {
    tokio::pin!(conn);
    let next = || {
        let idle_at = activity.last() + idle;
        match requests {
            None => idle_at,
            // While a request is open, look again within `quiet`.
            Some((r, quiet)) => idle_at.min(
                r.quiet_until(quiet)
                    .unwrap_or_else(|| tokio::time::Instant::now() + quiet),
            ),
        }
    };
    let mut deadline = next();
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            () = tokio::time::sleep_until(deadline) => {
                let now = tokio::time::Instant::now();
                let idle_at = activity.last() + idle;
                let quiet_at = requests.and_then(|(r, quiet)| r.quiet_until(quiet));
                if idle_at <= now || quiet_at.is_some_and(|q| q <= now) {
                    return;
                }
                deadline = next();
            }
        }
    }
}

/// How often the server's certificate files are looked at for a change.
pub const CERTIFICATE_CHECK_EVERY: Duration = Duration::from_secs(2);

/// Runs the gateway until Ctrl-C, as `serve` and `demo` do: the public routes on
/// `listener` (over `tls` when given, its certificate reloaded when its
/// files change or on SIGHUP), `/metrics` on `metrics_listener`; a
/// checkpoint every second while the log grows, and a last one at the end
/// so that it covers everything served.
pub async fn serve_until_interrupted(
    listener: tokio::net::TcpListener,
    metrics_listener: tokio::net::TcpListener,
    state: AppState,
    limits: &HttpLimits,
    tls: Option<Arc<ServerTls>>,
) -> std::io::Result<()> {
    let dep = state.dep.clone();
    let gw = state.agency.clone();
    let publisher = tokio::spawn(publish_checkpoints(dep.clone(), Duration::from_secs(1)));
    let activator = tokio::spawn(activate_rotations(dep.clone(), Duration::from_secs(1)));
    let summaries = tokio::spawn(summarise_refusals(gw.clone(), REFUSAL_SUMMARY_EVERY));
    let (stop_metrics, stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics = {
        let limits = limits.clone();
        let app = metrics_app(state.clone());
        tokio::spawn(async move {
            run(metrics_listener, &limits, app, async {
                let _ = stopped.await;
            })
            .await
        })
    };
    let interrupted = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let public_url = state.agency.origin().to_string();
    let app = app(state, limits);
    let served = match tls {
        None => run(listener, limits, app, interrupted).await,
        Some(tls) => {
            let watcher = tokio::spawn(tls.clone().watch(CERTIFICATE_CHECK_EVERY));
            let served = run_tls(listener, limits, app, tls, &public_url, interrupted).await;
            watcher.abort();
            served
        }
    };
    drop(stop_metrics);
    let metrics_served = metrics.await.map_err(std::io::Error::other)?;
    publisher.abort();
    activator.abort();
    summaries.abort();
    // The refusals counted since the last summary belong in the log too.
    let _ = gw.flush_refusals().await;
    served?;
    metrics_served?;
    dep.log
        .publish_checkpoint()
        .map(|_| ())
        .map_err(std::io::Error::other)
}

/// How often the unauthenticated refusals counted are logged as summaries.
pub const REFUSAL_SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Logs the refusals counted, one summary per reason, every `every`.
pub async fn summarise_refusals(gw: Arc<Gateway>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let _ = gw.flush_refusals().await;
    }
}

/// Activates the participant key rotations whose wait has passed, every
/// `every`, on the deployment's clock. A failure (the log stopped) is
/// tried again on the next round; the health route reports the log.
pub async fn activate_rotations(dep: Arc<crate::deployment::Deployment>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let _ = dep.activate_due_rotations().await;
    }
}

/// Publishes a checkpoint whenever the log grew, every `every`: on a
/// cadence, not per append, so that witnesses can cosign a stable head.
pub async fn publish_checkpoints(dep: Arc<crate::deployment::Deployment>, every: Duration) {
    let mut last = dep.log.size();
    loop {
        tokio::time::sleep(every).await;
        let size = dep.log.size();
        if size == last {
            continue;
        }
        // Signing and syncing block: off the workers that serve requests.
        let d = dep.clone();
        if let Ok(Ok(_)) = tokio::task::spawn_blocking(move || d.log.publish_checkpoint()).await {
            last = size;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tokio::io::AsyncWriteExt;

    /// A client that asks for a large answer and never reads it: hyper's
    /// own timers only watch for request heads, so without the idle
    /// timeout the connection would be held for ever, its write pending.
    #[tokio::test]
    async fn a_connection_whose_client_stopped_reading_is_closed_when_idle() {
        const BIG: usize = 32 << 20;
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let client = tokio::net::TcpSocket::new_v4().unwrap();
        // A small window, so that the kernel holds little of the answer.
        client.set_recv_buffer_size(4096).unwrap();
        let mut client = client.connect(addr).await.unwrap();
        client
            .write_all(b"GET /big HTTP/1.1\r\nhost: test\r\n\r\n")
            .await
            .unwrap();
        let (server_side, peer) = tcp.accept().await.unwrap();
        let big = Router::new().route("/big", get(|| async { vec![b'x'; BIG] }));
        let limits = HttpLimits {
            header_read_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_millis(100),
            idle_timeout: Duration::from_millis(300),
            ..HttpLimits::default()
        };
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let started = tokio::time::Instant::now();
        let conn = Connection {
            peer,
            app: big,
            http: Arc::new(Protocols {
                http1: http1_builder(&limits),
                http2: http2_builder(&limits),
            }),
            idle: limits.idle_timeout,
            quiet: limits.header_read_timeout,
            graceful: graceful.watcher(),
        };
        let served =
            tokio::time::timeout(Duration::from_secs(20), conn.serve(server_side, false)).await;
        assert!(served.is_ok(), "the stalled connection was never closed");
        assert!(started.elapsed() >= limits.idle_timeout);
        drop(client);
    }
}
