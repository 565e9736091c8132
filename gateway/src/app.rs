//! The gateway's HTTP surface, built from its parts and testable without a
//! socket: [`app`] returns the public `Router`, [`metrics_app`] the
//! operator's, [`run`] serves one on a listener until `shutdown` resolves.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tower::limit::ConcurrencyLimitLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::agency::{self, Gateway};
use crate::deployment::SubmitError;
use crate::problem::problem;

/// The limits of the HTTP surface, per listener.
#[derive(Clone, Debug)]
pub struct HttpLimits {
    pub body_bytes_max: usize,
    /// All header names and values of one request together.
    pub header_bytes_max: usize,
    /// A whole request, from its first byte to its answer.
    pub request_timeout: Duration,
    /// Requests served at once; more wait for a turn.
    pub requests_in_flight_max: usize,
    /// Connections held open at once; more wait to be accepted.
    pub connections_max: usize,
    /// Connections held open at once from one source (an IPv4 address, an
    /// IPv6 /64); more are closed as soon as they are accepted. Well below
    /// `connections_max`, so that no one source can hold every slot; above
    /// what one well-behaved client opens (the load benchmark: 64, the
    /// tests: 200 at once). Behind a reverse proxy every connection comes
    /// from the proxy: raise this to `connections_max` there, and limit
    /// per client in the proxy.
    pub connections_per_address_max: usize,
    /// From a connection's first byte, or the end of its last answer, to
    /// the end of the next request's headers. Also how long a kept-alive
    /// connection may wait for its next request.
    pub header_read_timeout: Duration,
    /// A connection on which no byte moved either way for this long is
    /// closed: a client that stopped reading its answer, or stopped
    /// sending its body. Longer than `request_timeout`, so that no request
    /// being worked on is ever cut.
    pub idle_timeout: Duration,
    /// Requests per second one source (peer address) may send, on
    /// average; more get 429 before any work is done or counted. Above
    /// what one busy agency's gateway client sends (the load benchmark:
    /// about 4,300/s from one address); behind a reverse proxy, limit per
    /// client in the proxy.
    pub requests_per_source_per_second: u32,
    /// The burst one source may send above that rate.
    pub requests_per_source_burst: u32,
    /// Peers whose `X-Forwarded-For` or `Forwarded` says which client a
    /// request is from, for the limits per source ([`crate::source`]).
    /// None by default: the TCP peer is the source.
    pub trusted_proxies: Arc<crate::source::TrustedProxies>,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            body_bytes_max: 64 * 1024,
            header_bytes_max: 16 * 1024,
            request_timeout: Duration::from_secs(30),
            requests_in_flight_max: 1024,
            connections_max: 2048,
            connections_per_address_max: 256,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            requests_per_source_per_second: 10_000,
            requests_per_source_burst: 20_000,
            trusted_proxies: Arc::default(),
        }
    }
}

/// Limits that cannot work together.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LimitsError {
    #[error("{0} must be above zero")]
    Zero(&'static str),
    #[error("connections_per_address_max ({per_address}) is above connections_max ({max})")]
    PerAddressAboveMax { per_address: usize, max: usize },
    #[error("idle_timeout ({idle:?}) must be longer than request_timeout ({request:?}), or a request being answered could be cut")]
    IdleNotAboveRequest { idle: Duration, request: Duration },
}

impl HttpLimits {
    pub fn check(&self) -> Result<(), LimitsError> {
        let counts = [
            ("body_bytes_max", self.body_bytes_max),
            ("header_bytes_max", self.header_bytes_max),
            ("requests_in_flight_max", self.requests_in_flight_max),
            ("connections_max", self.connections_max),
            (
                "requests_per_source_per_second",
                self.requests_per_source_per_second as usize,
            ),
            (
                "requests_per_source_burst",
                self.requests_per_source_burst as usize,
            ),
            (
                "connections_per_address_max",
                self.connections_per_address_max,
            ),
        ];
        let times = [
            ("request_timeout", self.request_timeout),
            ("header_read_timeout", self.header_read_timeout),
            ("idle_timeout", self.idle_timeout),
        ];
        if let Some((name, _)) = counts.iter().find(|(_, n)| *n == 0) {
            return Err(LimitsError::Zero(name));
        }
        if let Some((name, _)) = times.iter().find(|(_, d)| d.is_zero()) {
            return Err(LimitsError::Zero(name));
        }
        if self.connections_per_address_max > self.connections_max {
            return Err(LimitsError::PerAddressAboveMax {
                per_address: self.connections_per_address_max,
                max: self.connections_max,
            });
        }
        if self.idle_timeout <= self.request_timeout {
            return Err(LimitsError::IdleNotAboveRequest {
                idle: self.idle_timeout,
                request: self.request_timeout,
            });
        }
        Ok(())
    }
}

/// Every public route: the agency path, the one write route for signed
/// entries, the participant's API and portal, the auditor read routes and
/// health. Not `/metrics`: see [`metrics_app`].
pub fn app(g: Arc<Gateway>, limits: &HttpLimits) -> Router {
    let header_bytes_max = limits.header_bytes_max;
    let trusted = limits.trusted_proxies.clone();
    let routes = Router::new()
        .route(
            "/v1/records/{holder}/{participant}/{*fhir_path}",
            get(agency::records),
        )
        .route("/v1/entries", post(post_entry))
        .merge(crate::participant::routes())
        .merge(crate::participant::portal::routes())
        .merge(crate::auditor::routes())
        .with_state(g.clone())
        .merge(crate::server::routes().with_state(g.dep.clone()));
    // Inside the source layer, so that it counts the client a trusted
    // proxy names, not the proxy.
    let routes = match per_source_rate_limit(limits) {
        Some(limit) => routes.layer(limit),
        None => routes,
    };
    routes
        // Inside the header limit: a header too large is refused before
        // it is read for forwarded addresses.
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            crate::source::attach(trusted.clone(), req, next)
        }))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            header_limit(req, next, header_bytes_max)
        }))
        .layer(RequestBodyLimitLayer::new(limits.body_bytes_max))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(ConcurrencyLimitLayer::new(limits.requests_in_flight_max))
        .layer(middleware::map_response(as_problem))
        .layer(middleware::from_fn(no_store))
}

/// The per-source rate limit: governor's GCRA keyed by the peer address
/// (from `ConnectInfo`, never from a header a client writes). Its table of
/// sources is pruned every minute by a task that ends with the limiter.
fn per_source_rate_limit(
    limits: &HttpLimits,
) -> Option<
    tower_governor::GovernorLayer<
        SourceKey,
        governor::middleware::NoOpMiddleware,
        axum::body::Body,
    >,
> {
    let rate = limits.requests_per_source_per_second.max(1);
    let config = tower_governor::governor::GovernorConfigBuilder::default()
        .key_extractor(SourceKey)
        .period(Duration::from_nanos(1_000_000_000 / u64::from(rate)).max(Duration::from_nanos(1)))
        .burst_size(limits.requests_per_source_burst.max(1))
        .finish();
    // Only a zero period or burst fails, and both are at least 1.
    let config = Arc::new(config?);
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        let limiter = Arc::downgrade(config.limiter());
        rt.spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                match limiter.upgrade() {
                    Some(l) => l.retain_recent(),
                    None => return,
                }
            }
        });
    }
    Some(tower_governor::GovernorLayer::new(config))
}

/// `Cache-Control: no-store` on every answer but the portal's static
/// files: records, a person's consents and pages must stay in no shared
/// cache and no browser history (a shared phone, a library computer).
async fn no_store(req: Request, next: Next) -> Response {
    let cacheable = req.uri().path().starts_with("/portal/static/");
    let mut r = next.run(req).await;
    if !cacheable {
        r.headers_mut()
            .entry(header::CACHE_CONTROL)
            .or_insert(header::HeaderValue::from_static("no-store"));
    }
    r
}

/// The rate limit's key: the request's source as [`crate::source`] worked
/// it out (the client a trusted proxy names, else the peer).
#[derive(Clone, Copy, Debug)]
pub struct SourceKey;

impl tower_governor::key_extractor::KeyExtractor for SourceKey {
    type Key = std::net::IpAddr;

    fn extract<T>(
        &self,
        req: &http::Request<T>,
    ) -> Result<Self::Key, tower_governor::GovernorError> {
        let ext = req.extensions();
        Ok(ext
            .get::<crate::source::ClientSource>()
            .map(|s| s.0)
            .or_else(|| {
                ext.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                    .map(|c| crate::source::source_of(c.0.ip()))
            })
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)))
    }
}

/// Answers from the limit layers (413, 408) and axum's own rejections
/// come as plain text; every error this gateway gives is an RFC 9457
/// problem document, except the portal's pages, which a person reads.
async fn as_problem(resp: Response) -> Response {
    let status = resp.status();
    let written = resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes().starts_with(b"application/problem+json")
            || v.as_bytes().starts_with(b"text/html")
    });
    if !(status.is_client_error() || status.is_server_error()) || written {
        return resp;
    }
    let (kind, detail) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ("body-too-large", "the request body is over the limit"),
        StatusCode::REQUEST_TIMEOUT => ("timeout", "the request took longer than the limit"),
        StatusCode::TOO_MANY_REQUESTS => (
            "too-many-requests",
            "this source sent more requests than its rate allows; wait as Retry-After says",
        ),
        StatusCode::NOT_FOUND => ("not-found", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => {
            ("method-not-allowed", "this route does not take that method")
        }
        _ => ("error", "the request could not be served"),
    };
    let mut out = problem(status, kind, detail, serde_json::Value::Null);
    for (name, value) in resp.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// The operator's routes, for a listener of their own (`metrics_listen`,
/// loopback by default): `/metrics`. Kept off the public listener because
/// counts over time say more than any one answer does.
pub fn metrics_app(g: Arc<Gateway>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(g)
        .layer(middleware::map_response(as_problem))
}

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

/// Runs `gw` until Ctrl-C, as `serve` and `demo` do: the public routes on
/// `listener`, `/metrics` on `metrics_listener`; a checkpoint every second
/// while the log grows, and a last one at the end so that it covers
/// everything served.
pub async fn serve_until_interrupted(
    listener: tokio::net::TcpListener,
    metrics_listener: tokio::net::TcpListener,
    gw: Arc<Gateway>,
    limits: &HttpLimits,
) -> std::io::Result<()> {
    let dep = gw.dep.clone();
    let publisher = tokio::spawn(publish_checkpoints(dep.clone(), Duration::from_secs(1)));
    let activator = tokio::spawn(activate_rotations(dep.clone(), Duration::from_secs(1)));
    let summaries = tokio::spawn(summarise_refusals(gw.clone(), REFUSAL_SUMMARY_EVERY));
    let (stop_metrics, stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics = {
        let limits = limits.clone();
        let app = metrics_app(gw.clone());
        tokio::spawn(async move {
            run(metrics_listener, &limits, app, async {
                let _ = stopped.await;
            })
            .await
        })
    };
    let served = run(listener, limits, app(gw.clone(), limits), async {
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

async fn header_limit(req: Request, next: Next, max: usize) -> Response {
    let bytes: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    if bytes > max {
        return problem(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers-too-large",
            &format!("the request's headers are {bytes} bytes, over the limit of {max}"),
            serde_json::Value::Null,
        );
    }
    next.run(req).await
}

async fn metrics(State(g): State<Arc<Gateway>>) -> Response {
    let mut body = crate::server::render_metrics(&g.dep);
    g.metrics.render(&mut body);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// `POST /v1/entries`: one signed entry (the envelope's JSON form). The
/// signatures are the authority. A refusal never tells anyone but the
/// participant whether a participant is enrolled: an unknown key and a bad
/// signature get the same answer, and `policy` gives one error for every
/// refusal of a participant's entry by someone else.
async fn post_entry(State(g): State<Arc<Gateway>>, body: Bytes) -> Response {
    let env = match ledger::Envelope::from_json(&body) {
        Ok(e) => e,
        Err(e) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "malformed-entry",
                &e.to_string(),
                serde_json::Value::Null,
            )
        }
    };
    match g.dep.submit(env).await {
        Ok(index) => (
            StatusCode::CREATED,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({ "index": index }).to_string(),
        )
            .into_response(),
        // Revoking what is already revoked changes nothing and is no
        // error for the person: a clear no-op answer, nothing appended.
        Err(SubmitError::Policy(policy::ApplyError::AlreadyRevoked(id))) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({
                "noop": true,
                "status": "already-revoked",
                "consent_id": id,
                "detail": "this consent was already revoked; nothing changed",
            })
            .to_string(),
        )
            .into_response(),
        Err(SubmitError::Policy(policy::ApplyError::ForbiddenPurpose { purpose, language })) => {
            let reason = policy::Reason::PurposeForbidden;
            problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "refused-by-policy",
                reason.sentence(language),
                serde_json::json!({
                    "reason": reason.code(),
                    "purpose": purpose,
                    "language": language.code(),
                }),
            )
        }
        Err(e) => entry_refused(&e),
    }
}

fn entry_refused(e: &SubmitError) -> Response {
    use ledger::EntryError;
    use policy::ApplyError;
    let none = serde_json::Value::Null;
    match e {
        SubmitError::Entry(EntryError::UnknownKey(_) | EntryError::BadSignature(_)) => problem(
            StatusCode::UNAUTHORIZED,
            "signature-invalid",
            "a signature does not verify under a key the registry holds",
            none,
        ),
        SubmitError::Entry(other) => problem(
            StatusCode::BAD_REQUEST,
            "malformed-entry",
            &other.to_string(),
            none,
        ),
        SubmitError::Parse(p) => problem(
            StatusCode::BAD_REQUEST,
            "not-an-event",
            &p.to_string(),
            none,
        ),
        SubmitError::Policy(ApplyError::NotAuthorised | ApplyError::EnrolmentRefused) => problem(
            StatusCode::FORBIDDEN,
            "not-authorised",
            &e.to_string(),
            none,
        ),
        SubmitError::Policy(p) => problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "refused-by-policy",
            &p.to_string(),
            none,
        ),
        SubmitError::DiskReserve { .. } => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "disk-reserve",
            &e.to_string(),
            none,
        ),
        SubmitError::Skew { .. } => problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "clock-skew",
            &e.to_string(),
            none,
        ),
        SubmitError::Log(_)
        | SubmitError::Stopped
        | SubmitError::Busy
        | SubmitError::Replay(_)
        | SubmitError::NoGatewayKey
        | SubmitError::BadTrust(_) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "log-unavailable",
            &e.to_string(),
            none,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn the_default_limits_work_together() {
        assert_eq!(HttpLimits::default().check(), Ok(()));
    }

    #[test]
    fn limits_that_cannot_work_together_are_refused() {
        let with = |edit: fn(&mut HttpLimits)| {
            let mut l = HttpLimits::default();
            edit(&mut l);
            l.check()
        };
        assert_eq!(
            with(|l| l.header_read_timeout = Duration::ZERO),
            Err(LimitsError::Zero("header_read_timeout"))
        );
        assert_eq!(
            with(|l| l.connections_per_address_max = 0),
            Err(LimitsError::Zero("connections_per_address_max"))
        );
        assert_eq!(
            with(|l| l.connections_per_address_max = l.connections_max + 1),
            Err(LimitsError::PerAddressAboveMax {
                per_address: 2049,
                max: 2048
            })
        );
        assert!(matches!(
            with(|l| l.idle_timeout = l.request_timeout),
            Err(LimitsError::IdleNotAboveRequest { .. })
        ));
    }

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
