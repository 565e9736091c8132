//! The sample record systems the demo and the end-to-end tests run: real
//! HTTP servers that answer only requests the gateway signed (RFC 9421,
//! the gateway's key), with FHIR resources labelled by data category.
//!
//! - [`Holder::TreatmentProgram`]: attendance and medication (SUD
//!   treatment), a mental-health condition, a peer-support note, and one
//!   unlabelled resource that must never leave.
//! - [`Holder::HousingAuthority`]: housing status and a benefits record.
//!
//! The records are made up per participant id; nothing here is real data.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use ed25519_dalek::VerifyingKey;
use serde_json::{json, Value};

use crate::clock::Clock;
use crate::httpsig::{self, LabelPolicy, NonceCache, OwnedMessage, VerifyPolicy};
use crate::words::CATEGORY_SYSTEM;
pub use crate::words::{DECISION_HEADER, GATEWAY_KEY_ID, PARTICIPANT_HEADER, RELEASED_HEADER};
const NONCES_MAX: usize = 500_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder {
    TreatmentProgram,
    HousingAuthority,
}

struct Upstream {
    holder: Holder,
    /// `scheme://host:port` this server is reached at: the signed
    /// `@target-uri` is checked against it, never against the `Host`
    /// header alone.
    origin: crate::origin::Origin,
    gateway_key: VerifyingKey,
    clock: Arc<dyn Clock>,
    nonces: NonceCache,
}

/// A sample record system reached at `origin` (`http://host:port` or
/// `https://…`), trusting only the gateway's key.
pub fn router(
    holder: Holder,
    origin: crate::origin::Origin,
    gateway_key: VerifyingKey,
    clock: Arc<dyn Clock>,
) -> Router {
    let up = Arc::new(Upstream {
        holder,
        origin,
        gateway_key,
        clock,
        nonces: NonceCache::new(NONCES_MAX, 60),
    });
    Router::new().fallback(answer).with_state(up)
}

/// Serves a sample record system on `listener` until the task is dropped:
/// plain HTTP/1.1, or TLS first with `tls` (a config that may ask for the
/// gateway's client certificate). A failed handshake closes that
/// connection only.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let Some(tls) = tls else {
        let _ = axum::serve(listener, app).await;
        return;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            // Out of descriptors, say: wait rather than spin.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let accept = acceptor.accept(tcp);
            let Ok(Ok(stream)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await else {
                return;
            };
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                use tower::ServiceExt;
                app.clone().oneshot(req)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn refuse(status: StatusCode, detail: &str) -> Response {
    crate::problem::Problem::Blank(status, detail.into()).into_response()
}

async fn answer(State(up): State<Arc<Upstream>>, req: Request) -> Response {
    let (parts, _body) = req.into_parts();
    let msg = match OwnedMessage::from_http(
        &parts.method,
        &parts.uri,
        &parts.headers,
        up.origin.scheme(),
        Some(up.origin.authority()),
    ) {
        Ok(m) => m,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let now = up.clock.now();
    let key = up.gateway_key;
    let verified = match httpsig::verify(
        &msg.view(&[]),
        LabelPolicy::First,
        |id| (id == GATEWAY_KEY_ID).then_some(key),
        now,
        &VerifyPolicy::forwarded(),
    ) {
        Ok(v) => v,
        Err(e) => return refuse(StatusCode::UNAUTHORIZED, e.code()),
    };
    if let (Some(nonce), Some(expires)) = (verified.nonce(), verified.expires()) {
        if let Err(e) = up
            .nonces
            .check_and_insert(verified.keyid(), nonce, expires, now)
        {
            return refuse(StatusCode::UNAUTHORIZED, e.code());
        }
    }
    let participant = parts
        .headers
        .get(PARTICIPANT_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let bundle = records(up.holder, participant);
    (
        [(header::CONTENT_TYPE, "application/fhir+json")],
        bundle.to_string(),
    )
        .into_response()
}

fn resource(kind: &str, id: &str, participant: &str, labels: &[&str], text: &str) -> Value {
    let security: Vec<Value> = labels
        .iter()
        .map(|c| json!({"system": CATEGORY_SYSTEM, "code": c}))
        .collect();
    let mut r = json!({
        "resourceType": kind,
        "id": id,
        "subject": {"identifier": {"system": "https://consentry.dev/participant", "value": participant}},
        "text": {"status": "generated", "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{text}</div>")},
    });
    if !security.is_empty() {
        r["meta"] = json!({ "security": security });
    }
    r
}

/// The sample records one holder keeps about a participant.
pub fn records(holder: Holder, participant: &str) -> Value {
    let p = participant;
    let resources = match holder {
        Holder::TreatmentProgram => vec![
            resource(
                "Observation",
                "attendance",
                p,
                &["health.sud.treatment"],
                "Attended 11 of 12 weekly sessions",
            ),
            resource(
                "MedicationStatement",
                "medication",
                p,
                &["health.sud.medication"],
                "Buprenorphine, stable dose",
            ),
            resource(
                "Condition",
                "mental-health",
                p,
                &["health.mental"],
                "Generalised anxiety",
            ),
            resource(
                "Observation",
                "peer-support",
                p,
                &["social.peer-support"],
                "Meets a peer mentor weekly",
            ),
            resource(
                "DocumentReference",
                "intake-notes",
                p,
                &[],
                "Unlabelled intake notes",
            ),
        ],
        Holder::HousingAuthority => vec![
            resource(
                "Observation",
                "housing-status",
                p,
                &["social.housing"],
                "On the transitional housing list",
            ),
            resource(
                "Observation",
                "benefits",
                p,
                &["social.benefits"],
                "Receives housing benefit",
            ),
        ],
    };
    let entry: Vec<Value> = resources
        .into_iter()
        .map(|r| json!({"resource": r}))
        .collect();
    json!({"resourceType": "Bundle", "type": "collection", "entry": entry})
}
