//! HTTP routes: health and the public auditor read side (checkpoint with
//! cosignatures, inclusion and consistency proofs); the log's part of
//! `/metrics`, which [`crate::app::metrics_app`] serves.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use crate::deployment::Deployment;

/// Largest request body any route accepts.
pub const BODY_BYTES_MAX: usize = 64 * 1024;

/// The read routes alone: what a deployment without the agency path
/// serves publicly.
pub fn router(dep: Arc<Deployment>) -> Router {
    routes()
        .layer(axum::extract::DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(dep)
}

/// Health and the public auditor read routes, for [`crate::app::app`].
pub fn routes() -> Router<Arc<Deployment>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/log/checkpoint", get(checkpoint))
        .route("/v1/log/proof/inclusion", get(inclusion))
        .route("/v1/log/proof/consistency", get(consistency))
}

fn problem(status: StatusCode, detail: String) -> Response {
    crate::problem::blank(status, &detail)
}

async fn healthz(State(dep): State<Arc<Deployment>>) -> Response {
    // Ready only if the store answers and no write has failed.
    if !dep.is_healthy() {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "a log write failed; the gateway must be restarted".into(),
        );
    }
    match dep.log.store().size() {
        Ok(size) => Json(json!({"status": "ready", "log_size": size})).into_response(),
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// The log's and the state's part of `/metrics`, in Prometheus text. It
/// counts participants and consents: for the operator's listener only.
pub fn render_metrics(dep: &Deployment) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let s = dep.log.stats();
    let state = dep.state.read().unwrap_or_else(|p| p.into_inner());
    format!(
        "# TYPE consentry_log_size gauge\nconsentry_log_size {}\n# TYPE consentry_log_batches_total counter\nconsentry_log_batches_total {}\n# TYPE consentry_log_entries_total counter\nconsentry_log_entries_total {}\n# TYPE consentry_log_batch_entries_last gauge\nconsentry_log_batch_entries_last {}\n# TYPE consentry_consents gauge\nconsentry_consents {}\n# TYPE consentry_participants gauge\nconsentry_participants {}\n",
        dep.log.size(),
        s.batches.load(Relaxed),
        s.entries.load(Relaxed),
        s.batch_entries_last.load(Relaxed),
        state.consent_count(),
        state.participant_count(),
    ) + &batch_histogram(s)
}

fn batch_histogram(s: &ledger::log::LogStats) -> String {
    use std::fmt::Write;
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = String::from("# TYPE consentry_log_batch_entries histogram\n");
    for (b, le) in s
        .batch_entries_buckets
        .iter()
        .zip(ledger::log::BATCH_BUCKETS)
    {
        let _ = writeln!(
            out,
            "consentry_log_batch_entries_bucket{{le=\"{le}\"}} {}",
            b.load(Relaxed)
        );
    }
    let batches = s.batches.load(Relaxed);
    let _ = writeln!(
        out,
        "consentry_log_batch_entries_bucket{{le=\"+Inf\"}} {batches}\nconsentry_log_batch_entries_sum {}\nconsentry_log_batch_entries_count {batches}",
        s.entries.load(Relaxed)
    );
    out
}

async fn checkpoint(State(dep): State<Arc<Deployment>>) -> Response {
    match dep.log.checkpoint_with_cosignatures() {
        Ok((note, _)) => {
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response()
        }
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Deserialize)]
struct InclusionQuery {
    index: u64,
    size: u64,
}

async fn inclusion(
    State(dep): State<Arc<Deployment>>,
    q: Result<Query<InclusionQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return problem(StatusCode::BAD_REQUEST, "want ?index=N&size=M".into());
    };
    match dep.log.inclusion_proof(q.index, q.size) {
        Ok(p) => Json(json!({"index": q.index, "size": q.size, "proof": p.iter().map(|h| B64.encode(h)).collect::<Vec<_>>()})).into_response(),
        Err(e) => problem(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

#[derive(Deserialize)]
struct ConsistencyQuery {
    old: u64,
    new: u64,
}

async fn consistency(
    State(dep): State<Arc<Deployment>>,
    q: Result<Query<ConsistencyQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return problem(StatusCode::BAD_REQUEST, "want ?old=N&new=M".into());
    };
    match dep.log.consistency_proof(q.old, q.new) {
        Ok(p) => Json(json!({"old": q.old, "new": q.new, "proof": p.iter().map(|h| B64.encode(h)).collect::<Vec<_>>()})).into_response(),
        Err(e) => problem(StatusCode::BAD_REQUEST, e.to_string()),
    }
}
