//! Serving: the HTTP/1.1 connection loop with its limits and timeouts, a
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
    limits
        .check()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut listener = crate::listener::LimitedListener::new(
        listener,
        limits.connections_max,
        limits.connections_per_address_max,
    );
    let http = Arc::new(http1_builder(limits));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            (io, peer) = listener.accept() => {
                connections.spawn(serve_connection(
                    io,
                    peer,
                    app.clone(),
                    http.clone(),
                    limits.idle_timeout,
                    graceful.watcher(),
                ));
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

/// HTTP/1.1 only, as axum's own `serve` without its `http2` feature: a
/// version-sniffing server reads a connection's first bytes before any
/// header timer starts, so a socket that never sends one would never time
/// out.
fn http1_builder(limits: &HttpLimits) -> hyper::server::conn::http1::Builder {
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    b
}

/// One connection, until it ends, its idle timeout passes, or a graceful
/// shutdown has let it finish. Each request carries the peer's address as
/// axum's `ConnectInfo`.
async fn serve_connection<I>(
    io: I,
    peer: std::net::SocketAddr,
    app: Router,
    http: Arc<hyper::server::conn::http1::Builder>,
    idle: Duration,
    graceful: hyper_util::server::graceful::Watcher,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use tower::ServiceExt;
    let activity = crate::listener::Activity::new();
    let io = hyper_util::rt::TokioIo::new(crate::listener::Watched::new(io, activity.clone()));
    let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        app.clone().oneshot(req)
    });
    let conn = graceful.watch(http.serve_connection(io, service));
    tokio::pin!(conn);
    let mut deadline = activity.last() + idle;
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            () = tokio::time::sleep_until(deadline) => {
                deadline = activity.last() + idle;
                if deadline <= tokio::time::Instant::now() {
                    // Dropping the connection closes the socket.
                    return;
                }
            }
        }
    }
}

/// Runs the gateway until Ctrl-C, as `serve` and `demo` do: the public routes on
/// `listener`, `/metrics` on `metrics_listener`; a checkpoint every second
/// while the log grows, and a last one at the end so that it covers
/// everything served.
pub async fn serve_until_interrupted(
    listener: tokio::net::TcpListener,
    metrics_listener: tokio::net::TcpListener,
    state: AppState,
    limits: &HttpLimits,
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
    let served = run(listener, limits, app(state, limits), async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
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
        let served = tokio::time::timeout(
            Duration::from_secs(20),
            serve_connection(
                server_side,
                peer,
                big,
                Arc::new(http1_builder(&limits)),
                limits.idle_timeout,
                graceful.watcher(),
            ),
        )
        .await;
        assert!(served.is_ok(), "the stalled connection was never closed");
        assert!(started.elapsed() >= limits.idle_timeout);
        drop(client);
    }
}
