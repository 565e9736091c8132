//! The gateway's HTTP surface, built from its parts and testable without a
//! socket: [`app`] returns the `Router`, [`run`] serves it on a listener
//! until `shutdown` resolves.

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

/// The limits of the HTTP surface.
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
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            body_bytes_max: 64 * 1024,
            header_bytes_max: 16 * 1024,
            request_timeout: Duration::from_secs(30),
            requests_in_flight_max: 1024,
            connections_max: 2048,
        }
    }
}

/// Every route: the agency path, the one write route for signed entries,
/// the public auditor read routes, health and metrics.
pub fn app(g: Arc<Gateway>, limits: &HttpLimits) -> Router {
    let header_bytes_max = limits.header_bytes_max;
    Router::new()
        .route(
            "/v1/records/{holder}/{participant}/{*fhir_path}",
            get(agency::records),
        )
        .route("/v1/entries", post(post_entry))
        .route("/metrics", get(metrics))
        .merge(crate::participant::routes())
        .merge(crate::participant::portal::routes())
        .merge(crate::auditor::routes())
        .with_state(g.clone())
        .merge(crate::server::routes().with_state(g.dep.clone()))
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

/// Serves `app` on `listener`, holding at most `connections_max`
/// connections, until `shutdown` resolves.
pub async fn run(
    listener: tokio::net::TcpListener,
    connections_max: usize,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = crate::listener::LimitedListener::new(listener, connections_max);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Runs `gw` on `listener` until Ctrl-C, as `serve` and `demo` do:
/// a checkpoint every second while the log grows, and a last one at the
/// end so that it covers everything served.
pub async fn serve_until_interrupted(
    listener: tokio::net::TcpListener,
    gw: Arc<Gateway>,
    limits: &HttpLimits,
) -> std::io::Result<()> {
    let dep = gw.dep.clone();
    let publisher = tokio::spawn(publish_checkpoints(dep.clone(), Duration::from_secs(1)));
    let activator = tokio::spawn(activate_rotations(dep.clone(), Duration::from_secs(1)));
    let served = run(listener, limits.connections_max, app(gw, limits), async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    publisher.abort();
    activator.abort();
    served?;
    dep.log
        .publish_checkpoint()
        .map(|_| ())
        .map_err(std::io::Error::other)
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
