//! # The server's own room
//!
//! The gateway's HTTP surface, built from its parts and testable without a
//! socket: [`app`] returns the public `Router`, [`metrics_app`] the
//! operator's, [`run::run`] serves one on a listener until `shutdown`
//! resolves. Above every other room: it alone knows them all.
//!
//! - [`state`]: the one [`AppState`], built once from [`Settings`], and the
//!   substates each room's handlers extract from it.
//! - [`limits`]: the HTTP limits and their check.
//! - [`run`]: the connection loop, graceful shutdown, background tasks.
//! - [`entries`]: `POST /v1/entries`.
//! - [`log`]: health and the public read routes of the log.

pub mod entries;
mod in_flight;
pub mod limits;
pub mod log;
mod quiet;
pub mod run;
pub mod state;
#[cfg(test)]
mod unknown_ids_tests;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tower::limit::ConcurrencyLimitLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::problem::Problem;
pub use limits::{HttpLimits, LimitsError};
pub use run::{
    activate_rotations, publish_checkpoints, run, run_tls, serve_until_interrupted,
    summarise_refusals, CERTIFICATE_CHECK_EVERY, REFUSAL_SUMMARY_EVERY,
};
pub use state::{AppState, Settings, StateError};

/// Every public route: the agency path, the one write route for signed
/// entries, the participant's API and portal, the auditor read routes and
/// health. Not `/metrics`: see [`metrics_app`].
pub fn app(state: AppState, limits: &HttpLimits) -> Router {
    let header_bytes_max = limits.header_bytes_max;
    let trusted = limits.trusted_proxies.clone();
    let https = state.agency.origin().is_https();
    let in_flight = in_flight::InFlight::new(limits.requests_in_flight_per_source_max);
    let routes = Router::new()
        .route(
            "/v1/records/{holder}/{participant}/{*fhir_path}",
            get(crate::agency::records),
        )
        .route("/v1/entries", post(entries::post_entry))
        .merge(crate::participant::routes())
        .merge(crate::participant::portal::routes())
        .merge(crate::auditor::routes())
        .merge(log::routes())
        .with_state(state);
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
        // Outside the global limit: a source's excess is refused before it
        // waits for a turn.
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            in_flight::per_source(in_flight.clone(), req, next)
        }))
        .layer(middleware::map_response(as_problem))
        .layer(middleware::from_fn(no_store))
        .layer(middleware::map_response(move |r: Response| {
            over_https(r, https)
        }))
}

/// Two years, as browsers' preload lists ask: once a browser has reached
/// the gateway over HTTPS it never tries plain HTTP there again, so a
/// network attacker cannot strip TLS from the portal.
pub const HSTS: &str = "max-age=63072000";

/// When the public URL is `https://` (TLS here or at a reverse proxy):
/// `Strict-Transport-Security` on every answer, and every cookie
/// `Secure`, so that none is ever sent over plain HTTP (the session
/// cookie is also `__Host-` there; the language cookie, scoped to
/// `/portal`, cannot be).
async fn over_https(mut r: Response, https: bool) -> Response {
    if !https {
        return r;
    }
    let h = r.headers_mut();
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        header::HeaderValue::from_static(HSTS),
    );
    let cookies: Vec<header::HeaderValue> = h.get_all(header::SET_COOKIE).iter().cloned().collect();
    if cookies.is_empty() {
        return r;
    }
    h.remove(header::SET_COOKIE);
    for c in cookies {
        let secure = c.to_str().is_ok_and(|t| {
            t.split(';')
                .any(|a| a.trim().eq_ignore_ascii_case("secure"))
        });
        let c = match (secure, c.to_str()) {
            (false, Ok(t)) => header::HeaderValue::from_str(&format!("{t}; Secure")).unwrap_or(c),
            _ => c,
        };
        h.append(header::SET_COOKIE, c);
    }
    r
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
    let problem = match status {
        StatusCode::PAYLOAD_TOO_LARGE => Problem::BodyTooLarge,
        StatusCode::REQUEST_TIMEOUT => Problem::Timeout,
        StatusCode::TOO_MANY_REQUESTS => Problem::TooManyRequests,
        StatusCode::NOT_FOUND => Problem::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => Problem::MethodNotAllowed,
        other => Problem::Other(other),
    };
    let mut out = problem.into_response();
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
pub fn metrics_app(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
        .layer(middleware::map_response(as_problem))
}

async fn header_limit(req: Request, next: Next, max: usize) -> Response {
    let bytes: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    if bytes > max {
        return Problem::HeadersTooLarge { bytes, max }.into_response();
    }
    next.run(req).await
}

async fn metrics(State(s): State<AppState>) -> Result<Response, Problem> {
    let mut body = log::render_metrics(&s.dep)?;
    s.agency.metrics.render(&mut body);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response())
}
